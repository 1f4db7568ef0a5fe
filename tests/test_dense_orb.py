"""bovw.image.dense_orb: a dense grid's ORB descriptors, the very bytes of OpenCV's
ORB.compute, and OpenCV itself wherever that is not known to hold."""

from __future__ import annotations

import dataclasses
import itertools

import cv2
import numpy as np
import pytest

from bovw.config import OrbSettings
from bovw.image import dense_orb, orb
from bovw.image.dense_orb import agrees_with_opencv, grid_descriptors, pattern_points
from bovw.image.orb import describe_keypoints, extract_descriptors
from bovw.image.synthetic import encode_jpeg, render_fruit

SETTINGS = OrbSettings()


def opencv_compute(grey: np.ndarray, patch_size: int, edge_threshold: int, step: int):
    """ORB.compute on the same grid: (descriptors (n, 32), points (n, 2) float64)."""
    ys, xs = dense_orb.grid_coordinates(*grey.shape, patch_size, step)
    grid = [cv2.KeyPoint(float(x), float(y), float(patch_size)) for y in ys for x in xs]
    keypoints, descriptors = cv2.ORB_create(edgeThreshold=edge_threshold,
                                            patchSize=patch_size).compute(grey, grid)
    if descriptors is None:
        return np.zeros((0, 32), np.uint8), np.zeros((0, 2))
    return descriptors, cv2.KeyPoint_convert(keypoints).reshape(-1, 2).astype(np.float64)


def without_fast_path(monkeypatch):
    monkeypatch.setattr(orb, "grid_descriptors", lambda *args: None)


def ramp(axis: int) -> np.ndarray:
    """A 100 x 100 image whose grey level is twice the column (axis 1) or row (axis 0):
    the blur keeps it exactly, at least 3 px from the border."""
    levels = (2 * np.arange(100)).astype(np.uint8)
    return np.ascontiguousarray(np.tile(levels, (100, 1)) if axis == 1 else
                                np.tile(levels[:, None], (1, 100)))


def test_the_first_byte_on_a_horizontal_ramp_worked_by_hand():
    # The first 16 pattern points' x for 8 px patches: 3, -4 | 2, 1 | 4, 2 | 1, 2 | 1, -3
    # | -1, 1 | 3, 2 | -3, 0: bit k is set where the first x is left of the second, bits
    # 3, 5 and 7, 8 + 32 + 128 = 168, the same at every grid point.
    assert pattern_points(8)[:16, 0].tolist() == [3, -4, 2, 1, 4, 2, 1, 2, 1, -3, -1, 1, 3,
                                                  2, -3, 0]
    descriptors, points = grid_descriptors(ramp(1), 8, 8, 5)
    assert descriptors.shape == (289, 32)
    assert set(descriptors[:, 0].tolist()) == {168}
    # 17 x 17 points 10, 15, ..., 90: the grid from 5 px, less those nearer than 8 px to a side.
    assert points[:3].tolist() == [[10.0, 10.0], [15.0, 10.0], [20.0, 10.0]]
    assert points[-1].tolist() == [90.0, 90.0]


@pytest.mark.parametrize("axis", [0, 1])
def test_ramps_set_each_bit_by_its_two_points(axis):
    pattern = pattern_points(8)
    coordinate = pattern[:, 0] if axis == 1 else pattern[:, 1]
    darker_first = (coordinate[0::2] < coordinate[1::2]).reshape(32, 8)
    expected = (darker_first * (1 << np.arange(8))).sum(axis=1)
    descriptors, _ = grid_descriptors(ramp(axis), 8, 8, 5)
    assert (descriptors == expected).all()


def test_a_plain_image_gives_all_zero_descriptors():
    descriptors, points = grid_descriptors(np.full((60, 80), 200, np.uint8), 8, 8, 5)
    # Rows 10..50 and columns 10..70 of the grid from 5 px: 9 x 13 points.
    assert descriptors.shape == (len(points), 32) and len(points) == 9 * 13
    assert not descriptors.any()


@pytest.mark.parametrize("patch_size, edge_threshold, step", [
    (8, 8, 5), (8, 8, 1), (2, 3, 3), (5, 8, 7), (12, 12, 4), (16, 20, 5), (3, 8, 2),
    # 64 px: turned by -1 degree, some pattern points move by a pixel (reach 33, not 32).
    (64, 33, 5), (64, 40, 9),
])
def test_the_bytes_and_points_of_orb_compute(patch_size, edge_threshold, step):
    generator = np.random.default_rng(patch_size * 100 + step)
    # The last size keeps one or two grid lines on each axis.
    for height, width in [(100, 100), (37, 53), (61, 120), (140, 90),
                          (2 * edge_threshold + step + 1, 2 * edge_threshold + 2 * step + 3)]:
        noise = generator.integers(0, 256, (height, width), dtype=np.uint8)
        for image in (noise, cv2.GaussianBlur(noise, (5, 5), 1.0)):
            descriptors, points = grid_descriptors(image, patch_size, edge_threshold, step)
            expected, expected_points = opencv_compute(image, patch_size, edge_threshold, step)
            assert np.array_equal(descriptors, expected)
            assert np.array_equal(points, expected_points)


def test_fruit_jpegs_at_several_scales_describe_as_opencv_does(monkeypatch):
    settings = dataclasses.replace(SETTINGS, dense_scales=(1.0, 1.5, 2.0))
    photos = [encode_jpeg(render_fruit(name, np.random.default_rng(seed)))
              for name, seed in itertools.product(["Apple Red 1", "Kiwi", "Pineapple"], range(3))]
    fast = [extract_descriptors(photo, settings) for photo in photos]
    without_fast_path(monkeypatch)
    slow = [extract_descriptors(photo, settings) for photo in photos]
    for quick, opencv in zip(fast, slow, strict=True):
        assert quick.n_keypoints > 0
        assert np.array_equal(quick.descriptors, opencv.descriptors)
        assert np.array_equal(quick.positions, opencv.positions)


@pytest.mark.parametrize("patch_size, edge_threshold, why", [
    (31, 31, "OpenCV's learnt 31 px pattern is not kept here"),
    (8, 3, "the pattern reaches 4 px, past the 3 px ORB keeps clear"),
])
def test_opencv_describes_what_is_not_known_to_agree(patch_size, edge_threshold, why):
    assert not agrees_with_opencv(patch_size, edge_threshold, 5), why
    image = np.random.default_rng(7).integers(0, 256, (100, 100), dtype=np.uint8)
    assert grid_descriptors(image, patch_size, edge_threshold, 5) is None
    settings = dataclasses.replace(SETTINGS, patch_size=patch_size, edge_threshold=edge_threshold)
    descriptors, _ = describe_keypoints(image, settings)
    assert np.array_equal(descriptors, opencv_compute(image, patch_size, edge_threshold, 5)[0])


def test_only_2d_uint8_images_are_described():
    image = np.random.default_rng(3).integers(0, 256, (50, 50), dtype=np.uint8)
    assert grid_descriptors(image.astype(np.float32), 8, 8, 5) is None
    assert grid_descriptors(np.dstack([image] * 3), 8, 8, 5) is None


def test_a_disagreeing_opencv_is_left_to_describe_the_grid(monkeypatch):
    # As if the installed OpenCV blurred otherwise: the check finds it, and every grid is
    # then described by OpenCV itself.
    monkeypatch.setattr(dense_orb, "_BLUR", cv2.getGaussianKernel(7, 1.5, cv2.CV_32F))
    dense_orb.agrees_with_opencv.cache_clear()
    try:
        assert not agrees_with_opencv(8, 8, 5)
        image = np.random.default_rng(5).integers(0, 256, (100, 100), dtype=np.uint8)
        assert grid_descriptors(image, 8, 8, 5) is None
        descriptors, _ = describe_keypoints(image, SETTINGS)
        assert np.array_equal(descriptors, opencv_compute(image, 8, 8, 5)[0])
    finally:
        dense_orb.agrees_with_opencv.cache_clear()


def test_the_grid_arrays_handed_out_cannot_be_changed():
    _, points = grid_descriptors(np.zeros((100, 100), np.uint8), 8, 8, 5)
    with pytest.raises(ValueError):
        points[0, 0] = 1.0


def test_the_default_grid_is_not_described_by_opencv(monkeypatch):
    class Refusing:
        def compute(self, *args):
            raise AssertionError("ORB.compute called for a grid dense_orb describes")

    monkeypatch.setattr(orb, "_orb", lambda settings: Refusing())
    image = np.random.default_rng(9).integers(0, 256, (100, 100), dtype=np.uint8)
    descriptors, positions = describe_keypoints(image, SETTINGS)
    assert descriptors.shape == (289, 32) and positions.shape == (289, 2)


def test_the_turn_by_minus_one_degree_moves_some_64_px_pattern_points():
    offsets = dense_orb._offsets(64)
    turned = {(int(y), int(x)) for y, x in zip(offsets.dy, offsets.dx, strict=True)}
    assert offsets.reach == 33 and max(abs(pattern_points(64)).ravel()) == 32
    assert turned != {(int(y), int(x)) for x, y in pattern_points(64)}


@pytest.mark.parametrize("step", [36, 40, 95, 200])
def test_steps_that_keep_few_or_no_points_of_a_photo(monkeypatch, step):
    # 100 x 100 from 5 px: step 40 keeps 45 and 85 on each axis, 95 keeps none.
    settings = dataclasses.replace(SETTINGS, dense_step=step)
    photo = encode_jpeg(render_fruit("Kiwi", np.random.default_rng(step)))
    fast = extract_descriptors(photo, settings)
    without_fast_path(monkeypatch)
    opencv = extract_descriptors(photo, settings)
    assert fast.reject_reason is None and agrees_with_opencv(8, 8, step)
    assert fast.n_keypoints == {36: 4, 40: 4, 95: 0, 200: 0}[step]
    assert np.array_equal(fast.descriptors, opencv.descriptors)
    assert np.array_equal(fast.positions, opencv.positions)


def test_a_strided_view_is_described_as_its_copy():
    image = np.random.default_rng(11).integers(0, 256, (230, 190), dtype=np.uint8)
    view = image[5:205:2, 3:183:2]
    assert not view.flags.c_contiguous
    descriptors, points = grid_descriptors(view, 8, 8, 5)
    expected, expected_points = opencv_compute(np.ascontiguousarray(view), 8, 8, 5)
    assert np.array_equal(descriptors, expected) and np.array_equal(points, expected_points)


def test_a_large_image_on_a_fine_grid_is_described_a_block_of_rows_at_a_time(monkeypatch):
    # Blocks of 3 grid rows here, as a 4,000 x 4,000 photo on a 1 px grid would be.
    monkeypatch.setattr(dense_orb, "_BLOCK_VALUES", 81 * 61 * 3)
    assert agrees_with_opencv(8, 8, 1)  # checked before the views are counted
    views = []
    strided = dense_orb.as_strided
    monkeypatch.setattr(dense_orb, "as_strided", lambda *args, **kwargs: (
        views.append(kwargs["shape"]), strided(*args, **kwargs))[1])
    image = np.random.default_rng(12).integers(0, 256, (90, 77), dtype=np.uint8)
    descriptors, points = grid_descriptors(image, 8, 8, 1)
    expected, expected_points = opencv_compute(image, 8, 8, 1)
    # 74 rows of 61 points: 24 blocks of 3 rows and one of 2.
    assert len(points) == 74 * 61
    assert views == [(9, 9, 3, 61)] * 24 + [(9, 9, 2, 61)]
    assert np.array_equal(descriptors, expected) and np.array_equal(points, expected_points)


def test_the_check_of_a_wide_border_on_a_fine_grid_gives_opencv_few_points(monkeypatch):
    computed = []
    compute = cv2.ORB.compute
    monkeypatch.setattr(cv2.ORB, "compute", lambda self, image, grid: (
        computed.append(len(grid)), compute(self, image, grid))[1], raising=False)
    assert agrees_with_opencv(8, 300, 1)
    # The kept points alone (rows and columns 300 px or more from every side of 609 x 614
    # and 612 x 607 images), not the 360,000-point grids of those images.
    assert computed == [9 * 14, 12 * 7]


def test_a_step_too_wide_to_check_is_left_to_opencv():
    # Its check would need noise images of 600,000 px a side: OpenCV describes the grid,
    # which on a 100 x 100 photo keeps no point.
    assert not agrees_with_opencv(8, 8, 100_000)
    photo = encode_jpeg(render_fruit("Kiwi", np.random.default_rng(1)))
    extraction = extract_descriptors(photo, dataclasses.replace(SETTINGS, dense_step=100_000))
    assert extraction.reject_reason is None and extraction.n_keypoints == 0

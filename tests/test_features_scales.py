"""Dense sampling at several scales: each scale describes its own patch size, on a grid that
can be checked by hand, with positions that stay aligned with the descriptors."""

import cv2
import numpy as np
import pytest

from bovw.config import OrbSettings
from bovw.image.orb import dense_keypoints, describe_keypoints, scaled_image
from bovw.image.synthetic import render_fruit

# Defaults that matter here: patch_size 8, dense_step 5, edge_threshold 8.
SETTINGS = OrbSettings(sampling="dense", dense_scales=(1.0, 2.0))


def fruit_grey(seed: int = 3, name: str = "Kiwi") -> np.ndarray:
    return cv2.cvtColor(render_fruit(name, np.random.default_rng(seed)), cv2.COLOR_RGB2GRAY)


def relative(values) -> list[int]:
    return [int(np.floor(v * 256 / 100)) for v in values]


def grid_positions(xs, ys=None) -> list[tuple[int, int]]:
    ys = xs if ys is None else ys
    return [(x, y) for y in relative(ys) for x in relative(xs)]


def test_grid_of_a_100px_image_scale_by_scale():
    grey = fruit_grey()
    assert grey.shape == (100, 100)
    descriptors, positions = describe_keypoints(grey, SETTINGS)
    # Scale 1: grid 5, 10, ..., 90 (margin ceil(8 / 2) + 1 = 5, up to 100 - 5 excluded);
    # ORB drops x or y < 8 (edge_threshold): 10, 15, ..., 90 -> 17 x 17 = 289 points.
    scale_1 = grid_positions(range(10, 91, 5))
    # Scale 2: the image resized to 50 x 50, the same grid there: 5, ..., 40, ORB keeps
    # 10, ..., 40 (7 x 7 = 49); pixel x of the half-size image is centred on 2x + 0.5.
    scale_2 = grid_positions([2 * x + 0.5 for x in range(10, 41, 5)])
    assert len(scale_1) == 289 and len(scale_2) == 49
    assert descriptors.shape == (289 + 49, 32)
    assert [tuple(p) for p in positions.tolist()] == scale_1 + scale_2
    # Spot checks of the arithmetic: x = 10 -> 25; x_half = 10 -> 20.5 -> 52.
    assert scale_1[0] == (25, 25) and scale_2[0] == (52, 52) and scale_2[-1] == (206, 206)


@pytest.mark.parametrize(("scales", "counts"), [
    ((1.0,), [289]),
    ((1.0, 1.5), [289, 100]),       # 67 x 67: grid 5..60, ORB keeps 10..55 -> 10 x 10
    ((1.0, 2.0, 3.0), [289, 49, 9]),  # 33 x 33: grid 5..25, ORB keeps 10, 15, 20 -> 3 x 3
    ((2.0, 1.0), [49, 289]),        # rows follow the order of dense_scales
])
def test_keypoints_per_scale_on_a_100px_image(scales, counts):
    settings = OrbSettings(sampling="dense", dense_scales=scales)
    descriptors, positions = describe_keypoints(fruit_grey(), settings)
    assert len(descriptors) == len(positions) == sum(counts)
    sizes = [scaled_image(np.zeros((100, 100), np.uint8), s).shape for s in scales]
    assert sizes == [{1.0: (100, 100), 1.5: (67, 67), 2.0: (50, 50), 3.0: (33, 33)}[s]
                     for s in scales]


def test_each_scale_describes_its_own_patch_size():
    grey = fruit_grey()
    descriptors, positions = describe_keypoints(grey, SETTINGS)
    scale_1, scale_2 = descriptors[:289], descriptors[289:]
    # The scale-2 grid is ORB's own octave 1 with scaleFactor 2 (the half-size pyramid
    # level, 16 px patches in the original image) at the points (2x, 2y).
    octave_orb = cv2.ORB_create(edgeThreshold=8, patchSize=8, scaleFactor=2.0, nlevels=2)
    points = [(2.0 * x, 2.0 * y) for y in range(10, 41, 5) for x in range(10, 41, 5)]
    kept, expected = octave_orb.compute(grey, [cv2.KeyPoint(x, y, 16, -1, 0, 1)
                                               for x, y in points])
    assert len(kept) == 49 and np.array_equal(scale_2, expected)
    # ... which is not what 8 px patches give at those points (the old, size-blind meaning).
    _, eight_px = cv2.ORB_create(edgeThreshold=8, patchSize=8).compute(
        grey, [cv2.KeyPoint(x, y, 16) for x, y in points])
    assert not np.array_equal(scale_2, eight_px)
    # At one point, (20, 20) for scale 1 and (20.5, 20.5) for scale 2, the two differ.
    row_1 = [tuple(p) for p in positions[:289].tolist()].index((51, 51))  # x = y = 20
    assert positions[289].tolist() == [52, 52]
    assert not np.array_equal(scale_1[row_1], scale_2[0])
    # And every row of every scale is textured: nothing here is an all-zero plain patch.
    assert np.count_nonzero(descriptors.any(axis=1)) > 0.9 * len(descriptors)


def test_a_non_integer_scale_describes_the_resized_image():
    grey = fruit_grey(seed=5, name="Banana")
    settings = OrbSettings(sampling="dense", dense_scales=(1.0, 1.5))
    descriptors, _ = describe_keypoints(grey, settings)
    small = cv2.resize(grey, (67, 67), interpolation=cv2.INTER_AREA)
    _, expected = cv2.ORB_create(edgeThreshold=8, patchSize=8).compute(
        small, [cv2.KeyPoint(float(x), float(y), 8) for y in range(10, 56, 5)
                for x in range(10, 56, 5)])
    assert np.array_equal(descriptors[289:], expected)
    # A scale of 1.5 changes the descriptors: none of its textured rows (16 bits set or
    # more; plain areas give near-zero rows at any scale) is one of scale 1's.
    textured = [row for row in descriptors if np.unpackbits(row).sum() >= 16]
    assert len(textured) > 150
    scale_1 = {row.tobytes() for row in descriptors[:289]}
    assert not any(row.tobytes() in scale_1 for row in descriptors[289:]
                   if np.unpackbits(row).sum() >= 16)


def test_positions_stay_aligned_when_opencv_drops_border_keypoints():
    grey = fruit_grey(seed=8, name="Orange")
    settings = OrbSettings(sampling="dense", dense_scales=(1.0, 2.0), edge_threshold=20)
    # The grids hold 17 x 17 + 8 x 8 points (dense_keypoints); ORB keeps those at least
    # 20 px from the border: 20..75 at scale 1 (12 x 12), 20 and 25 of the 50 px image
    # at scale 2 (2 x 2).
    assert len(dense_keypoints((100, 100), settings)) == 18 * 18
    assert len(dense_keypoints((50, 50), settings)) == 8 * 8
    descriptors, positions = describe_keypoints(grey, settings)
    assert len(descriptors) == len(positions) == 144 + 4
    expected_1 = grid_positions(range(20, 76, 5))
    expected_2 = grid_positions([2 * x + 0.5 for x in (20, 25)])
    assert [tuple(p) for p in positions.tolist()] == expected_1 + expected_2
    # Row by row, the descriptor is the one of the keypoint at that position.
    orb = cv2.ORB_create(edgeThreshold=20, patchSize=8)
    half = cv2.resize(grey, (50, 50), interpolation=cv2.INTER_AREA)
    singles = [orb.compute(grey, [cv2.KeyPoint(float(x), float(y), 8)])[1][0]
               for y in range(20, 76, 5) for x in range(20, 76, 5)]
    singles += [orb.compute(half, [cv2.KeyPoint(float(x), float(y), 8)])[1][0]
                for y in (20, 25) for x in (20, 25)]
    assert np.array_equal(descriptors, np.array(singles))


def test_scales_change_nothing_for_detected_keypoints():
    grey = fruit_grey()
    detect = OrbSettings(sampling="detect")
    one, two = (describe_keypoints(grey, detect),
                describe_keypoints(grey, OrbSettings(sampling="detect", dense_scales=(3.0,))))
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])


def test_an_image_smaller_than_a_scale_needs_gets_no_keypoints_at_that_scale():
    settings = OrbSettings(sampling="dense", dense_scales=(1.0, 8.0))
    descriptors, positions = describe_keypoints(fruit_grey(), settings)
    assert len(descriptors) == len(positions) == 289  # 13 x 13 px: no grid point clear of 8
    tiny = np.full((3, 3), 128, np.uint8)
    descriptors, positions = describe_keypoints(tiny, settings)
    assert descriptors.shape == (0, 32) and positions.shape == (0, 2)


# ------------------------------------------------------------ the setting and sweeping it

@pytest.mark.parametrize(("scales", "message"), [
    ("[]", "orb.dense_scales must be a non-empty list of numbers >= 0.5"),
    ("[1.0, 0.25]", "orb.dense_scales must be a non-empty list of numbers >= 0.5"),
    ("[1.0, 2.0, 1.0]", "orb.dense_scales lists a scale twice: [1.0, 2.0, 1.0]"),
])
def test_bad_scales_are_one_line_errors(tmp_path, scales, message):
    from bovw.config import ConfigError, load_config

    path = tmp_path / "c.toml"
    path.write_text(f"[orb]\ndense_scales = {scales}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == message


def test_the_old_descriptor_scheme_cannot_be_asked_for():
    from bovw.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="orb.descriptor_scheme 1 is not computed by this bovw"):
        load_config(None, {"orb.descriptor_scheme": "1"})


def test_a_sweep_over_scale_lists_gives_one_point_per_list():
    from bovw.config import ConfigError, load_config
    from bovw.experiments.sweep import parse_parameter, sweep_points

    key, values = parse_parameter("orb.dense_scales=[1.0], [1.0, 2.0],[1.0,1.5,2.0]")
    assert (key, values) == ("orb.dense_scales", ["1.0", "1.0,2.0", "1.0,1.5,2.0"])
    config = load_config()
    points = sweep_points(config, [(key, values)])
    assert [config.replace(**p.values).orb.dense_scales for p in points] == [
        (1.0,), (1.0, 2.0), (1.0, 1.5, 2.0)]
    assert [p.name for p in points] == ["orb.dense_scales=1.0", "orb.dense_scales=1.0_2.0",
                                        "orb.dense_scales=1.0_1.5_2.0"]
    # Without brackets the values stay one per point, as for any setting.
    assert parse_parameter("orb.dense_scales=1.0,2.0")[1] == ["1.0", "2.0"]
    with pytest.raises(ConfigError, match=r"write each list in brackets.*\(got \[1.0\],2.0\)"):
        parse_parameter("orb.dense_scales=[1.0],2.0")

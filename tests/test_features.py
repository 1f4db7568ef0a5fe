"""The pure per-image function: bytes in, (n, 32) uint8 descriptors or a reject reason out."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bovw.config import OrbSettings
from bovw.image.orb import (
    EMPTY_DESCRIPTORS,
    dense_keypoints,
    extract_descriptors,
    pack,
    unpack,
)
from tests import imagefiles

SETTINGS = OrbSettings()
DETECT = OrbSettings(sampling="detect")


def assert_descriptors(extraction, minimum: int = 1):
    assert extraction.reject_reason is None
    assert extraction.descriptors.dtype == np.uint8
    assert extraction.descriptors.ndim == 2 and extraction.descriptors.shape[1] == 32
    assert extraction.n_keypoints >= minimum


def test_textured_jpeg_gives_many_keypoints():
    extraction = extract_descriptors(imagefiles.jpeg(), SETTINGS)
    assert_descriptors(extraction, minimum=20)
    assert (extraction.width, extraction.height) == (100, 100)


def test_extraction_is_deterministic():
    first = extract_descriptors(imagefiles.jpeg(3), SETTINGS)
    second = extract_descriptors(imagefiles.jpeg(3), SETTINGS)
    assert np.array_equal(first.descriptors, second.descriptors)


def test_opencv_default_border_leaves_few_keypoints_on_100px_images():
    opencv_defaults = OrbSettings(edge_threshold=31, patch_size=31, nfeatures=100)
    few = extract_descriptors(imagefiles.jpeg(), opencv_defaults).n_keypoints
    many = extract_descriptors(imagefiles.jpeg(), SETTINGS).n_keypoints
    assert many > 3 * few


def test_blank_image_has_no_keypoints_and_is_not_a_reject():
    white = np.full((100, 100, 3), 255, np.uint8)
    extraction = extract_descriptors(imagefiles.encode(white), DETECT)
    assert extraction.reject_reason is None
    assert extraction.descriptors.shape == (0, 32)


def test_dense_grid_on_a_blank_image_gives_all_zero_descriptors():
    white = np.full((100, 100, 3), 255, np.uint8)
    extraction = extract_descriptors(imagefiles.encode(white), SETTINGS)
    assert extraction.reject_reason is None
    assert extraction.n_keypoints > 0 and not extraction.descriptors.any()


def test_tiny_image_is_processed_without_keypoints():
    extraction = extract_descriptors(imagefiles.jpeg(size=5), SETTINGS)
    assert extraction.reject_reason is None
    assert extraction.n_keypoints == 0
    assert (extraction.width, extraction.height) == (5, 5)


@pytest.mark.parametrize("maker", [imagefiles.grey_png, imagefiles.rgba_png, imagefiles.png16,
                                   imagefiles.cmyk_jpeg])
def test_odd_but_readable_formats_are_described(maker):
    assert_descriptors(extract_descriptors(maker(), SETTINGS), minimum=10)


def test_sixteen_bit_png_is_scaled_not_clipped():
    sixteen = extract_descriptors(imagefiles.png16(), SETTINGS)
    eight = extract_descriptors(imagefiles.grey_png(), SETTINGS)
    # Clipping would turn the whole image white and leave no keypoints.
    assert abs(sixteen.n_keypoints - eight.n_keypoints) <= eight.n_keypoints // 4


def test_huge_image_is_downscaled_to_max_side():
    settings = OrbSettings(max_side=200)
    extraction = extract_descriptors(imagefiles.jpeg(size=1200), settings)
    assert_descriptors(extraction)
    assert (extraction.width, extraction.height) == (1200, 1200)


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"this is not an image at all", "not an image (unrecognised format)"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 10,
     "corrupt or truncated JPEG image: its header cannot be read"),
    (imagefiles.png_with_bad_header_checksum(),
     "corrupt or truncated PNG image: broken PNG file (bad header checksum in b'IHDR')"),
    (imagefiles.png()[:20], "corrupt or truncated PNG image: Truncated File Read"),
    (imagefiles.jpeg()[:10], "corrupt or truncated JPEG image: Truncated File Read"),
])
def test_unreadable_bytes_are_rejected_with_reason(data, reason):
    extraction = extract_descriptors(data, SETTINGS)
    assert extraction.reject_reason == reason
    assert extraction.descriptors.shape == (0, 32)


def test_truncated_jpeg_is_rejected():
    extraction = extract_descriptors(imagefiles.truncated_jpeg(), SETTINGS)
    assert extraction.reject_reason.startswith(
        "corrupt or truncated JPEG image: image file is truncated")


def test_decompression_bomb_is_refused_from_its_header():
    extraction = extract_descriptors(imagefiles.bomb_png(40000, 40000), SETTINGS)
    assert extraction.reject_reason == (
        "image too large: 40000x40000 pixels exceeds orb.max_pixels=50000000"
    )


def test_dense_sampling_describes_a_grid():
    settings = OrbSettings(sampling="dense", dense_step=10, dense_scales=(1.0,), patch_size=8,
                           edge_threshold=8)
    keypoints = dense_keypoints((100, 100), settings)
    # margin = ceil(8/2) + 1 = 5: x and y in 5, 15, ..., 85 -> 9 x 9 points.
    assert len(keypoints) == 81
    extraction = extract_descriptors(imagefiles.jpeg(), settings)
    assert_descriptors(extraction, minimum=60)


UNUSED_VALUES = {"nfeatures": 5, "scale_factor": 2.0, "n_levels": 1, "fast_threshold": 200,
                 "dense_step": 3, "dense_scales": (1.0, 2.0)}


@pytest.mark.parametrize("settings", [SETTINGS, DETECT], ids=["dense", "detect"])
def test_the_settings_a_sampling_does_not_use_change_nothing(settings):
    # What bovw refuses to set, and leaves out when comparing reused descriptors.
    image = imagefiles.jpeg(4)
    reference = extract_descriptors(image, settings)
    assert reference.n_keypoints > 20
    for name in settings.unused():
        changed = extract_descriptors(image, dataclasses.replace(
            settings, **{name: UNUSED_VALUES[name]}))
        assert np.array_equal(changed.descriptors, reference.descriptors), name
        assert np.array_equal(changed.positions, reference.positions), name
    # The others do change them: the list is no wider than it should be.
    for name in sorted(set(UNUSED_VALUES) - set(settings.unused())):
        changed = extract_descriptors(image, dataclasses.replace(
            settings, **{name: UNUSED_VALUES[name]}))
        assert not np.array_equal(changed.descriptors, reference.descriptors), name


def test_pack_unpack_round_trip():
    descriptors = np.arange(96, dtype=np.uint8).reshape(3, 32)
    assert np.array_equal(unpack(pack(descriptors)), descriptors)
    assert unpack(b"").shape == (0, 32)
    assert unpack(None) is EMPTY_DESCRIPTORS
    with pytest.raises(ValueError, match="multiple of 32 bytes"):
        unpack(b"\x00" * 33)

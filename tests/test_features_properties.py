"""Property: the per-image function is total. For random bytes and random valid images of
random sizes, modes and formats, `extract_descriptors` never raises and returns either an
(n, 32) uint8 array without a reason, or no descriptors with a reject reason."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bovw.config import OrbSettings
from bovw.image.orb import extract_descriptors
from tests import imagefiles

SETTINGS = OrbSettings()
FORMATS = ("JPEG", "PNG", "BMP", "WEBP", "TIFF", "GIF")
MODES = ("L", "RGB", "RGBA", "I;16")
# Formats that cannot store a mode are given the nearest one they can.
_STORABLE = {
    ("JPEG", "RGBA"): "RGB", ("JPEG", "I;16"): "L", ("BMP", "I;16"): "L",
    ("WEBP", "L"): "RGB", ("WEBP", "I;16"): "RGB", ("GIF", "I;16"): "L",
}
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


def assert_well_formed(extraction) -> None:
    descriptors = extraction.descriptors
    assert isinstance(descriptors, np.ndarray)
    assert descriptors.dtype == np.uint8
    assert descriptors.ndim == 2 and descriptors.shape[1] == 32
    if extraction.reject_reason is None:
        assert extraction.n_keypoints == descriptors.shape[0]
        assert extraction.width >= 1 and extraction.height >= 1
    else:
        assert isinstance(extraction.reject_reason, str) and extraction.reject_reason.strip()
        assert "\n" not in extraction.reject_reason
        assert descriptors.shape == (0, 32)


@st.composite
def encoded_images(draw) -> tuple[bytes, str, tuple[int, int]]:
    """A random image (noise, flat areas, a textured fruit) saved in a random format."""
    width = draw(st.integers(1, 300))
    height = draw(st.integers(1, 300))
    fmt = draw(st.sampled_from(FORMATS))
    mode = draw(st.sampled_from(MODES))
    mode = _STORABLE.get((fmt, mode), mode)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(("noise", "flat", "textured")))
    if kind == "noise":
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    elif kind == "flat":
        pixels = np.full((height, width, 3), rng.integers(0, 256, 3), dtype=np.uint8)
    else:
        side = max(width, height)
        pixels = imagefiles.textured(max(side, 8), seed)[:height, :width]
    image = Image.fromarray(np.ascontiguousarray(pixels))
    image = image.convert("L").convert("I;16") if mode == "I;16" else image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue(), fmt, (width, height)


@PROPERTY_SETTINGS
@given(st.binary(max_size=4096))
def test_random_bytes_never_raise(data):
    assert_well_formed(extract_descriptors(data, SETTINGS))


@PROPERTY_SETTINGS
@given(st.sampled_from((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM",
                        b"II*\x00", b"RIFF\x00\x00\x00\x00WEBPVP8 ")),
       st.binary(max_size=2048))
def test_random_bytes_behind_a_real_image_signature_never_raise(signature, data):
    assert_well_formed(extract_descriptors(signature + data, SETTINGS))


@PROPERTY_SETTINGS
@given(encoded_images())
def test_random_valid_images_never_raise(example):
    data, fmt, (width, height) = example
    extraction = extract_descriptors(data, SETTINGS)
    assert_well_formed(extraction)
    if extraction.reject_reason is None:
        assert (extraction.width, extraction.height) == (width, height), fmt
    else:
        # A readable image is only ever refused by OpenCV: ORB's pyramid fails on a
        # one-pixel-thin image.
        assert extraction.reject_reason.startswith("OpenCV failed: "), extraction.reject_reason
        assert min(width, height) == 1


@PROPERTY_SETTINGS
@given(encoded_images(), st.integers(0, 2**16), st.integers(1, 64))
def test_corrupted_valid_images_never_raise(example, position, length):
    data, _fmt, _size = example
    start = position % len(data)
    corrupted = data[:start] + bytes(length) + data[start + length:]
    assert_well_formed(extract_descriptors(corrupted, SETTINGS))
    assert_well_formed(extract_descriptors(data[:start], SETTINGS))

"""The grey image ORB describes (bovw.image.decode.decode_grey): a JPEG's luminance, the
same pixels whether OpenCV or Pillow decodes it."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from bovw.config import OrbSettings
from bovw.image.decode import ImageRejected, decode_grey, open_image, to_grey
from tests import imagefiles

SETTINGS = OrbSettings()


def with_exif(data: bytes, orientation: int) -> bytes:
    """The same JPEG pixels saved again with an EXIF block holding `orientation`."""
    image = Image.open(io.BytesIO(data))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    return buffer.getvalue()


def plain(data: bytes) -> bytes:
    """`data`'s pixels saved again without EXIF, as with_exif saves them (each JPEG saved
    from the same source: saving a saved copy again would change its pixels)."""
    image = Image.open(io.BytesIO(data))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_a_colour_jpeg_is_grey_by_its_luminance(opencv_decodes):
    data = imagefiles.jpeg()
    grey, size = decode_grey(data, SETTINGS)
    assert opencv_decodes == [1] and size == (100, 100) and grey.dtype == np.uint8
    # libjpeg's luminance: what OpenCV reads as grey, and Pillow decoding straight to "L".
    assert np.array_equal(grey, cv2.imdecode(np.frombuffer(data, np.uint8),
                                             cv2.IMREAD_GRAYSCALE))
    assert np.array_equal(grey, to_grey(open_image(data, SETTINGS, grey=True)[0]))
    # Not the decoded RGB converted back to grey, which rounds differently.
    assert not np.array_equal(grey, to_grey(open_image(data, SETTINGS)[0]))


def test_opencv_and_pillow_give_the_same_pixels(opencv_decodes):
    source = imagefiles.jpeg(seed=3)
    fast, _ = decode_grey(plain(source), SETTINGS)
    # An EXIF block sends the same pixels through Pillow (which turns the image by it).
    slow, _ = decode_grey(with_exif(source, 1), SETTINGS)
    assert opencv_decodes == [1]
    assert np.array_equal(fast, slow)


def test_the_exif_orientation_is_applied():
    source = imagefiles.jpeg(seed=4)
    upright, _ = decode_grey(plain(source), SETTINGS)
    # Orientation 6: the camera was turned, the picture is shown turned 90 degrees clockwise.
    turned, size = decode_grey(with_exif(source, 6), SETTINGS)
    assert size == (100, 100)
    assert np.array_equal(turned, np.rot90(upright, k=-1))


@pytest.mark.parametrize(("orientation", "shown"), [(1, (90, 60)), (3, (90, 60)),
                                                   (5, (60, 90)), (6, (60, 90)),
                                                   (8, (60, 90))])
def test_the_size_said_is_the_size_shown_after_the_exif_orientation(orientation, shown):
    # Review 4: a portrait photo stored landscape with orientation 6 was described turned
    # (60 x 90) but recorded at its stored 90 x 60, the model's training size with it, and
    # the Predictor then squashed every portrait photo to 90 x 60.
    stored = io.BytesIO()
    Image.fromarray(imagefiles.textured(90, 7)[:60]).save(stored, format="JPEG")
    data = with_exif(stored.getvalue(), orientation)
    grey, size = decode_grey(data, SETTINGS)
    assert size == shown and grey.shape == (shown[1], shown[0])
    image, size = open_image(data, SETTINGS)
    assert size == shown == image.size


def test_a_grey_jpeg_decodes_the_same_both_ways(opencv_decodes):
    data = imagefiles.encode(imagefiles.textured(100, 5), "JPEG", mode="L")
    grey, _ = decode_grey(data, SETTINGS)
    assert opencv_decodes == [1]
    assert np.array_equal(grey, np.asarray(Image.open(io.BytesIO(data)), dtype=np.uint8))


def test_a_jpeg_cut_short_is_left_to_pillow_and_rejected(opencv_decodes):
    with pytest.raises(ImageRejected, match="^corrupt or truncated JPEG image: image file is "
                                            "truncated"):
        decode_grey(imagefiles.truncated_jpeg(), SETTINGS)
    assert opencv_decodes == []


def test_a_large_jpeg_is_shrunk_by_pillow(opencv_decodes):
    grey, size = decode_grey(imagefiles.jpeg(size=450), OrbSettings(max_side=200))
    assert opencv_decodes == [] and size == (450, 450)
    # libjpeg decodes at half scale (225), then the image is shrunk to max_side.
    assert grey.shape == (200, 200)


@pytest.mark.parametrize("make", [imagefiles.png, imagefiles.cmyk_jpeg, imagefiles.rgba_png,
                                  imagefiles.png16])
def test_other_images_take_pillow_s_path(make, opencv_decodes):
    data = make()
    grey, _ = decode_grey(data, SETTINGS)
    assert opencv_decodes == []
    assert np.array_equal(grey, to_grey(open_image(data, SETTINGS, grey=True)[0]))


@pytest.mark.parametrize("mode, key", [("RGB", (0, 0, 0)), ("L", 0)])
def test_a_colour_keyed_transparent_background_is_white(mode, key):
    # A PNG's tRNS colour key made its background black, where an alpha channel made it
    # white: 79 of 96 dev photos right instead of 96 (review 3).
    pixels = np.zeros((20, 20, 3), np.uint8)
    pixels[5:15, 5:15] = (200, 60, 30)  # the fruit, on the transparent black
    image = Image.fromarray(pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", transparency=key)
    opened = Image.open(io.BytesIO(buffer.getvalue()))
    assert opened.info["transparency"] == key
    grey = to_grey(opened)
    assert grey[0, 0] == 255 and grey[10, 10] == np.asarray(image.convert("L"))[10, 10]
    assert decode_grey(buffer.getvalue(), OrbSettings())[0][0, 0] == 255

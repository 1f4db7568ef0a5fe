"""Image bytes decoded to arrays, free of Spark: what every per-image step starts from.

`open_image` refuses what is not an image, or too large, with ImageRejected (whose message
is the reject reason); `to_grey` and `to_rgb` give uint8 arrays for any Pillow mode, with
transparent areas white like the Fruits-360 background; `decode_grey` is the grey image ORB
describes, in the Spark pipeline and the Predictor alike.
"""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps

from bovw.config import OrbSettings
from bovw.errors import first_line
from bovw.image.jpeg_header import plain_jpeg_frame

__all__ = ["ImageRejected", "decode_grey", "open_image", "to_grey", "to_rgb"]

# Pillow's own bomb guard is replaced by the configurable pixel limit checked below.
Image.MAX_IMAGE_PIXELS = None

# The formats a photo folder holds. Bytes that one of their Pillow plugins accepts (by its
# own signature test) but cannot open are a damaged image of that format (a PNG whose
# header checksum fails, a JPEG cut short after its first bytes), and their reject should
# say so rather than call them something that is not an image.
_PHOTO_FORMATS = ("JPEG", "PNG", "GIF", "TIFF", "WEBP")


class ImageRejected(ValueError):
    """An input that cannot be turned into an image; the message is the reject reason."""


def open_image(data: bytes, settings: OrbSettings, grey: bool = False
               ) -> tuple[Image.Image, tuple[int, int]]:
    """Decode image bytes to a Pillow image no larger than `settings.max_side`.

    Returns the image, turned by its EXIF orientation, and its original (width, height)
    as shown: the file's declared size, swapped when that orientation is a quarter turn.
    The pixel count is checked from the header before any decoding, so a small file
    declaring a huge size is refused cheaply. With `grey`, a colour JPEG is decoded
    straight to its luminance (mode "L", see `decode_grey`). Raises ImageRejected with the
    reason, and TypeError when `data` is not bytes (a path, say: read the file first).
    """
    image, size = _opened(data, settings)
    loaded, turned = _loaded(image, settings, grey)
    return loaded, _shown(size, turned)


def decode_grey(data: bytes, settings: OrbSettings) -> tuple[np.ndarray, tuple[int, int]]:
    """The grey-level image ORB describes: a 2-D uint8 array no larger than
    `settings.max_side`, and its original (width, height) as shown (see `open_image`).

    A colour JPEG's grey levels are its luminance channel as libjpeg decodes it (what
    OpenCV's IMREAD_GRAYSCALE gives), not its decoded RGB converted back; every other
    image is `to_grey` of `open_image`. A plain JPEG (RGB or grey, no EXIF block, no larger
    than orb.max_side, ending with its end-of-image marker) is decoded by OpenCV: the same
    pixels, 0.09 ms instead of 0.13 through Pillow for a 100 x 100 Fruits-360 image. Its
    header is read by bovw.image.jpeg_header when that reader is sure of it (decode_grey
    then takes 51 us instead of 69, bench/jpeg_headers.py), else by Pillow. Anything else,
    or anything OpenCV cannot decode, takes Pillow's path and its reject reasons. Raises
    like `open_image`.
    """
    frame = plain_jpeg_frame(data) if isinstance(data, bytes) else None
    image = None
    if frame is not None and frame.width * frame.height <= settings.max_pixels:
        # The reader is only sure of a JPEG Pillow reads as RGB or "L" without EXIF.
        size, plain = (frame.width, frame.height), True
    else:
        image, size = _opened(data, settings)
        plain = (image.format == "JPEG" and image.mode in ("RGB", "L")
                 and "exif" not in image.info)
    if plain and max(size) <= settings.max_side and bytes(data[-2:]) == _END_OF_IMAGE:
        grey = _opencv_grey(data, size)
        if grey is not None:
            return grey, size
    if image is None:
        image, size = _opened(data, settings)
    loaded, turned = _loaded(image, settings, grey=True)
    return to_grey(loaded), _shown(size, turned)


def _opencv_grey(data: bytes, size: tuple[int, int]) -> np.ndarray | None:
    """The JPEG `data` decoded to grey by OpenCV, or None when OpenCV cannot decode it to
    the (width, height) `size` its header declares."""
    grey = cv2.imdecode(np.frombuffer(data, np.uint8),
                        cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
    return grey if grey is not None and grey.shape == (size[1], size[0]) else None


# A JPEG cut short lacks it: Pillow refuses such a file, OpenCV would fill in the rest.
_END_OF_IMAGE = b"\xff\xd9"


def _opened(data: bytes, settings: OrbSettings) -> tuple[Image.Image, tuple[int, int]]:
    """The image's header read and checked (type, size, pixel limit); nothing decoded."""
    if data is not None and not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"open_image takes the bytes of an image file, not "
                        f"{type(data).__name__}")
    if not data:
        raise ImageRejected("empty file")
    try:
        image = Image.open(io.BytesIO(data))
    except Exception:  # Pillow raises many types for unrecognisable input
        raise ImageRejected(_unopenable_reason(bytes(data))) from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageRejected(f"invalid image size {width}x{height}")
    if width * height > settings.max_pixels:
        raise ImageRejected(
            f"image too large: {width}x{height} pixels exceeds orb.max_pixels={settings.max_pixels}"
        )
    return image, (width, height)


# EXIF orientations that turn an image a quarter turn (Pillow's exif_transpose: transpose,
# rotate 270, transverse, rotate 90): its width and height change places.
_ORIENTATION = 0x0112
_QUARTER_TURNS = (5, 6, 7, 8)


def _shown(size: tuple[int, int], turned: bool) -> tuple[int, int]:
    """The (width, height) `size` a file declares, as shown after its EXIF orientation."""
    return (size[1], size[0]) if turned else size


def _loaded(image: Image.Image, settings: OrbSettings, grey: bool
            ) -> tuple[Image.Image, bool]:
    """An opened image decoded, turned by its EXIF orientation and shrunk to max_side; and
    whether that orientation was a quarter turn (the run records the size as shown, and
    the Predictor resizes photos to it: a portrait photo stored landscape was squashed)."""
    width, height = image.size
    try:
        if image.format == "JPEG":
            # libjpeg converts to grey itself, and decodes at a reduced scale when asked.
            large = max(width, height) > 2 * settings.max_side
            if grey or large:
                image.draft("L" if grey else image.mode,
                            (settings.max_side, settings.max_side) if large else None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
        turned = image.getexif().get(_ORIENTATION, 1) in _QUARTER_TURNS
        image = ImageOps.exif_transpose(image)
    except Exception as error:
        raise ImageRejected(f"corrupt or truncated {image.format or 'image'} image: "
                            f"{first_line(error)}") from None
    if max(image.size) > settings.max_side:
        image.thumbnail((settings.max_side, settings.max_side), Image.Resampling.BILINEAR)
    return image, turned


def _unopenable_reason(data: bytes) -> str:
    """The reject reason of bytes Pillow could not open: what the plugin of the photo format
    they start like says is wrong with them, or that they are not an image at all."""
    Image.init()
    for kind in _PHOTO_FORMATS:
        factory, accept = Image.OPEN.get(kind, (None, None))
        if factory is not None and accept is not None and accept(data[:16]) is True:
            return f"corrupt or truncated {kind} image: {_plugin_error(factory, data)}"
    return "not an image (unrecognised format)"


def _plugin_error(factory, data: bytes) -> str:
    """What a Pillow plugin, asked alone, finds wrong with `data` (Image.open tries every
    plugin and keeps none of their errors)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            factory(io.BytesIO(data), None)
    except Exception as error:
        detail = first_line(error)
        if detail and detail != "not identified by this driver":
            return detail
    return "its header cannot be read"


def to_grey(image: Image.Image) -> np.ndarray:
    """A 2-D uint8 grey-level array for any Pillow mode (16-bit, RGBA, CMYK, palette...)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        return np.clip(values * (255.0 / peak), 0, 255).astype(np.uint8)
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        return np.clip(values, 0, 255).astype(np.uint8)
    return np.asarray(_on_white(image).convert("L"), dtype=np.uint8)


def to_rgb(image: Image.Image) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array for any Pillow mode; transparency becomes white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        grey = to_grey(image)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(_on_white(image).convert("RGB"), dtype=np.uint8)


def _on_white(image: Image.Image) -> Image.Image:
    """`image` with its transparent areas (if any) made white: an alpha channel, or a
    colour key (a palette entry, or a PNG's tRNS grey level or RGB colour)."""
    keyed = "transparency" in image.info and image.mode in ("P", "L", "RGB")
    if image.mode in ("RGBA", "LA", "PA") or keyed:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba)
    return image

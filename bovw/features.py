"""Per-image work, free of Spark: bytes in, ORB descriptors (n, 32) uint8 out.

Every function here is pure and total on its inputs: `extract_descriptors` never
raises; an unreadable image comes back as an `Extraction` with a reject reason.
"""

from __future__ import annotations

import functools
import hashlib
import io
import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, ImageOps

from bovw.config import OrbSettings

DESCRIPTOR_BYTES = 32
EMPTY_DESCRIPTORS = np.zeros((0, DESCRIPTOR_BYTES), dtype=np.uint8)
EMPTY_POSITIONS = np.zeros((0, 2), dtype=np.uint8)

# Pillow's own bomb guard is replaced by the configurable pixel limit checked below.
Image.MAX_IMAGE_PIXELS = None


class ImageRejected(ValueError):
    """An input that cannot be turned into an image; the message is the reject reason."""


@dataclass(frozen=True)
class Extraction:
    """The result for one image: descriptors, or the reason it was rejected.

    `positions` holds each keypoint's (x, y) relative to the image, quantised to 0..255
    (x * 256 / width), which is exact enough for spatial-pyramid cells up to 256 x 256.
    """

    descriptors: np.ndarray
    reject_reason: str | None = None
    width: int = 0
    height: int = 0
    positions: np.ndarray = field(default_factory=lambda: EMPTY_POSITIONS)

    @property
    def n_keypoints(self) -> int:
        return int(self.descriptors.shape[0])


def open_image(data: bytes, settings: OrbSettings) -> tuple[Image.Image, tuple[int, int]]:
    """Decode image bytes to a Pillow image no larger than `settings.max_side`.

    Returns the image and its original (width, height) as declared by the file.
    The pixel count is checked from the header before any decoding, so a small file
    declaring a huge size is refused cheaply. Raises ImageRejected with the reason.
    """
    if not data:
        raise ImageRejected("empty file")
    try:
        image = Image.open(io.BytesIO(data))
    except Exception:  # Pillow raises many types for unrecognisable input
        raise ImageRejected("not an image (unrecognised format)") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageRejected(f"invalid image size {width}x{height}")
    if width * height > settings.max_pixels:
        raise ImageRejected(
            f"image too large: {width}x{height} pixels exceeds orb.max_pixels={settings.max_pixels}"
        )
    try:
        if image.format == "JPEG" and max(width, height) > 2 * settings.max_side:
            # Let libjpeg decode at a reduced scale instead of decoding every pixel.
            image.draft(image.mode, (settings.max_side, settings.max_side))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
        image = ImageOps.exif_transpose(image)
    except Exception as error:
        raise ImageRejected(f"corrupt or truncated image: {_first_line(error)}") from None
    if max(image.size) > settings.max_side:
        image.thumbnail((settings.max_side, settings.max_side), Image.Resampling.BILINEAR)
    return image, (width, height)


def to_grey(image: Image.Image) -> np.ndarray:
    """A 2-D uint8 grey-level array for any Pillow mode (16-bit, RGBA, CMYK, palette...)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        return np.clip(values * (255.0 / peak), 0, 255).astype(np.uint8)
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        return np.clip(values, 0, 255).astype(np.uint8)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become white, like the Fruits-360 background.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("L"), dtype=np.uint8)


@functools.lru_cache(maxsize=8)
def _orb(settings: OrbSettings) -> cv2.ORB:
    return cv2.ORB_create(
        nfeatures=settings.nfeatures,
        scaleFactor=settings.scale_factor,
        nlevels=settings.n_levels,
        edgeThreshold=settings.edge_threshold,
        patchSize=settings.patch_size,
        fastThreshold=settings.fast_threshold,
    )


def describe_grey(grey: np.ndarray, settings: OrbSettings) -> np.ndarray:
    """ORB descriptors of a grey image as an (n, 32) uint8 array; n may be 0."""
    return describe_keypoints(grey, settings)[0]


def describe_keypoints(grey: np.ndarray, settings: OrbSettings) -> tuple[np.ndarray, np.ndarray]:
    """ORB descriptors (n, 32) uint8 and keypoint positions (n, 2) uint8 of a grey image.

    Positions are relative to the image: x * 256 // width, y * 256 // height.
    """
    if settings.upscale != 1.0:
        grey = cv2.resize(
            grey, None, fx=settings.upscale, fy=settings.upscale, interpolation=cv2.INTER_LINEAR
        )
    orb = _orb(settings)
    if settings.sampling == "dense":
        keypoints, descriptors = orb.compute(grey, dense_keypoints(grey.shape, settings))
    else:
        keypoints, descriptors = orb.detectAndCompute(grey, None)
    if descriptors is None or len(descriptors) == 0:
        return EMPTY_DESCRIPTORS, EMPTY_POSITIONS
    height, width = grey.shape[:2]
    points = cv2.KeyPoint_convert(keypoints).astype(np.float64).reshape(-1, 2)
    scale = np.array([256.0 / width, 256.0 / height])
    positions = np.clip(np.floor(points * scale), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(descriptors, dtype=np.uint8), positions


@functools.lru_cache(maxsize=64)
def dense_keypoints(shape: tuple[int, ...], settings: OrbSettings) -> tuple[cv2.KeyPoint, ...]:
    """Keypoints on a regular grid, one grid per scale, clear of the descriptor border.

    Cached per image shape: a photo collection has few distinct sizes, and building a few
    hundred KeyPoint objects costs as much as describing them.
    """
    height, width = shape[:2]
    keypoints = []
    for scale in settings.dense_scales:
        size = settings.patch_size * scale
        margin = int(np.ceil(size / 2)) + 1
        step = max(1, int(round(settings.dense_step * scale)))
        for y in range(margin, height - margin, step):
            for x in range(margin, width - margin, step):
                keypoints.append(cv2.KeyPoint(float(x), float(y), float(size)))
    return tuple(keypoints)


def extract_descriptors(data: bytes, settings: OrbSettings) -> Extraction:
    """Decode `data` and describe it with ORB. Never raises.

    Returns an Extraction whose descriptors are (n, 32) uint8 (n = 0 when the image has
    no keypoints, which is not a reject), or whose reject_reason says why the bytes could
    not be used.
    """
    try:
        image, (width, height) = open_image(data, settings)
        grey = to_grey(image)
    except ImageRejected as rejected:
        return Extraction(EMPTY_DESCRIPTORS, str(rejected))
    except Exception as error:  # a decoder bug must not end a 90,000-image run
        return Extraction(EMPTY_DESCRIPTORS, f"decoder failed: {_first_line(error)}")
    try:
        descriptors, positions = describe_keypoints(grey, settings)
    except cv2.error as error:
        return Extraction(EMPTY_DESCRIPTORS, f"OpenCV failed: {_first_line(error)}", width, height)
    except Exception as error:  # e.g. MemoryError: one image must not fail a whole task
        detail = _first_line(error)
        if detail != type(error).__name__:
            detail = f"{type(error).__name__}: {detail}"
        return Extraction(EMPTY_DESCRIPTORS, f"description failed: {detail}", width, height)
    return Extraction(descriptors, None, width, height, positions)


def image_rng(seed: int, path: str) -> np.random.Generator:
    """A random generator fixed by (seed, path): the same in every process and partition."""
    digest = hashlib.blake2b(f"{seed}\0{path}".encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def pack(rows: np.ndarray) -> bytes:
    """Row-major bytes of an (n, width) uint8 array (descriptors or positions), for Parquet."""
    return np.ascontiguousarray(rows, dtype=np.uint8).tobytes()


def unpack(blob: bytes | None, width: int = DESCRIPTOR_BYTES) -> np.ndarray:
    """The inverse of `pack`: an (n, width) uint8 array (n = 0 for empty or null)."""
    if not blob:
        return EMPTY_DESCRIPTORS if width == DESCRIPTOR_BYTES else np.zeros((0, width), np.uint8)
    if len(blob) % width:
        raise ValueError(f"packed rows must be a multiple of {width} bytes")
    return np.frombuffer(blob, dtype=np.uint8).reshape(-1, width)


def unpack_positions(blob: bytes | None) -> np.ndarray:
    """Keypoint positions packed by `pack`: an (n, 2) uint8 array."""
    return unpack(blob, 2)


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:200]

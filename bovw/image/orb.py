"""ORB descriptors of one image, free of Spark: bytes in, (n, 32) uint8 descriptors out.

Every function here is pure and total on its inputs: `extract_descriptors` never
raises; an unreadable image comes back as an `Extraction` with a reject reason.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from dataclasses import dataclass, field

import cv2
import numpy as np

from bovw.config import OrbSettings, ToneSettings
from bovw.errors import first_line
from bovw.image.decode import ImageRejected, decode_grey
from bovw.image.dense_orb import DESCRIPTOR_BYTES, grid_coordinates, grid_descriptors
from bovw.image.tone import EMPTY_TONE, tone_histogram

__all__ = ["DESCRIPTOR_BYTES", "DETAIL_LEVEL", "DETAIL_SIGMA", "EMPTY_DESCRIPTORS",
           "EMPTY_POSITIONS", "Extraction", "dense_keypoints", "describe_keypoints",
           "extract_descriptors", "image_key", "image_rng", "pack", "scaled_image",
           "textured_patches", "unpack", "unpack_positions"]

EMPTY_DESCRIPTORS = np.zeros((0, DESCRIPTOR_BYTES), dtype=np.uint8)
EMPTY_POSITIONS = np.zeros((0, 2), dtype=np.uint8)

@dataclass(frozen=True)
class Extraction:
    """The result for one image: descriptors, or the reason it was rejected.

    `positions` holds each keypoint's (x, y) relative to the image, quantised to 0..255
    (x * 256 / width), which is exact enough for spatial-pyramid cells up to 256 x 256.
    `tone` is the grey image's tone block (bovw.image.tone) when it was asked for, else empty.
    """

    descriptors: np.ndarray
    reject_reason: str | None = None
    width: int = 0
    height: int = 0
    positions: np.ndarray = field(default_factory=lambda: EMPTY_POSITIONS)
    tone: np.ndarray = field(default_factory=lambda: EMPTY_TONE)

    @property
    def n_keypoints(self) -> int:
        """How many descriptors the image gave."""
        return int(self.descriptors.shape[0])


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


def describe_keypoints(grey: np.ndarray, settings: OrbSettings) -> tuple[np.ndarray, np.ndarray]:
    """ORB descriptors (n, 32) uint8 and keypoint positions (n, 2) uint8 of a grey image.

    Positions are relative to the image: x * 256 // width, y * 256 // height, row i of
    both arrays belonging to the same keypoint (OpenCV drops keypoints closer than
    `edge_threshold` to the border; positions are taken from the keypoints it kept).
    With dense sampling the rows come scale by scale, in the order of `dense_scales`.
    """
    if settings.upscale != 1.0:
        grey = cv2.resize(
            grey, None, fx=settings.upscale, fy=settings.upscale, interpolation=cv2.INTER_LINEAR
        )
    if settings.sampling == "dense":
        return _describe_dense(grey, settings)
    keypoints, descriptors = _orb(settings).detectAndCompute(grey, None)
    if descriptors is None or len(descriptors) == 0:
        return EMPTY_DESCRIPTORS, EMPTY_POSITIONS
    height, width = grey.shape[:2]
    points = cv2.KeyPoint_convert(keypoints).astype(np.float64).reshape(-1, 2)
    return np.ascontiguousarray(descriptors, dtype=np.uint8), _relative(points, width, height)


def _describe_dense(grey: np.ndarray, settings: OrbSettings) -> tuple[np.ndarray, np.ndarray]:
    # OpenCV's ORB.compute ignores KeyPoint.size: a keypoint of octave 0 is described by
    # the same patch_size patch whatever its size. So scale s describes the image resized
    # by 1/s, on the same grid (dense_step, patch_size) at that size: patches and steps
    # of patch_size * s and dense_step * s pixels of the original image. For s = 2 this is
    # byte for byte what ORB's own pyramid gives at octave 1 with scaleFactor 2.
    # bovw.image.dense_orb gives ORB.compute's bytes (5x faster on a 100 x 100 photo)
    # where it agrees with the installed OpenCV, which it checks; OpenCV describes the
    # grid elsewhere.
    height, width = grey.shape[:2]
    descriptor_blocks, position_blocks = [], []
    for scale in settings.dense_scales:
        image = grey if scale == 1.0 else scaled_image(grey, scale)
        described = grid_descriptors(image, settings.patch_size, settings.edge_threshold,
                                     settings.dense_step)
        if described is None:
            described = _opencv_grid_descriptors(_orb(settings), image, settings)
        descriptors, points = described
        if len(descriptors) == 0:
            continue
        if image is not grey:
            # Pixel centres: x in the resized image covers (x + 0.5) * width / its width
            # - 0.5 in the original, the point its patch is centred on.
            ratio = np.array([width / image.shape[1], height / image.shape[0]])
            points = (points + 0.5) * ratio - 0.5
        descriptor_blocks.append(descriptors)
        position_blocks.append(_relative(points, width, height))
    if not descriptor_blocks:
        return EMPTY_DESCRIPTORS, EMPTY_POSITIONS
    return (np.ascontiguousarray(np.concatenate(descriptor_blocks), dtype=np.uint8),
            np.concatenate(position_blocks))


def scaled_image(grey: np.ndarray, scale: float) -> np.ndarray:
    """`grey` resized by 1 / scale (each side rounded, at least 1 px).

    Shrinking averages the pixels each new one covers (INTER_AREA), so a large scale does
    not alias; enlarging interpolates linearly.
    """
    height, width = grey.shape[:2]
    size = (max(1, round(width / scale)), max(1, round(height / scale)))
    interpolation = cv2.INTER_AREA if scale > 1.0 else cv2.INTER_LINEAR
    return cv2.resize(grey, size, interpolation=interpolation)


def _relative(points: np.ndarray, width: int, height: int) -> np.ndarray:
    scale = np.array([256.0 / width, 256.0 / height])
    return np.clip(np.floor(points * scale), 0, 255).astype(np.uint8)


def dense_keypoints(shape: tuple[int, ...], settings: OrbSettings) -> tuple[cv2.KeyPoint, ...]:
    """The grid of one dense scale on an image of `shape` (the image resized for that scale).

    Points every `dense_step` px in x and y from a margin of ceil(patch_size / 2) + 1 px,
    up to (excluding) that margin from the far side, row by row; each of size patch_size.
    ORB.compute then drops those closer than `edge_threshold` to the border.
    """
    return _grid(shape[0], shape[1], settings.patch_size, settings.dense_step)


@functools.lru_cache(maxsize=64)
def _grid(height: int, width: int, patch_size: int, step: int) -> tuple[cv2.KeyPoint, ...]:
    # Cached per image size: a photo collection has few distinct sizes, and building a few
    # hundred KeyPoint objects costs as much as describing them.
    ys, xs = grid_coordinates(height, width, patch_size, step)
    return tuple(cv2.KeyPoint(float(x), float(y), float(patch_size)) for y in ys for x in xs)


def _opencv_grid_descriptors(orb: cv2.ORB, image: np.ndarray, settings: OrbSettings
                             ) -> tuple[np.ndarray, np.ndarray]:
    grid = dense_keypoints(image.shape, settings)
    if not grid:
        return EMPTY_DESCRIPTORS, np.zeros((0, 2))
    keypoints, descriptors = orb.compute(image, grid)
    if descriptors is None or len(descriptors) == 0:
        return EMPTY_DESCRIPTORS, np.zeros((0, 2))
    return descriptors, cv2.KeyPoint_convert(keypoints).astype(np.float64).reshape(-1, 2)


# A patch shows detail when its grey levels stray from their own Gaussian blur (sigma
# 1 px) by at least DETAIL_LEVEL grey levels, root mean square over the patch. Plain
# areas, JPEG noise on them and a photo enlarged with smooth interpolation stay below it.
# Measured (python -m bench.photo_detail ../shared/data/fruits360-dev): each of the 3,902
# Test photos (100x100) has at least 35 such patches of the 289 of its grid (a Peach; the
# median photo of every class 65 or more), each of the 11.6k Training photos 39; the same
# Test photos shrunk to 16x16 px and enlarged back have at most 11, to 8x8 px none.
DETAIL_SIGMA = 1.0
DETAIL_LEVEL = 4.0


def textured_patches(grey: np.ndarray, settings: OrbSettings) -> tuple[int, int]:
    """(patches that show detail, patches) on the scale-1 dense grid of a grey image:
    orb.patch_size px patches every orb.dense_step px, those closer than
    orb.edge_threshold to the border left out as ORB leaves them (17 x 17 = 289 on a
    100x100 image), whatever orb.sampling is. See DETAIL_LEVEL. Pure; (0, 0) for an image
    too small for any patch.

    With dense sampling every image of a size gets the same number of descriptors, a
    blank or blown-up one included; this count tells those apart from a real photo.
    """
    height, width = grey.shape[:2]
    margin = -(-settings.patch_size // 2) + 1
    edge = settings.edge_threshold
    xs = [x for x in range(margin, width - margin, settings.dense_step) if edge <= x < width - edge]
    ys = [y for y in range(margin, height - margin, settings.dense_step)
          if edge <= y < height - edge]
    if not xs or not ys:
        return 0, 0
    levels = grey.astype(np.float32)
    fine = levels - cv2.GaussianBlur(levels, (0, 0), DETAIL_SIGMA)
    energy = cv2.boxFilter(fine * fine, -1, (settings.patch_size, settings.patch_size),
                           normalize=True, borderType=cv2.BORDER_REFLECT)
    # The box filter's running sums can leave a flat area a rounding error below 0.
    detail = np.sqrt(np.maximum(energy[np.ix_(ys, xs)], 0.0))
    return int(np.count_nonzero(detail >= DETAIL_LEVEL)), len(xs) * len(ys)


def extract_descriptors(data: bytes, settings: OrbSettings, tone: ToneSettings | None = None
                        ) -> Extraction:
    """Decode `data` and describe it with ORB. Never raises.

    Returns an Extraction whose descriptors are (n, 32) uint8 (n = 0 when the image has
    no keypoints, which is not a reject), or whose reject_reason says why the bytes could
    not be used. With `tone` enabled, its tone block is the histogram of the grey image
    ORB describes (before orb.upscale).
    """
    try:
        grey, (width, height) = decode_grey(data, settings)
    except ImageRejected as rejected:
        return Extraction(EMPTY_DESCRIPTORS, str(rejected))
    except Exception as error:  # a decoder bug must not end a 90,000-image run
        return Extraction(EMPTY_DESCRIPTORS, f"decoder failed: {first_line(error)}")
    try:
        descriptors, positions = describe_keypoints(grey, settings)
    except cv2.error as error:
        return Extraction(EMPTY_DESCRIPTORS, f"OpenCV failed: {first_line(error)}", width, height)
    except Exception as error:  # e.g. MemoryError: one image must not fail a whole task
        detail = first_line(error)
        if detail != type(error).__name__:
            detail = f"{type(error).__name__}: {detail}"
        return Extraction(EMPTY_DESCRIPTORS, f"description failed: {detail}", width, height)
    block = tone_histogram(grey, tone) if tone is not None and tone.enabled else EMPTY_TONE
    return Extraction(descriptors, None, width, height, positions, block)


def image_key(path: str) -> str:
    """An image's name wherever its dataset lies: "<class folder>/<file name>" of `path`
    (any "/"-separated path or URI), in Unicode NFC.

    The folders above the class are left out, so that a copy of the same images on another
    disk, under another folder or on S3 draws the same random choices, and NFC makes the
    macOS (NFD) and Linux spellings of "Pomme é.jpg" one name.
    """
    return unicodedata.normalize("NFC", "/".join(path.rsplit("/", 2)[-2:]))


def image_rng(seed: int, path: str) -> np.random.Generator:
    """A random generator fixed by (seed, image_key(path)): the same in every process and
    partition, and for a copy of the image under another folder."""
    digest = hashlib.blake2b(f"{seed}\0{image_key(path)}".encode(), digest_size=8).digest()
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

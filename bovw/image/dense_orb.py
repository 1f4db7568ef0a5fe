"""ORB descriptors of a dense grid, byte for byte those of OpenCV's `ORB.compute`, in a
few array operations instead of 512 pixel lookups per keypoint.

What `ORB.compute` does with keypoints it is given (octave 0, as the grid's are): it
keeps their angle (cv2.KeyPoint's default, -1 degree), drops those closer than
edge_threshold to the border, blurs the image (7 x 7 Gaussian, sigma 2, reflected
border; computed on an ROI of its bordered copy, which takes OpenCV's separable filter
with a float kernel: `cv2.sepFilter2D` with that kernel gives the same pixels, where
`cv2.GaussianBlur` on the bare image differs by one grey level here and there), and sets
bit k of byte i when the blurred pixel at pattern point 16 i + 2 k, turned by the
keypoint's angle, is darker than the one at point 16 i + 2 k + 1. For a patch size other
than 31 its 512 points come from OpenCV's random generator seeded with 0x34985739, each
coordinate uniform in [-patch_size // 2, patch_size // 2].

On a grid every keypoint has the same angle, so every pattern point is one fixed pixel
offset: the blurred windows around all grid points are read once, and each bit is one
comparison of two of their rows. About 58 us on a 100 x 100 image (289 points) where
`ORB.compute` takes 326 us (`python -m bench.dense_grid`); faster too on 1024 x 1024
images, at 1 and 5 px steps and with 64 px patches. A large image on a fine grid is
described a block of grid rows at a time, which bounds the memory to a few MB beyond the
descriptors themselves.

`grid_descriptors` answers only where it was checked to agree with the installed OpenCV
(`agrees_with_opencv`, once per process and setting); elsewhere it returns None and the
caller asks OpenCV.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["DESCRIPTOR_BYTES", "agrees_with_opencv", "grid_coordinates", "grid_descriptors",
           "pattern_points"]

DESCRIPTOR_BYTES = 32  # ORB's 256 tests, 8 to a byte
# How many window pixels a block of grid rows copies at most (a few MB).
_BLOCK_VALUES = 1 << 22
# The largest side of the check's noise images (4 MB): settings that need larger ones (an
# edge or a step of hundreds of pixels) are left to OpenCV.
_CHECK_MAX_SIDE = 2048
# bit_pattern_31_, OpenCV's learnt pattern for 31 px patches, is a table not kept here.
_LEARNT_PATTERN_SIZE = 31
_PATTERN_SEED = 0x34985739
_RNG_MULTIPLIER = 4164903690
_PATTERN_POINTS = 512
# cv2.KeyPoint's default angle, which ORB.compute keeps for the keypoints it is given.
_KEYPOINT_DEGREES = -1.0
_BLUR = cv2.getGaussianKernel(7, 2.0, cv2.CV_32F)
_BIT_WEIGHTS = (1 << np.arange(8)).astype(np.uint8)


def pattern_points(patch_size: int) -> np.ndarray:
    """The 512 (x, y) points of OpenCV's ORB pattern for `patch_size` (not 31), int64 (512,
    2): OpenCV's multiply-with-carry generator (cv::RNG) seeded with 0x34985739, x then y of
    each point drawn uniform in [-patch_size // 2, patch_size // 2]."""
    low, span = -(patch_size // 2), patch_size // 2 + 1 + patch_size // 2
    state, drawn = _PATTERN_SEED, []
    for _ in range(2 * _PATTERN_POINTS):
        state = (state & 0xFFFFFFFF) * _RNG_MULTIPLIER + (state >> 32)
        drawn.append(low + (state & 0xFFFFFFFF) % span)
    return np.array(drawn, dtype=np.int64).reshape(_PATTERN_POINTS, 2)


@dataclass(frozen=True)
class _Offsets:
    reach: int  # the farthest offset from the centre, in x or y
    dy: np.ndarray  # (m,) int64, the distinct offsets (m <= 512)
    dx: np.ndarray
    first: np.ndarray  # (256,) indices into dy/dx: the darker-than test's first pixel
    second: np.ndarray  # ... and its second


@functools.lru_cache(maxsize=16)
def _offsets(patch_size: int) -> _Offsets:
    """The pattern turned by the keypoints' angle and rounded as ORB does (float32
    products, round half to even), as the distinct pixel offsets it uses and, for each
    bit in OpenCV's order (byte i, bit k at 8 i + k), which two of them it compares."""
    radians = np.float32(_KEYPOINT_DEGREES) * np.float32(math.pi / 180.0)
    cos, sin = np.float32(math.cos(radians)), np.float32(math.sin(radians))
    points = pattern_points(patch_size).astype(np.float32)
    dx = np.rint(points[:, 0] * cos - points[:, 1] * sin).astype(np.int64)
    dy = np.rint(points[:, 0] * sin + points[:, 1] * cos).astype(np.int64)
    used, which = np.unique(np.stack([dy, dx], axis=1), axis=0, return_inverse=True)
    which = which.ravel()
    return _Offsets(int(np.abs(used).max()), used[:, 0], used[:, 1], which[0::2], which[1::2])


@functools.lru_cache(maxsize=64)
def grid_coordinates(height: int, width: int, patch_size: int, step: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(ys, xs): the rows and columns of the dense grid on a height x width image, every
    `step` px from a margin of ceil(patch_size / 2) + 1 px up to (excluding) that margin
    from the far side; the grid is every (y, x) pair, row by row."""
    margin = -(-patch_size // 2) + 1
    ys = np.arange(margin, height - margin, step, dtype=np.int64)
    xs = np.arange(margin, width - margin, step, dtype=np.int64)
    ys.setflags(write=False)
    xs.setflags(write=False)
    return ys, xs


def grid_descriptors(grey: np.ndarray, patch_size: int, edge_threshold: int, step: int
                     ) -> tuple[np.ndarray, np.ndarray] | None:
    """ORB descriptors of the dense grid of a grey image, as `ORB.compute` gives them.

    `grey` is a 2-D uint8 array. Returns (descriptors (n, 32) uint8, points (n, 2) float64
    (x, y)) for the grid points ORB keeps (at least edge_threshold from every side), row
    by row, n >= 0; or None where this is not known to agree with the installed OpenCV (a
    31 px patch, a pattern reaching past edge_threshold, other arrays), for the caller to
    ask OpenCV.
    """
    if grey.dtype != np.uint8 or grey.ndim != 2:
        return None
    if not agrees_with_opencv(patch_size, edge_threshold, step):
        return None
    return _described(grey, patch_size, edge_threshold, step)


def _described(grey: np.ndarray, patch_size: int, edge_threshold: int, step: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """grid_descriptors without its checks: `grey` 2-D uint8, the pattern within
    edge_threshold of every kept point."""
    ys, xs, points = _kept_grid(*grey.shape, patch_size, edge_threshold, step)
    if not len(points):
        return np.zeros((0, DESCRIPTOR_BYTES), np.uint8), points
    offsets = _offsets(patch_size)
    reach, side = offsets.reach, 2 * offsets.reach + 1
    blurred = cv2.sepFilter2D(np.ascontiguousarray(grey), -1, _BLUR, _BLUR,
                              borderType=cv2.BORDER_REFLECT_101)
    row, column = blurred.strides
    # Grid rows a block at a time, so that a large image on a fine grid holds a few MB of
    # windows at once rather than offsets x points bytes.
    rows_per_block = max(1, _BLOCK_VALUES // (len(offsets.dy) * len(xs)))
    blocks = []
    for top in range(0, len(ys), rows_per_block):
        rows = ys[top:top + rows_per_block]
        # Every point's (2 reach + 1)^2 window as (window row, window column, grid row,
        # grid column), a view; of it, the pixels the pattern uses, one row each (m, n).
        # When it uses them all (8 px patches: 81), a plain copy is quicker and in the same
        # row-major order as the offsets, which np.unique sorted.
        windows = as_strided(
            blurred[rows[0] - reach:, xs[0] - reach:], shape=(side, side, len(rows), len(xs)),
            strides=(row, column, step * row, step * column), writeable=False,
        )
        windows = (np.ascontiguousarray(windows) if len(offsets.dy) == side * side else
                   windows[offsets.dy + reach, offsets.dx + reach]).reshape(len(offsets.dy), -1)
        bits = windows[offsets.first] < windows[offsets.second]
        blocks.append(np.einsum("k,ikn->ni", _BIT_WEIGHTS,
                                bits.view(np.uint8).reshape(DESCRIPTOR_BYTES, 8, -1)))
    return np.ascontiguousarray(np.concatenate(blocks)), points


@functools.lru_cache(maxsize=64)
def _kept_grid(height: int, width: int, patch_size: int, edge_threshold: int, step: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ys, xs, points): the grid rows and columns ORB keeps (at least edge_threshold from
    every side) and their (x, y) points, row by row, (n, 2) float64, read-only."""
    ys, xs = grid_coordinates(height, width, patch_size, step)
    ys = ys[(ys >= edge_threshold) & (ys < height - edge_threshold)]
    xs = xs[(xs >= edge_threshold) & (xs < width - edge_threshold)]
    points = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None]), axis=-1)
    points = points.reshape(-1, 2).astype(np.float64)
    points.setflags(write=False)
    return ys, xs, points


@functools.lru_cache(maxsize=16)
def agrees_with_opencv(patch_size: int, edge_threshold: int, step: int) -> bool:
    """Whether `grid_descriptors` gives `ORB.compute`'s bytes for these settings with the
    installed OpenCV, checked on two seeded noise images (odd and even sizes) that keep at
    least 3 x 3 grid points; False for a 31 px patch (OpenCV's learnt pattern), for a
    pattern that reaches past edge_threshold (ORB would read its unblurred border there)
    and where those images would be wider than _CHECK_MAX_SIDE.
    """
    if patch_size == _LEARNT_PATTERN_SIZE or _offsets(patch_size).reach > edge_threshold:
        return False
    # The first kept grid line lies within a step of max(edge, margin): 3 steps more on
    # each axis keep 3 lines or more.
    least = 2 * (max(edge_threshold, -(-patch_size // 2) + 1) + 3 * step) + 1
    if least + 7 > _CHECK_MAX_SIDE:
        return False
    orb = cv2.ORB_create(edgeThreshold=edge_threshold, patchSize=patch_size)
    generator = np.random.default_rng(_PATTERN_SEED)
    for height, width in ((least + 2, least + 7), (least + 5, least)):
        image = generator.integers(0, 256, (height, width), dtype=np.uint8)
        # Only the points ORB keeps, which it then computes in the order given: the same
        # cost whatever the border.
        ys, xs, _ = _kept_grid(height, width, patch_size, edge_threshold, step)
        grid = [cv2.KeyPoint(float(x), float(y), float(patch_size)) for y in ys for x in xs]
        _, expected = orb.compute(image, grid)
        descriptors, _ = _described(image, patch_size, edge_threshold, step)
        # The points need no check of their own: they are the grid's, and a point kept on
        # one side only would change the number of descriptors.
        if expected is None or not np.array_equal(descriptors, expected):
            return False
    return True

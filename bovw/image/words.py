"""Visual words, free of Spark: each ORB descriptor to its nearest vocabulary center, and
the bins of a (spatial-pyramid) word histogram.

A vocabulary lives in one of two spaces (`vocabulary.space`), told apart by its width:
"bytes", the 32 byte values of a descriptor (centers (k, 32)), or "bits", its 256 bits
unpacked to 0/1 (centers (k, 256)). In the bits space the squared Euclidean distance
from a descriptor to a binary center is their Hamming distance, the distance ORB's
descriptors are made for; in the bytes space two descriptors one bit apart can be 128
apart (0x80 against 0x00) and eight bits apart only 1 (0x80 against 0x7F).

Shared by the Spark histograms stage and by `bovw.predict.predictor`, so both compute histograms
with the very same arithmetic (and the same tie-breaking).
"""

from __future__ import annotations

import numpy as np

from bovw.config import VOCABULARY_WIDTHS, pyramid_cells
from bovw.image.orb import DESCRIPTOR_BYTES

__all__ = ["SPACES", "augmented_points", "descriptor_points", "histogram_length",
           "nearest_words", "pyramid_bins", "scoring_matrix", "soft_words", "space_of",
           "word_counts"]

# The width of a descriptor in each vocabulary space.
SPACES = VOCABULARY_WIDTHS


def space_of(width: int) -> str:
    """The vocabulary space whose points are `width` wide (32: "bytes", 256: "bits");
    raises ValueError for any other width."""
    for space, space_width in SPACES.items():
        if width == space_width:
            return space
    raise ValueError(f"a vocabulary is {' or '.join(map(str, SPACES.values()))} wide, not "
                     f"{width}")


def descriptor_points(descriptors: np.ndarray, space: str) -> np.ndarray:
    """An (n, 32) uint8 array of ORB descriptors as (n, SPACES[space]) float32 points:
    the byte values ("bytes") or the bits, most significant first, as 0/1 ("bits")."""
    descriptors = np.asarray(descriptors, dtype=np.uint8).reshape(-1, DESCRIPTOR_BYTES)
    if space == "bits":
        return np.unpackbits(descriptors, axis=1).astype(np.float32)
    if space == "bytes":
        return descriptors.astype(np.float32)
    raise ValueError(f"unknown vocabulary space {space!r}: one of {', '.join(SPACES)}")


def scoring_matrix(centers: np.ndarray) -> np.ndarray:
    """The (d + 1, k) float32 matrix M such that [x, 1] @ M = ||c||^2 - 2 x.c for every
    center c of the (k, d) `centers` (d = 32 or 256, see SPACES): the squared distance to
    each center, less ||x||^2, which is the same for all centers. Computed once per
    vocabulary, not once per image."""
    centers = np.asarray(centers, dtype=np.float32)
    space_of(centers.shape[1])
    return np.vstack([-2.0 * centers.T, (centers * centers).sum(axis=1)[None, :]]).astype(
        np.float32)


def augmented_points(descriptors: np.ndarray, width: int) -> np.ndarray:
    """(n, width + 1) float32: (n, 32) uint8 descriptors as points of the space of that
    width (descriptor_points), each followed by a 1, ready for `@ scoring_matrix(...)`."""
    points = np.ones((len(descriptors), width + 1), dtype=np.float32)
    if width == DESCRIPTOR_BYTES:
        points[:, :-1] = descriptors
    else:
        points[:, :-1] = descriptor_points(descriptors, space_of(width))
    return points


def _scores(descriptors: np.ndarray, scoring: np.ndarray) -> np.ndarray:
    """(n, k) squared distances less ||x||^2 of (n, 32) uint8 descriptors, in the space of
    the vocabulary that `scoring` was made from."""
    # One product does both terms: far less memory traffic than adding ||c||^2 after it.
    return augmented_points(descriptors, scoring.shape[0] - 1) @ scoring


def nearest_words(descriptors: np.ndarray, centers: np.ndarray,
                  scoring: np.ndarray | None = None) -> np.ndarray:
    """Index of the nearest center (Euclidean, in the centers' space: see SPACES) for each
    row of an (n, 32) uint8 array of descriptors.

    `scoring` is scoring_matrix(centers), when the caller has it at hand. Returns an (n,)
    int64 array; ties go to the lowest index.
    """
    if len(descriptors) == 0:
        return np.zeros(0, dtype=np.int64)
    if scoring is None:
        scoring = scoring_matrix(centers)
    return np.argmin(_scores(descriptors, scoring), axis=1)


def soft_words(descriptors: np.ndarray, centers: np.ndarray, neighbours: int, variance: float,
               scoring: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each row of an (n, 32) uint8 array shared among its `neighbours` nearest centers.

    Returns (words, weights), both (n, m) with m = min(neighbours, k): words int64,
    nearest first (ties to the lowest index, as nearest_words); weights float64,
    w_i = exp(-(d_i^2 - d_1^2) / (2 variance)) divided by their sum, so each row sums to 1
    and two words at the same distance get the same share. d^2 are squared Euclidean
    distances as nearest_words computes them (in the centers' space, in float32, less
    ||x||^2, which cancels in the differences). A variance <= 1e-6 counts as 1e-6 (all but
    the nearest words then get ~0). `scoring` as in nearest_words.
    """
    count = min(neighbours, len(centers))
    if len(descriptors) == 0:
        return np.zeros((0, count), dtype=np.int64), np.zeros((0, count))
    if scoring is None:
        scoring = scoring_matrix(centers)
    scores = _scores(descriptors, scoring)
    rows = np.arange(len(descriptors))
    words = np.empty((len(descriptors), count), dtype=np.int64)
    nearest = np.empty((len(descriptors), count), dtype=np.float64)
    # `count` rounds of argmin, each masking the word it found: for a few words much
    # cheaper than sorting or partitioning every row of k scores.
    for rank in range(count):
        words[:, rank] = np.argmin(scores, axis=1)
        nearest[:, rank] = scores[rows, words[:, rank]]
        scores[rows, words[:, rank]] = np.inf
    weights = np.exp(-(nearest - nearest[:, :1]) / (2.0 * max(variance, 1e-6)))
    return words, weights / weights.sum(axis=1, keepdims=True)


def histogram_length(k: int, pyramid_levels: int) -> int:
    """Bins of a spatial-pyramid histogram: k per cell, 4^level cells per level."""
    return k * pyramid_cells(pyramid_levels)


def pyramid_bins(words: np.ndarray, positions: np.ndarray, k: int, pyramid_levels: int
                 ) -> np.ndarray:
    """The histogram bin of every (descriptor, level) pair.

    `positions` are (n, 2) uint8 relative (x, y) as stored by bovw.image.orb. Level L
    splits the image into 2^L x 2^L cells; its bins follow those of the levels before it,
    cell by cell (row-major), k words per cell. Returns an int64 array of n * levels bins.
    """
    bins = [words]
    offset = k
    for level in range(1, pyramid_levels):
        side = 2**level
        shift = 8 - level
        x = positions[:, 0].astype(np.int64) >> shift
        y = positions[:, 1].astype(np.int64) >> shift
        bins.append(offset + (y * side + x) * k + words)
        offset += side * side * k
    return np.concatenate(bins)


def word_counts(descriptors: np.ndarray, centers: np.ndarray, positions: np.ndarray | None = None,
                pyramid_levels: int = 1, scoring: np.ndarray | None = None,
                neighbours: int = 1, variance: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The non-empty bins of one image's histogram (sorted) and their counts; `scoring` as
    in nearest_words.

    With neighbours = 1 each descriptor counts 1 for its nearest word (integer counts);
    with more, its soft_words shares (with `variance`) go to each of its nearest words
    (float64 sums of shares, in descriptor order).
    """
    if neighbours == 1:
        words = nearest_words(descriptors, centers, scoring)
        if pyramid_levels > 1:
            words = pyramid_bins(words, positions, len(centers), pyramid_levels)
        bins, counts = np.unique(words, return_counts=True)
        return bins, counts
    nearest, shares = soft_words(descriptors, centers, neighbours, variance, scoring)
    words, weights = nearest.ravel(), shares.ravel()
    if pyramid_levels > 1:
        # Row by row, each descriptor's words lie next to each other: repeat its position.
        words = pyramid_bins(words, np.repeat(positions, nearest.shape[1], axis=0),
                             len(centers), pyramid_levels)
        weights = np.tile(weights, pyramid_levels)
    bins, inverse = np.unique(words, return_inverse=True)
    return bins, np.bincount(inverse, weights=weights, minlength=len(bins))

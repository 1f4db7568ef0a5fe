"""VLAD encoding of an image's ORB descriptors, free of Spark (`histograms.encoding = "vlad"`).

For each spatial-pyramid cell and each visual word: the sum of the residuals (descriptor
minus word, in the vocabulary's space: 32 byte values or 256 bits, bovw.image.words.SPACES)
of the cell's descriptors whose nearest word it is. Each value is then raised to the
signed `power` (0.5: the signed square root that tames bursty words) and each word's block
is L2-normalised on its own (intra-normalisation), so that no single word dominates.
The L2 norm over the whole vector is left to the caller (`histograms.l2`), as for a word
histogram.

Shared by the Spark histograms stage and by the Predictor, so both compute the very same
numbers.
"""

from __future__ import annotations

import numpy as np

from bovw.image.words import augmented_points, histogram_length, pyramid_bins, scoring_matrix

__all__ = ["vlad_cells", "vlad_length"]


def vlad_length(k: int, width: int, pyramid_levels: int) -> int:
    """Values of a VLAD vector: k words x `width` (32 or 256) per cell, 4^level cells per
    level."""
    return histogram_length(k, pyramid_levels) * width


def vlad_cells(descriptors: np.ndarray, centers: np.ndarray, positions: np.ndarray | None = None,
               pyramid_levels: int = 1, power: float = 1.0,
               scoring: np.ndarray | None = None) -> np.ndarray:
    """The VLAD blocks of one image: a (cells, k * d) float64 array, cells = the pyramid's
    cells in pyramid_bins order (the whole image first), row c holding word 0's d values,
    then word 1's, ...

    `descriptors` (n, 32) uint8; `centers` (k, d) float32 with d = 32 or 256 (the space);
    `positions` (n, 2) uint8 relative positions as stored by bovw.image.orb (needed when
    pyramid_levels > 1); `scoring` is scoring_matrix(centers) when the caller keeps it.
    A word with no descriptor in a cell keeps a block of zeros, as does an image with no
    descriptors.
    """
    centers = np.asarray(centers, dtype=np.float32)
    k, width = centers.shape
    cells = histogram_length(k, pyramid_levels) // k
    if len(descriptors) == 0:
        return np.zeros((cells, k * width))
    if scoring is None:
        scoring = scoring_matrix(centers)
    points = augmented_points(descriptors, width)
    # The nearest word as bovw.image.words.nearest_words finds it (same product, same ties).
    words = np.argmin(points @ scoring, axis=1)
    residuals = points[:, :-1].astype(np.float64) - centers[words].astype(np.float64)
    if pyramid_levels > 1:
        # One (cell, word) block per descriptor and level; pyramid_bins lists every
        # descriptor of level 0, then of level 1, ...: the residuals repeat in that order.
        blocks = pyramid_bins(words, positions, k, pyramid_levels)
        residuals = np.tile(residuals, (pyramid_levels, 1))
    else:
        blocks = words
    # Each block's residuals summed in descriptor order (a stable sort, then one
    # reduceat): the same sums, to the bit, wherever this runs.
    order = np.argsort(blocks, kind="stable")
    sorted_blocks = blocks[order]
    starts = np.flatnonzero(np.r_[True, sorted_blocks[1:] != sorted_blocks[:-1]])
    sums = np.zeros((cells * k, width))
    sums[sorted_blocks[starts]] = np.add.reduceat(residuals[order], starts, axis=0)
    if power != 1.0:
        sums = np.sign(sums) * np.power(np.abs(sums), power)
    norms = np.sqrt(np.einsum("ij,ij->i", sums, sums))
    np.divide(sums, norms[:, None], out=sums, where=norms[:, None] > 0.0)
    return sums.reshape(cells, k * width)

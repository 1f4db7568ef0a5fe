"""Vocabularies and image encodings of binary (ORB) descriptors, in numpy: the arithmetic
that bench/encodings.py measures. Pure functions, no I/O, no Spark.

Descriptors are (n, 32) uint8 ORB codes. A vocabulary lives in one of three spaces:

- "bytes": the 32 byte values as floats, Euclidean (what the pipeline does today);
- "bits": the 256 unpacked bits as 0/1 floats, Euclidean (= Hamming between codes; the
  centers are bit frequencies in [0, 1]);
- "kmajority": binary centers (bitwise majority of their members), Hamming.

A Bernoulli mixture (`fit_bmm`) is the generative model of the Fisher encoding.

Every encoding is built the same way: each descriptor gives a few (word, weight) pairs
(hard assignment: one pair of weight 1; soft: its n nearest words; Fisher: its posteriors),
each pyramid level puts the descriptor in one cell, and one sparse matrix A (rows:
(image, cell, word), columns: descriptors) sums them up: A @ 1 is the (weighted) word
histogram, A @ X the sums of descriptors per word, from which VLAD residuals and Fisher
gradients follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

BITS = 256
SPACES = ("bytes", "bits", "kmajority")
ENCODINGS = ("bow", "vlad", "fisher")
# Bernoulli means are kept in [EPS, 1 - EPS]: a mean of exactly 0 or 1 gives log(0).
BMM_EPS = 1e-3
# Fisher posteriors below this are dropped: a 256-bit code almost always belongs to one
# or two components, and the rest would only make the sums dense.
POSTERIOR_FLOOR = 1e-4

__all__ = [
    "BITS", "ENCODINGS", "SPACES", "Vocabulary", "assign", "cell_groups", "encode",
    "fit_bmm", "fit_vocabulary", "normalise", "pyramid_cells", "to_bits", "to_space",
]


def to_bits(descriptors: np.ndarray) -> np.ndarray:
    """(n, 32) uint8 -> (n, 256) float32 of 0/1, bit 7 of byte 0 first (np.unpackbits)."""
    return np.unpackbits(np.ascontiguousarray(descriptors, np.uint8), axis=1).astype(np.float32)


def to_space(descriptors: np.ndarray, space: str) -> np.ndarray:
    """The float32 rows a vocabulary of `space` works on: bytes (n, 32) or bits (n, 256)."""
    if space == "bytes":
        return descriptors.astype(np.float32)
    return to_bits(descriptors)


@dataclass(frozen=True)
class Vocabulary:
    """k words in one space; for a Bernoulli mixture also its weights.

    centers: (k, d) float32 (d = 32 for bytes, 256 otherwise; Bernoulli means for "bmm");
    weights: (k,) mixture weights ("bmm" only).
    """

    space: str
    centers: np.ndarray
    weights: np.ndarray | None = None

    @property
    def k(self) -> int:
        return len(self.centers)

    def log_likelihood_terms(self) -> tuple[np.ndarray, np.ndarray]:
        """(256, k) slope and (k,) offset with log(w_i p(x | mu_i)) = x @ slope + offset."""
        mu = self.centers.astype(np.float64)
        slope = np.log(mu) - np.log1p(-mu)
        offset = np.log(self.weights) + np.log1p(-mu).sum(axis=1)
        return slope.T.astype(np.float32), offset.astype(np.float32)


def _distance_terms(centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d, k) and (k,) such that x @ first + second = ||x - c||^2 - ||x||^2 for each c."""
    centers = centers.astype(np.float32)
    return (-2.0 * centers.T).astype(np.float32), (centers * centers).sum(axis=1)


def squared_distances(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(n, k) squared Euclidean distances (Hamming distances for 0/1 points and centers)."""
    slope, offset = _distance_terms(centers)
    scores = points @ slope
    scores += offset
    scores += (points * points).sum(axis=1, keepdims=True)
    return np.maximum(scores, 0.0, out=scores)


def fit_vocabulary(sample: np.ndarray, space: str, k: int, iterations: int, seed: int
                   ) -> Vocabulary:
    """Lloyd's k-means as Spark ML KMeans runs it with initMode "random": k distinct sample
    rows drawn with `seed` as the first centers, then `iterations` assignment + update
    rounds; a center that loses all its points stays where it was.

    `sample` is (m, 32) uint8 and already free of duplicates. In "kmajority" space the
    update is the bitwise majority of the members (a tie keeps the center's bit) and the
    assignment is by Hamming distance.
    """
    if space not in SPACES:
        raise ValueError(f"unknown vocabulary space {space!r}; expected one of {SPACES}")
    if len(sample) < k:
        raise ValueError(f"{len(sample)} distinct sampled descriptors for k = {k}")
    points = to_space(sample, space)
    rng = np.random.default_rng(seed)
    centers = points[np.sort(rng.choice(len(points), size=k, replace=False))].copy()
    for _ in range(iterations):
        words = squared_distances(points, centers).argmin(axis=1)
        counts = np.bincount(words, minlength=k).astype(np.float64)
        members = sparse.csr_matrix((np.ones(len(words), np.float32),
                                     (words, np.arange(len(words)))), shape=(k, len(words)))
        sums = np.asarray(members @ points, dtype=np.float64)
        filled = counts > 0
        means = sums[filled] / counts[filled, None]
        if space == "kmajority":
            majority = np.where(means > 0.5, 1.0, np.where(means < 0.5, 0.0, centers[filled]))
            centers[filled] = majority
        else:
            centers[filled] = means
    return Vocabulary(space, centers.astype(np.float32))


def fit_bmm(sample: np.ndarray, k: int, iterations: int, seed: int) -> Vocabulary:
    """A k-component Bernoulli mixture of the 256 bits, fitted by EM on a (m, 32) uint8
    sample.

    Started from k distinct sample rows drawn with `seed`, as means 0.25 / 0.75 (a hard
    0/1 start would make every other code impossible), equal weights; then `iterations`
    EM rounds. Means are clipped to [BMM_EPS, 1 - BMM_EPS]; a component that gets no mass
    keeps its parameters.
    """
    if len(sample) < k:
        raise ValueError(f"{len(sample)} distinct sampled descriptors for k = {k}")
    points = to_bits(sample)
    rng = np.random.default_rng(seed)
    means = 0.25 + 0.5 * points[np.sort(rng.choice(len(points), size=k, replace=False))]
    model = Vocabulary("bmm", means.astype(np.float32), np.full(k, 1.0 / k))
    for _ in range(iterations):
        posteriors = bmm_posteriors(points, model)
        mass = posteriors.sum(axis=0).astype(np.float64)
        filled = mass > 1e-8
        centers = model.centers.astype(np.float64)
        sums = (posteriors.T @ points).astype(np.float64)
        centers[filled] = np.clip(sums[filled] / mass[filled, None], BMM_EPS, 1 - BMM_EPS)
        weights = np.where(filled, mass / mass.sum(), model.weights)
        model = Vocabulary("bmm", centers.astype(np.float32), weights / weights.sum())
    return model


def bmm_posteriors(bits: np.ndarray, model: Vocabulary) -> np.ndarray:
    """(n, k) float32 posteriors p(i | x) of (n, 256) 0/1 rows under a Bernoulli mixture."""
    slope, offset = model.log_likelihood_terms()
    logits = bits @ slope
    logits += offset
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


def assign(points: np.ndarray, vocabulary: Vocabulary, nearest: int = 1, sigma: float = 0.0,
           weighting: str = "gauss") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse (descriptor, word, weight) triples: each row of `points` (already in the
    vocabulary's space) to its `nearest` words.

    nearest = 1 is hard assignment (weight 1; ties to the lowest index). With more, the
    weights of one descriptor sum to 1: "gauss" exp(-(d^2 - d_min^2) / (2 sigma^2)) over
    its n nearest (sigma <= 0: sigma^2 = the mean squared distance to the nearest word in
    this call, a data-driven default), "rank" 1 / rank, "equal" 1 / n.
    For a Bernoulli mixture ("bmm") every posterior >= POSTERIOR_FLOOR is kept, unchanged.
    Returns (rows int64, words int64, weights float32), grouped by row.
    """
    n = len(points)
    if vocabulary.space == "bmm":
        posteriors = bmm_posteriors(points, vocabulary)
        rows, words = np.nonzero(posteriors >= POSTERIOR_FLOOR)
        return rows.astype(np.int64), words.astype(np.int64), posteriors[rows, words]
    distances = squared_distances(points, vocabulary.centers)
    if nearest == 1:
        return (np.arange(n, dtype=np.int64), distances.argmin(axis=1).astype(np.int64),
                np.ones(n, np.float32))
    nearest = min(nearest, vocabulary.k)
    # n rounds of argmin (each word found is masked out): nearest first, ties to the lowest
    # index, and for a few words much cheaper than a partition of every row.
    words = np.empty((n, nearest), np.int64)
    d2 = np.empty((n, nearest), np.float32)
    every = np.arange(n)
    for rank in range(nearest):
        words[:, rank] = distances.argmin(axis=1)
        d2[:, rank] = distances[every, words[:, rank]]
        distances[every, words[:, rank]] = np.inf
    if weighting == "gauss":
        variance = sigma * sigma if sigma > 0 else max(float(d2[:, 0].mean()), 1e-6)
        weights = np.exp(-(d2 - d2[:, :1]) / (2.0 * variance))
    elif weighting == "rank":
        weights = np.broadcast_to(1.0 / np.arange(1, nearest + 1), d2.shape).copy()
    elif weighting == "equal":
        weights = np.ones_like(d2)
    else:
        raise ValueError(f"unknown soft weighting {weighting!r}")
    weights /= weights.sum(axis=1, keepdims=True)
    return (np.repeat(np.arange(n, dtype=np.int64), nearest), words.ravel().astype(np.int64),
            weights.ravel().astype(np.float32))


def pyramid_cells(levels: int) -> int:
    """Cells of a spatial pyramid of `levels` levels: 1 + 4 + ... + 4^(levels - 1)."""
    return sum(4**level for level in range(levels))


def cell_groups(positions: np.ndarray, levels: int) -> np.ndarray:
    """(n, levels) int64: the pyramid cell of each descriptor at each level.

    `positions` are (n, 2) uint8 relative (x, y) in 0..255 (bovw.image.orb). Level L cuts
    the image into 2^L x 2^L cells, row-major, numbered after the 1 + ... + 4^(L-1) cells
    of the coarser levels: the same bins as bovw.image.words.pyramid_bins.
    """
    columns = [np.zeros(len(positions), np.int64)]
    offset = 1
    for level in range(1, levels):
        side = 2**level
        x = positions[:, 0].astype(np.int64) >> (8 - level)
        y = positions[:, 1].astype(np.int64) >> (8 - level)
        columns.append(offset + y * side + x)
        offset += side * side
    return np.stack(columns, axis=1)


def encode(points: np.ndarray, image_of: np.ndarray, n_images: int, cells: np.ndarray,
           n_cells: int, triples: tuple[np.ndarray, np.ndarray, np.ndarray],
           vocabulary: Vocabulary, encoding: str) -> np.ndarray:
    """Raw (unnormalised) encodings of n_images images, one block per (cell, word).

    points: (n, d) descriptors in the vocabulary's space; image_of: (n,) image index of
    each; cells: (n, levels) from cell_groups; triples: from `assign`.
    Returns float32 (n_images, n_cells * k * width), cell-major then word-major, with
    width = 1 for "bow" (weighted counts), d for "vlad" (sum of weight * (x - c_word)),
    1 + d for "fisher" (per word: the weight gradient, then the mean gradient), both
    Fisher parts normalised by the Fisher information approximation and by the number
    of descriptors in the cell:
        f_w = (S0 - T w) / (T sqrt(w)),  f_mu = (S1 - S0 mu) / (T sqrt(w) sqrt(mu (1 - mu)))
    with S0 = sum of posteriors, S1 = sum of posterior * x over the cell's T descriptors.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")
    k = vocabulary.k
    rows, words, weights = triples
    levels = cells.shape[1]
    group = image_of[rows][:, None] * n_cells + cells[rows]  # (m, levels)
    matrix = sparse.csr_matrix(
        (np.tile(weights, levels), ((group * k + words[:, None]).T.ravel(),
                                    np.tile(rows, levels))),
        shape=(n_images * n_cells * k, len(points)))
    counts = np.asarray(matrix.sum(axis=1)).ravel().astype(np.float32)
    if encoding == "bow":
        return counts.reshape(n_images, n_cells * k)
    sums = np.asarray(matrix @ points, dtype=np.float32).reshape(n_images * n_cells, k, -1)
    counts = counts.reshape(n_images * n_cells, k)
    centers = vocabulary.centers.astype(np.float32)
    if encoding == "vlad":
        sums -= counts[:, :, None] * centers[None, :, :]
        return sums.reshape(n_images, -1)
    # Fisher: T = descriptors per (image, cell), counted once per descriptor.
    per_cell = np.bincount((image_of[:, None] * n_cells + cells).ravel(),
                           minlength=n_images * n_cells).astype(np.float32)
    total = np.maximum(per_cell, 1.0)[:, None]
    root_w = np.sqrt(vocabulary.weights.astype(np.float32))[None, :]
    grad_w = (counts - per_cell[:, None] * vocabulary.weights[None, :]) / (total * root_w)
    grad_w[per_cell == 0] = 0.0
    spread = np.sqrt(centers * (1.0 - centers))[None, :, :]
    grad_mu = (sums - counts[:, :, None] * centers[None, :, :]) / (
        (total * root_w)[:, :, None] * spread)
    out = np.concatenate([grad_w[:, :, None], grad_mu], axis=2).astype(np.float32)
    return out.reshape(n_images, -1)


def normalise(features: np.ndarray, n_cells: int, k: int, power: float = 1.0,
              intra: bool = False, blocks: str = "global", levels: int = 1) -> np.ndarray:
    """Power (signed |v|^power), then intra-normalisation (L2 of each word's block, VLAD),
    then L2 per `blocks`: "cell" (each pyramid cell), "level" (each pyramid level),
    "global" (the whole vector) or "none". Block norms are followed by a global L2, so
    every result row has unit norm (or is zero). In place on a float32 (n, D) array,
    D = n_cells * k * width; returns it.
    """
    n = len(features)
    if power != 1.0:
        np.multiply(np.sign(features), np.abs(features) ** power, out=features)
    if intra:
        _l2_rows(features.reshape(n * n_cells * k, -1))
    if blocks == "cell":
        _l2_rows(features.reshape(n * n_cells, -1))
    elif blocks == "level":
        view = features.reshape(n, n_cells, -1)
        start = 0
        for level in range(levels):
            stop = start + 4**level
            block = np.ascontiguousarray(view[:, start:stop]).reshape(n, -1)
            _l2_rows(block)
            view[:, start:stop] = block.reshape(n, stop - start, -1)
            start = stop
    elif blocks not in ("global", "none"):
        raise ValueError(f"unknown normalisation blocks {blocks!r}")
    if blocks != "none":
        _l2_rows(features)
    return features


def _l2_rows(rows: np.ndarray) -> None:
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows, dtype=np.float64))
    rows /= np.where(norms > 0, norms, 1.0)[:, None].astype(rows.dtype)

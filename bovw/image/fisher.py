"""Fisher vectors of an image's ORB descriptors under a Bernoulli mixture, free of Spark
(`histograms.encoding = "fisher"`).

A Bernoulli mixture models a descriptor's 256 bits x (0/1) as drawn from one of k
components, component j with prior `weights[j]` and bit probabilities `means[j]`:

    log p(x | j) = sum_d x_d log means[j, d] + (1 - x_d) log(1 - means[j, d])

and a descriptor's responsibilities gamma_j = p(j | x) come from Bayes' rule. An image
cell's Fisher vector is the gradient of its descriptors' log-likelihood with respect to
the means, scaled by the inverse square root of the (diagonal) Fisher information:

    G[j, d] = sum_t gamma_tj (x_td - means[j, d]) / sqrt(T weights[j] means[j, d] (1 - means[j, d]))

over the cell's T descriptors (Uchida and Sakazawa's Fisher vector for binary features;
the gradient with respect to the weights, k more values per cell, is left out as Sanchez
et al. find it carries little). Each value is then raised to the signed `power`; the L2
norm over the whole vector is left to the caller (`histograms.l2`), as for VLAD.

Shared by the Spark histograms stage and by the Predictor, so both compute the very same
numbers; the mixture is fitted by bovw.pipeline.mixture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bovw.config import VOCABULARY_WIDTHS, pyramid_cells
from bovw.image.words import descriptor_points, pyramid_bins

__all__ = ["BITS", "BernoulliMixture", "fisher_cells"]

BITS = VOCABULARY_WIDTHS["bits"]


@dataclass(frozen=True)
class BernoulliMixture:
    """k components over 256 bits: `weights` (k,) float64, positive, summing to 1; `means`
    (k, 256) float32, each strictly between 0 and 1 (the bit's probability of being 1).

    The means are float32 wherever they live (Spark's run, the model file), so the Spark
    path and the Predictor compute with the very same numbers.
    """

    weights: np.ndarray
    means: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", np.asarray(self.weights, dtype=np.float64))
        object.__setattr__(self, "means", np.asarray(self.means, dtype=np.float32))

    @property
    def k(self) -> int:
        """The number of components."""
        return len(self.weights)

    def problems(self) -> list[str]:
        """What makes this mixture unusable, in words; [] when it is sound."""
        k = self.k
        found = []
        if self.weights.ndim != 1 or k < 1:
            found.append(f"mixture weights have shape {self.weights.shape}, expected (k,)")
        elif self.means.shape != (k, BITS):
            found.append(f"mixture means have shape {self.means.shape}, expected ({k}, {BITS})")
        elif not (np.all(self.weights > 0) and abs(self.weights.sum() - 1.0) < 1e-6):
            found.append("mixture weights must be positive and sum to 1")
        elif not np.all((self.means > 0) & (self.means < 1)):
            found.append("mixture means must lie strictly between 0 and 1")
        return found

    def log_likelihoods(self, points: np.ndarray) -> np.ndarray:
        """(n, k) log(weights[j] p(x | j)) for (n, 256) 0/1 float64 `points`."""
        means = self.means.astype(np.float64)
        ones, zeros = np.log(means), np.log1p(-means)
        return points @ (ones - zeros).T + zeros.sum(axis=1) + np.log(self.weights)

    def responsibilities(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, k) p(j | x) for (n, 256) 0/1 float64 `points`, and each point's (n,) log
        p(x) under the mixture."""
        joint = self.log_likelihoods(points)
        top = joint.max(axis=1, keepdims=True)
        shifted = np.exp(joint - top)
        totals = shifted.sum(axis=1, keepdims=True)
        return shifted / totals, (top + np.log(totals)).ravel()


def fisher_cells(descriptors: np.ndarray, mixture: BernoulliMixture,
                 positions: np.ndarray | None = None, pyramid_levels: int = 1,
                 power: float = 1.0) -> np.ndarray:
    """The Fisher vector blocks of one image: a (cells, k * 256) float64 array, cells =
    the pyramid's cells in pyramid_bins order (the whole image first), row c holding
    component 0's 256 values, then component 1's, ...

    `descriptors` (n, 32) uint8; `positions` (n, 2) uint8 relative positions as stored by
    bovw.image.orb (needed when pyramid_levels > 1). A cell without descriptors keeps a
    block of zeros, as does an image without descriptors.
    """
    k = mixture.k
    cells = np.zeros((pyramid_cells(pyramid_levels), k * BITS))
    n = len(descriptors)
    if n == 0:
        return cells
    points = descriptor_points(descriptors, "bits").astype(np.float64)
    gamma, _ = mixture.responsibilities(points)
    means = mixture.means.astype(np.float64)
    scale = 1.0 / np.sqrt(mixture.weights[:, None] * means * (1.0 - means))
    # The cell of every (level, descriptor) pair: a one-word pyramid's bins.
    cell_of = (pyramid_bins(np.zeros(n, np.int64), positions, 1, pyramid_levels)
               if pyramid_levels > 1 else np.zeros(n, np.int64))
    for cell in np.unique(cell_of):
        members = np.flatnonzero(cell_of == cell) % n
        shares = gamma[members]
        gradient = shares.T @ points[members] - shares.sum(axis=0)[:, None] * means
        cells[cell] = (gradient * scale / np.sqrt(len(members))).ravel()
    if power != 1.0:
        cells = np.sign(cells) * np.power(np.abs(cells), power)
    return cells

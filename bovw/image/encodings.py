"""What an image's descriptors become (`histograms.encoding`), and how long it is.

"words" is a word histogram (bovw.image.words); "vlad" (bovw.image.vlad) and "fisher"
(bovw.image.fisher) are dense encodings, one block of the descriptor's width per word (or
mixture component) and pyramid cell. DenseEncoding is what the Spark histograms stage and
the Predictor both call, so the two compute the very same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bovw.config import DENSE_ENCODINGS, HistogramSettings
from bovw.image.fisher import BernoulliMixture, fisher_cells
from bovw.image.vlad import vlad_cells, vlad_length
from bovw.image.words import histogram_length

__all__ = ["DenseEncoding", "dense_encoding", "encoding_length"]


def encoding_length(vocabulary_shape: tuple[int, int], settings: HistogramSettings) -> int:
    """Values of an image's encoding by a (k, d) vocabulary (for "fisher", the mixture's
    (k, 256) means) under `settings`: the word histogram's bins, or the dense vector's
    values."""
    k, width = vocabulary_shape
    if settings.encoding in DENSE_ENCODINGS:
        return vlad_length(k, width, settings.pyramid_levels)
    return histogram_length(k, settings.pyramid_levels)


@dataclass(frozen=True)
class DenseEncoding:
    """A dense encoding: `kind` "vlad" or "fisher", the signed `power` inside its blocks,
    and for "fisher" the mixture's (k,) `weights` (its means are the vocabulary)."""

    kind: str
    power: float = 1.0
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in DENSE_ENCODINGS:
            raise ValueError(f"not a dense encoding: {self.kind!r}")
        if self.kind == "fisher" and self.weights is None:
            raise ValueError("a Fisher encoding needs its mixture's weights")

    def cells(self, descriptors: np.ndarray, centers: np.ndarray, positions: np.ndarray | None,
              pyramid_levels: int, scoring: np.ndarray | None = None) -> np.ndarray:
        """One image's (cells, k * d) blocks: bovw.image.vlad.vlad_cells with the (k, d)
        `centers` (and their `scoring` matrix when kept), or bovw.image.fisher.fisher_cells
        with the mixture of `weights` and means `centers` (k, 256)."""
        if self.kind == "vlad":
            return vlad_cells(descriptors, centers, positions, pyramid_levels, self.power,
                              scoring)
        return fisher_cells(descriptors, BernoulliMixture(self.weights, centers), positions,
                            pyramid_levels, self.power)


def dense_encoding(settings: HistogramSettings, weights: np.ndarray | None = None
                   ) -> DenseEncoding | None:
    """The DenseEncoding `settings` ask for (with the mixture `weights` for "fisher"), or
    None for a word histogram."""
    if settings.encoding not in DENSE_ENCODINGS:
        return None
    return DenseEncoding(settings.encoding, settings.power, weights)

"""Feature weighting: an image's word histogram (or VLAD / Fisher vector) turned into the
vector the PCA sees, and the appended tone or colour block.

Pure numpy, on the non-zero values of many rows at once, so that the Spark reduction stage
(a batch of rows in a Python worker) and the Predictor (one photo) run the same code. The
arithmetic is Spark ML's, operation for operation, so a run folder made by the JVM's IDF,
Normalizer and VectorAssembler (bovw.pipeline.histograms) holds the same bits:
- times IDF: value * idf[index] (ml.feature.IDFModel);
- to `power`: numpy.power of each value (0 to a positive power stays 0);
- L2: each value divided by the square root of its row's sum of squares, summed in index
  order as Spark's Vectors.norm sums them (ml.feature.Normalizer); a zero row stays zero.
"""

from __future__ import annotations

import numpy as np

__all__ = ["block_values", "weighted_values"]


def weighted_values(values: np.ndarray, indices: np.ndarray, offsets: np.ndarray,
                    idf: np.ndarray | None, power: float = 1.0, l2: bool = True
                    ) -> np.ndarray:
    """The weighted non-zero values of len(offsets) - 1 rows stored like a CSR matrix:
    row i holds `values[offsets[i]:offsets[i + 1]]` (float64) at columns `indices` (ints,
    ascending within a row); offsets run from 0 to len(values). `idf` (d,) multiplies each
    value by its column's weight when given; then each value goes to `power`; then each row
    is divided by its L2 norm when `l2`. Returns a new float64 array shaped like `values`;
    the inputs are left as they are.
    """
    values = np.asarray(values, dtype=np.float64)
    weighted = values * np.asarray(idf, dtype=np.float64)[indices] if idf is not None \
        else values.copy()
    if power != 1.0:
        weighted = np.power(weighted, power)
    if l2 and len(weighted):
        lengths = np.diff(offsets)
        rows = np.repeat(np.arange(len(lengths)), lengths)
        # bincount adds each row's squares one after the other, as Vectors.norm does: the
        # same rounding, hence the same bits as Spark's Normalizer.
        norms = np.sqrt(np.bincount(rows, weights=weighted ** 2, minlength=len(lengths)))
        # Divided unless the norm is 0, as Normalizer does (a NaN norm makes the row NaN).
        weighted /= np.repeat(np.where(norms != 0.0, norms, 1.0), lengths)
    return weighted


def block_values(block: np.ndarray, weight: float) -> np.ndarray:
    """weight * sqrt(block) for a tone or colour block (float32 as the descriptors store it;
    any shape), in float64 as Spark's sqrt of a float column computes it."""
    return np.sqrt(np.asarray(block, dtype=np.float32).astype(np.float64)) * weight

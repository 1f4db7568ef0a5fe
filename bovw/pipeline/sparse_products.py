"""Sparse matrix times dense matrix, a cache-sized slice of the dense one at a time.

What the reduction stage's Krylov passes (X^T (X B)) and projections (X pc) compute in
the Python workers, free of Spark.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["sparse_times_dense"]

# scipy multiplies a sparse matrix by a dense one row by row of the sparse matrix (CSR) or
# of its transpose (CSC): it reads rows of the dense matrix, or for a CSC matrix adds into
# rows of the result, in the order of the sparse one's indices. Those random accesses stay
# in the CPU cache only while the dense side fits there. A Krylov block at 3 pyramid
# levels is 21,032 x 120 (20 MB), and two Python workers share the cache. Taken ~3 MB of
# columns at a time (columns of the taller of the dense matrix and the result), X^T (X B)
# on 19,000 such rows (a pass partition at x10: 116k Training rows on 6) took 1.4-1.9 s
# instead of 4.1-4.9 s, two at once (python -m bench.sparse_products), with the very same
# sums. On the same x10 histograms the reduction stage alone took 84 s instead of 97.
_DENSE_CHUNK_BYTES = 3 << 20


def sparse_times_dense(matrix: sparse.spmatrix, dense: np.ndarray) -> np.ndarray:
    """matrix @ dense, `dense` taken as float64, as a float64 array (n, w), computed a
    few columns at a time: each entry is the same sum of the same terms in the same order
    as the whole product's, so the result is identical, only faster for a wide `dense`
    (see above)."""
    dense = np.asarray(dense, dtype=np.float64)
    tallest = max(matrix.shape[0], dense.shape[0], 1)
    width = max(1, _DENSE_CHUNK_BYTES // (tallest * dense.itemsize))
    if dense.shape[1] <= width:
        return np.asarray(matrix @ dense, dtype=np.float64)
    return np.hstack([np.asarray(matrix @ np.ascontiguousarray(dense[:, start:start + width]),
                                 dtype=np.float64)
                      for start in range(0, dense.shape[1], width)])

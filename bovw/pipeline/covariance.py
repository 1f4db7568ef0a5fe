"""The PCA's covariance products: C @ basis of the Training feature rows, one Spark job
each, added up on the driver in partition order.

The rows reach a pass either as they are (a frame of feature rows, which the pass's Python
worker weights and builds into a CSR matrix, partition by partition) or as those very
matrices, built once and cached (`store_matrices`). The randomized PCA's passes read the
same rows again and again: from the cache of the histograms, each pass took 1.2-1.8 s a
partition on fruits360-dev (7,237 Training rows at 3 pyramid levels), of which the product
itself is 0.45 s; the rest went to turning cached rows into Arrow structs, sending them,
and weighting and sorting them again in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from scipy import sparse

from bovw.columns import PATH
from bovw.errors import TrainingError
from bovw.pipeline.feature_rows import FeatureRows
from bovw.pipeline.sparse_products import sparse_times_dense

__all__ = ["STORED_CHUNK_BYTES", "StoredMatrices", "covariance_times", "store_matrices",
           "stored_covariance_times"]

# A stored matrix is cut into pieces of about this many bytes of values and indices, each
# one binary value of a cached row: a partition's whole matrix in one value would reach
# Arrow's 2 GB per batch of binary values (int32 offsets) at about 2.4M rows of 740 words.
STORED_CHUNK_BYTES = 64 << 20

_PARTIALS_SCHEMA = "n long, sums binary, squares double, product binary"
_STORED_SCHEMA = "rows long, data binary, indices binary, indptr binary"


@dataclass(frozen=True)
class StoredMatrices:
    """Feature rows stored as one CSR matrix of `dimension` columns per partition of
    `frame` (a persisted frame of `_STORED_SCHEMA` rows, pieces of each matrix in order)."""

    frame: DataFrame
    dimension: int

    def release(self) -> None:
        """Drop the cached matrices."""
        self.frame.unpersist()


def covariance_times(rows: DataFrame, basis: np.ndarray | None, features: FeatureRows
                     ) -> tuple[np.ndarray, float]:
    """C @ basis (C itself for None) and trace(C), C the sample covariance of the rows
    `features` makes of `rows`, in one Spark job. Rows are summed in `rows.path` order when
    there is that column, else in the order each partition holds them.

    Each partition returns its count, column sums, sum of squares and X^T X basis; the
    driver adds them up in partition order, so the result does not depend on timing.
    The basis reaches the Python workers as a broadcast variable, not inside the task.
    """
    return _products(rows, basis, features.dimension,
                     lambda batches: _feature_matrix(batches, features))


def stored_covariance_times(stored: StoredMatrices, basis: np.ndarray | None
                            ) -> tuple[np.ndarray, float]:
    """covariance_times of the rows `store_matrices` stored: the same sums of the same
    terms in the same order, so the very same result."""
    dimension = stored.dimension  # the workers' function must not hold the frame
    return _products(stored.frame, basis, dimension,
                     lambda batches: _stored_matrix(batches, dimension))


def store_matrices(rows: DataFrame, features: FeatureRows) -> StoredMatrices:
    """The rows `features` makes of `rows`, as covariance_times builds them partition by
    partition (weighted, sorted by path when there is that column), computed once and
    cached on the partitions of `rows`; release() drops them."""
    dimension, limit = features.dimension, STORED_CHUNK_BYTES

    def store(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        matrix = _feature_matrix(batches, features)
        if matrix is None:
            return
        for start, stop in _pieces(matrix.indptr, limit):
            first, last = matrix.indptr[start], matrix.indptr[stop]
            yield pa.RecordBatch.from_pydict({
                "rows": [stop - start],
                "data": [matrix.data[first:last].astype(np.float64).tobytes()],
                "indices": [matrix.indices[first:last].astype(np.int32).tobytes()],
                "indptr": [(matrix.indptr[start:stop + 1] - first).astype(np.int64)
                           .tobytes()],
            })

    frame = rows.mapInArrow(store, _STORED_SCHEMA).persist()
    frame.count()  # built now, once: every pass reads the cache
    return StoredMatrices(frame, dimension)


def _pieces(indptr: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Consecutive row ranges [start, stop) covering every row, each holding at most
    `limit` bytes of values and indices (12 a stored entry), a single row however large."""
    ranges, start, rows = [], 0, len(indptr) - 1
    while start < rows:
        # The furthest stop whose entries fit, at least one row on.
        stop = int(np.searchsorted(indptr, indptr[start] + limit // 12, side="right")) - 1
        stop = min(max(stop, start + 1), rows)
        ranges.append((start, stop))
        start = stop
    return ranges


def _feature_matrix(batches: Iterator[pa.RecordBatch], features: FeatureRows
                    ) -> sparse.csr_matrix | None:
    """One partition's feature rows as a CSR matrix, in path order when the batches carry
    paths; None without rows."""
    blocks, paths = [], []
    for batch in batches:
        blocks.append(features.csr(batch))
        if PATH in batch.schema.names:
            paths.extend(batch.column(PATH).to_pylist())
    if not sum(block.shape[0] for block in blocks):
        return None
    matrix = sparse.vstack(blocks, format="csr")
    if paths:
        # Sorted by path: the same sum whatever order the rows arrived in.
        matrix = matrix[np.argsort(paths, kind="stable")]
    return matrix


def _stored_matrix(batches: Iterator[pa.RecordBatch], dimension: int
                   ) -> sparse.csr_matrix | None:
    """A partition's stored pieces joined back into its CSR matrix (Arrow's buffers are
    read in place, not copied); None without rows."""
    pieces = []
    for batch in batches:
        columns = [batch.column(name) for name in ("rows", "data", "indices", "indptr")]
        for rows, data, indices, indptr in zip(*columns, strict=True):
            pieces.append(sparse.csr_matrix(
                (np.frombuffer(data.as_buffer(), dtype=np.float64),
                 np.frombuffer(indices.as_buffer(), dtype=np.int32),
                 np.frombuffer(indptr.as_buffer(), dtype=np.int64)),
                shape=(rows.as_py(), dimension)))
    if not pieces:
        return None
    return pieces[0] if len(pieces) == 1 else sparse.vstack(pieces, format="csr")


def _products(frame: DataFrame, basis: np.ndarray | None, dimension: int,
              matrix_of: Callable[[Iterator[pa.RecordBatch]], sparse.csr_matrix | None]
              ) -> tuple[np.ndarray, float]:
    shared = None if basis is None else frame.sparkSession.sparkContext.broadcast(basis)
    width = dimension if basis is None else basis.shape[1]

    def partials(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        matrix = matrix_of(batches)
        if matrix is None:
            return
        yield pa.RecordBatch.from_pydict({
            "n": [matrix.shape[0]],
            "sums": [np.asarray(matrix.sum(axis=0)).ravel().tobytes()],
            "squares": [float(matrix.multiply(matrix).sum())],
            "product": [_gram_times(matrix, None if shared is None else shared.value)
                        .tobytes()],
        })

    n, sums, squares = 0, np.zeros(dimension), 0.0
    product = np.zeros((dimension, width))
    try:
        # As Arrow, in partition order: collect() pickled every partition's product (20 MB
        # at 3 pyramid levels), 0.2 s more a pass on 2 partitions, 0.4-0.6 s on 12.
        partial_sums = frame.mapInArrow(partials, _PARTIALS_SCHEMA).toArrow()
        for index in range(partial_sums.num_rows):
            n += partial_sums["n"][index].as_py()
            sums += np.frombuffer(partial_sums["sums"][index].as_buffer(), dtype=np.float64)
            squares += partial_sums["squares"][index].as_py()
            product += np.frombuffer(partial_sums["product"][index].as_buffer(),
                                     dtype=np.float64).reshape(product.shape)
    finally:
        if shared is not None:
            shared.unpersist()
    if n < 2:
        raise TrainingError(f"PCA needs at least 2 Training images, got {n}: add Training "
                            "images")
    mean = sums / n
    centred = (product - n * np.outer(mean, mean if basis is None else mean @ basis)) / (n - 1)
    return centred, float((squares - n * mean @ mean) / (n - 1))


def _gram_times(matrix: sparse.csr_matrix, basis: np.ndarray | None) -> np.ndarray:
    """X^T X basis as a dense float64 array (X^T X for None)."""
    if basis is None:
        return np.asarray((matrix.T @ matrix).toarray(), dtype=np.float64)
    return sparse_times_dense(matrix.T, sparse_times_dense(matrix, basis))

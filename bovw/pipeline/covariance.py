"""The PCA's covariance products: C @ basis of the Training feature rows in one Spark job,
the partitions' partial sums added up on the driver in partition order."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from scipy import sparse

from bovw.columns import PATH
from bovw.errors import TrainingError
from bovw.pipeline.feature_rows import FeatureRows
from bovw.pipeline.sparse_products import sparse_times_dense

__all__ = ["covariance_times"]


def covariance_times(rows: DataFrame, basis: np.ndarray | None, features: FeatureRows
                     ) -> tuple[np.ndarray, float]:
    """C @ basis (C itself for None) and trace(C), C the sample covariance of the rows
    `features` makes of `rows`, in one Spark job. Rows are summed in `rows.path` order when
    there is that column, else in the order each partition holds them.

    Each partition returns its count, column sums, sum of squares and X^T X basis; the
    driver adds them up in partition order, so the result does not depend on timing.
    The basis reaches the Python workers as a broadcast variable, not inside the task.
    """
    schema = "n long, sums binary, squares double, product binary"
    dimension = features.dimension
    shared = None if basis is None else rows.sparkSession.sparkContext.broadcast(basis)
    width = dimension if basis is None else basis.shape[1]

    def partials(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        blocks, paths = [], []
        for batch in batches:
            blocks.append(features.csr(batch))
            if PATH in batch.schema.names:
                paths.extend(batch.column(PATH).to_pylist())
        if not sum(block.shape[0] for block in blocks):
            return
        matrix = sparse.vstack(blocks, format="csr")
        if paths:
            # Sorted by path: the same sum whatever order the rows arrived in.
            matrix = matrix[np.argsort(paths, kind="stable")]
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
        partial_sums = rows.mapInArrow(partials, schema).toArrow()
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

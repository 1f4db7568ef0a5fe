"""The PCA's covariance products: C @ basis of the Training feature rows, the partitions'
partial sums added up on the driver in partition (or task) order.

Two ways, one result: `covariance_times` reads the rows in every pass (one Spark job
each), which works on any master; in local mode `local_row_files` weights and sorts the
rows once into CSR files on the machine's own disk, and each pass of `RowFiles` maps
an even share of them in each task.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark import SparkFiles
from pyspark.sql import DataFrame, SparkSession
from scipy import sparse

from bovw.columns import PATH
from bovw.errors import TrainingError
from bovw.pipeline.feature_rows import FeatureRows
from bovw.pipeline.sparse_products import sparse_times_dense

__all__ = ["RowFiles", "covariance_times", "local_row_files"]

_PARTIALS_SCHEMA = "n long, sums binary, squares double, product binary"
_ROW_FILES_SCHEMA = "stem string, n long, sums binary, squares double"
# The three arrays of a CSR matrix, each in a .npy file of its own (np.load maps them).
_CSR_ARRAYS = ("indptr", "indices", "data")


def covariance_times(rows: DataFrame, basis: np.ndarray | None, features: FeatureRows
                     ) -> tuple[np.ndarray, float]:
    """C @ basis (C itself for None) and trace(C), C the sample covariance of the rows
    `features` makes of `rows`, in one Spark job. Rows are summed in `rows.path` order when
    there is that column, else in the order each partition holds them.

    Each partition returns its count, column sums, sum of squares and X^T X basis; the
    driver adds them up in partition order, so the result does not depend on timing.
    The basis reaches the Python workers as a broadcast variable, not inside the task.
    """
    dimension = features.dimension
    shared = None if basis is None else rows.sparkSession.sparkContext.broadcast(basis)
    width = dimension if basis is None else basis.shape[1]

    def partials(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        matrix = _partition_matrix(batches, features)
        if matrix is None:
            return
        n, sums, squares = _moments(matrix)
        yield pa.RecordBatch.from_pydict({
            "n": [n], "sums": [sums.tobytes()], "squares": [squares],
            "product": [_gram_times(matrix, None if shared is None else shared.value)
                        .tobytes()],
        })

    try:
        # As Arrow, in partition order: collect() pickled every partition's product (20 MB
        # at 3 pyramid levels), 0.2 s more a pass on 2 partitions, 0.4-0.6 s on 12.
        partial_sums = rows.mapInArrow(partials, _PARTIALS_SCHEMA).toArrow()
    finally:
        if shared is not None:
            shared.unpersist()
    n, sums, squares = _added_moments(partial_sums, dimension)
    product = _added_products(partial_sums, (dimension, width))
    return _centred(product, n, sums, squares, basis)


@dataclass(frozen=True, eq=False)
class RowFiles:
    """The Training feature rows of a local-mode session as CSR files in `folder` on its
    disk (local_row_files): `parts` are (file stem, rows) in partition order, each part's
    rows in path order; `rows` in all, of `dimension` values each, with their column
    `sums` (dimension,) and sum of `squares`. Each pass runs `tasks` tasks."""

    spark: SparkSession
    folder: str
    parts: tuple[tuple[str, int], ...]
    rows: int
    dimension: int
    sums: np.ndarray
    squares: float
    tasks: int

    def covariance_times(self, basis: np.ndarray) -> tuple[np.ndarray, float]:
        """(C @ basis, trace(C)) as `covariance_times` computes them, in one Spark job of
        `tasks` tasks: task t maps rows [t * rows // tasks, (t + 1) * rows // tasks) of the
        parts laid end to end, a share as even as rows allow, and the driver adds the
        tasks' X^T X basis in task order.

        The basis and the tasks' products (d x w each: 20 MB at 3 pyramid levels) pass
        through .npy files in `folder`, removed before this returns: as a broadcast
        variable and as Arrow rows they were copied several times over in the JVM."""
        stem = os.path.join(self.folder, f"pass-{uuid.uuid4().hex}")
        np.save(f"{stem}.basis.npy", basis)
        try:
            written = self.spark.range(0, self.tasks, 1, self.tasks).mapInArrow(
                _share_products(self.parts, self.rows, self.tasks, self.dimension, stem),
                "product string").toArrow()
            product = np.zeros((self.dimension, basis.shape[1]))
            for name in written["product"].to_pylist():
                product += np.load(name)
        finally:
            for name in glob.glob(f"{glob.escape(stem)}.*"):
                os.remove(name)
        return _centred(product, self.rows, self.sums, self.squares, basis)


@contextmanager
def local_row_files(rows: DataFrame, features: FeatureRows) -> Iterator[RowFiles]:
    """The feature rows `features` makes of `rows` (which hold its columns and `path`),
    weighted, stacked and sorted by path once, partition by partition, in one Spark job,
    and written as CSR arrays into a folder of their own under the session's SparkFiles
    root (inside spark.local.dir; the JVM deletes it as it ends, should this block not).
    Local mode only: the Python workers must share the driver's disk. The folder is
    removed when the block ends.

    Each Krylov pass would otherwise read every row out of Spark's cache, weight, stack
    and sort it again: on fruits360-dev at 3 pyramid levels that was over half of a
    worker's 1.5 s a pass, and the coalesced partitions held 7,237 and 4,410 rows.
    """
    spark = rows.sparkSession
    folder = tempfile.mkdtemp(prefix="bovw-pca-rows-", dir=SparkFiles.getRootDirectory())
    try:
        written = rows.mapInArrow(_written_parts(features, folder), _ROW_FILES_SCHEMA).toArrow()
        n, sums, squares = _added_moments(written, features.dimension)
        parts = tuple(zip(written["stem"].to_pylist(), written["n"].to_pylist(), strict=True))
        yield RowFiles(spark, folder, parts, n, features.dimension, sums, squares,
                       max(1, min(n, spark.sparkContext.defaultParallelism)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _written_parts(features: FeatureRows, folder: str):
    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        matrix = _partition_matrix(batches, features)
        if matrix is None:
            return
        stem = os.path.join(folder, f"part-{TaskContext.get().partitionId():05d}")
        for name in _CSR_ARRAYS:
            np.save(f"{stem}.{name}.npy", getattr(matrix, name))
        n, sums, squares = _moments(matrix)
        yield pa.RecordBatch.from_pydict({"stem": [stem], "n": [n], "sums": [sums.tobytes()],
                                          "squares": [squares]})

    return write


def _share_products(parts: tuple[tuple[str, int], ...], rows: int, tasks: int,
                    dimension: int, stem: str):
    def products(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        basis = np.load(f"{stem}.basis.npy")
        for batch in batches:
            for task in batch.column("id").to_pylist():
                start, stop = task * rows // tasks, (task + 1) * rows // tasks
                product = np.zeros((dimension, basis.shape[1]))
                for matrix in _row_range(parts, start, stop, dimension):
                    product += _gram_times(matrix, basis)
                name = f"{stem}.product-{task:05d}.npy"
                np.save(name, product)
                yield pa.RecordBatch.from_pydict({"product": [name]})

    return products


def _row_range(parts: Iterable[tuple[str, int]], start: int, stop: int, dimension: int
               ) -> Iterator[sparse.csr_matrix]:
    """Rows [start, stop) of the parts laid end to end, a CSR matrix per part they touch,
    on the files' own (mapped) arrays."""
    offset = 0
    for stem, count in parts:
        first, last = max(start, offset) - offset, min(stop, offset + count) - offset
        offset += count
        if first >= last:
            continue
        indptr, indices, data = (np.load(f"{stem}.{name}.npy", mmap_mode="r")
                                 for name in _CSR_ARRAYS)
        low, high = int(indptr[first]), int(indptr[last])
        yield sparse.csr_matrix((data[low:high], indices[low:high],
                                 np.asarray(indptr[first:last + 1]) - low),
                                shape=(last - first, dimension))


def _partition_matrix(batches: Iterable[pa.RecordBatch], features: FeatureRows
                      ) -> sparse.csr_matrix | None:
    """The feature rows of a partition's batches as one CSR matrix, sorted by path when the
    batches have that column (the same sums whatever order the rows arrived in); None
    when there are no rows."""
    blocks, paths = [], []
    for batch in batches:
        blocks.append(features.csr(batch))
        if PATH in batch.schema.names:
            paths.extend(batch.column(PATH).to_pylist())
    if not sum(block.shape[0] for block in blocks):
        return None
    matrix = sparse.vstack(blocks, format="csr")
    return matrix[np.argsort(paths, kind="stable")] if paths else matrix


def _moments(matrix: sparse.csr_matrix) -> tuple[int, np.ndarray, float]:
    """(rows, column sums (d,), sum of squares) of a CSR matrix."""
    return (matrix.shape[0], np.asarray(matrix.sum(axis=0)).ravel(),
            float(matrix.multiply(matrix).sum()))


def _added_moments(table: pa.Table, dimension: int) -> tuple[int, np.ndarray, float]:
    """The n, sums and squares columns of partitions' results added up in row order."""
    n, sums, squares = 0, np.zeros(dimension), 0.0
    for index in range(table.num_rows):
        n += table["n"][index].as_py()
        sums += np.frombuffer(table["sums"][index].as_buffer(), dtype=np.float64)
        squares += table["squares"][index].as_py()
    return n, sums, squares


def _added_products(table: pa.Table, shape: tuple[int, int]) -> np.ndarray:
    """The product column of partitions' or tasks' results added up in row order."""
    product = np.zeros(shape)
    for index in range(table.num_rows):
        product += np.frombuffer(table["product"][index].as_buffer(),
                                 dtype=np.float64).reshape(shape)
    return product


def _centred(product: np.ndarray, n: int, sums: np.ndarray, squares: float,
             basis: np.ndarray | None) -> tuple[np.ndarray, float]:
    """(C @ basis, trace(C)) from n rows' X^T X basis, column sums and sum of squares.
    Raises TrainingError for fewer than 2 rows."""
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

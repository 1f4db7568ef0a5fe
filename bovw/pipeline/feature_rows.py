"""The feature rows the PCA reads, made inside the reduction stage's Python passes.

Each Krylov pass and the projection read an Arrow batch of histograms in a Python worker
anyway; there `FeatureRows.csr` weights them (bovw.image.weighting: IDF, power, L2, the
Predictor's own code) and appends the tone and colour blocks, in numpy. Weighting them
beforehand in Spark meant the JVM's IDF, a Python pass for the power, the JVM's Normalizer
and VectorAssembler, and a cache of the result: on fruits360-dev x10 at 3 pyramid levels,
21.8 s of a reduction stage whose four passes took 40 s. The rows are the same bits
(tests/test_weighting.py holds them against the JVM weighting of bovw.pipeline.histograms).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.ml.feature import IDFModel
from scipy import sparse

from bovw.columns import HISTOGRAM
from bovw.config import Config
from bovw.image.weighting import block_values, weighted_values
from bovw.pipeline.histograms import AppendedBlock, appended_blocks
from bovw.spark.arrow_vectors import vectors_to_csr

__all__ = ["FeatureRows", "feature_rows", "vector_rows"]


@dataclass(frozen=True, eq=False)
class FeatureRows:
    """How a Python pass reads one feature row per image from an Arrow batch: the vector
    column `column` of `vector_dimension` entries, times `idf` (when given), to `power`,
    L2-normalised (when `l2`), then weight * sqrt(block) of each of `blocks` in order (a row
    whose block is missing or of another length gets zeros)."""

    column: str
    vector_dimension: int
    idf: np.ndarray | None = None
    power: float = 1.0
    l2: bool = False
    blocks: tuple[AppendedBlock, ...] = field(default=())

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns `csr` reads, in order."""
        return (self.column, *[block.column for block in self.blocks])

    @property
    def dimension(self) -> int:
        """The length of a feature row."""
        return self.vector_dimension + sum(block.dimension for block in self.blocks)

    def csr(self, batch: pa.RecordBatch) -> sparse.csr_matrix:
        """The feature rows of `batch` (which holds `columns`): a (rows, dimension) float64
        CSR matrix, without stored zeros when it weights or appends blocks. Raises
        ValueError when a vector is not `vector_dimension` long (vectors_to_csr)."""
        rows = vectors_to_csr(batch.column(self.column), self.vector_dimension)
        weights = self.idf is not None or self.power != 1.0 or self.l2
        if not weights and not self.blocks:
            return rows  # as they are (their arrays may be Arrow's, read-only)
        if weights:
            rows = sparse.csr_matrix(
                (weighted_values(rows.data, rows.indices, rows.indptr, self.idf, self.power,
                                 self.l2), rows.indices.copy(), rows.indptr.copy()),
                shape=rows.shape)
        if self.blocks:
            rows = sparse.hstack([rows, *[_block_rows(batch.column(block.column), block)
                                          for block in self.blocks]], format="csr")
        # Spark's VectorAssembler leaves out zeros (words of IDF 0); so does this.
        rows.eliminate_zeros()
        return rows


def _block_rows(column: pa.Array, block: AppendedBlock) -> sparse.csr_matrix:
    """weight * sqrt(values) of each row of a list<float> `column` holding
    `block.dimension` values, zeros for a row holding another number (or null)."""
    lengths = pc.list_value_length(column).fill_null(-1).to_numpy(zero_copy_only=False)
    complete = lengths == block.dimension
    values = np.zeros((len(column), block.dimension))
    if complete.any():
        kept = column.filter(pa.array(complete)).flatten().to_numpy(zero_copy_only=False)
        values[complete] = block_values(kept.reshape(-1, block.dimension), block.weight)
    return sparse.csr_matrix(values)


def vector_rows(column: str, dimension: int) -> FeatureRows:
    """Feature rows that are the vectors of `column` as they are."""
    return FeatureRows(column, dimension)


def feature_rows(config: Config, idf: IDFModel | None, histogram_dimension: int
                 ) -> FeatureRows:
    """The feature rows of `config` read from the `histogram` column of a histograms table:
    its word histogram (of `histogram_dimension` bins) times `idf`'s weights, to
    histograms.power (a word histogram only: a VLAD or Fisher vector has its power
    already), L2-normalised when histograms.l2, then the enabled tone and colour blocks.
    `idf` is required when histograms.tfidf, else ignored."""
    settings = config.histograms
    if settings.tfidf and idf is None:
        raise ValueError("TF-IDF is enabled but no IDF model was given")
    return FeatureRows(
        HISTOGRAM, histogram_dimension,
        idf=idf.idf.toArray() if settings.tfidf else None,
        power=settings.power if settings.encoding == "words" else 1.0,
        l2=settings.l2,
        blocks=tuple(appended_blocks(config.tone, config.colour)))

"""Histograms stage: each descriptor to its nearest visual word (and spatial-pyramid cell),
then groupBy + pivot into exactly one histogram per image, then TF-IDF, power and L2
weighting."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.ml.feature import IDF, IDFModel, Normalizer, VectorAssembler
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StructField, StructType

from bovw.arrow_vectors import sparse_vectors
from bovw.config import HistogramSettings
from bovw.descriptors import accepted
from bovw.features import unpack, unpack_positions
from bovw.ingest import TRAIN

# Pure per-image functions, re-exported: they live in bovw.words so that bovw.predictor
# can use them without importing Spark.
from bovw.words import (  # noqa: F401
    histogram_length,
    nearest_words,
    pyramid_bins,
    scoring_matrix,
    soft_words,
    word_counts,
)

_IMAGE_COLUMNS = ("path", "label", "split", "n_keypoints")
# Per-image blocks of the descriptors table carried over to the histograms (bovw.tone,
# bovw.colour); descriptors of an older bovw may lack one.
_BLOCK_COLUMNS = ("tone", "colour")


def _cell_count_batches(centers: np.ndarray, pyramid_levels: int, kept: list[str],
                        neighbours: int, variance: float):
    """mapInArrow function: each image row becomes one row per pyramid cell: its `kept`
    columns, the cell, and that cell's word counts (bovw.words.word_counts with
    `neighbours` and `variance`) as a sparse vector of len(centers) entries."""
    k = len(centers)
    n_cells = histogram_length(k, pyramid_levels) // k
    cell_starts = np.arange(n_cells + 1) * k
    scoring = scoring_matrix(centers)

    def count(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            words, counts, offsets = [], [], [np.zeros(1, np.int32)]
            end = 0
            for blob, position_blob in zip(batch.column("descriptors").to_pylist(),
                                           batch.column("positions").to_pylist(), strict=True):
                bins, image_counts = word_counts(
                    unpack(blob), centers, unpack_positions(position_blob), pyramid_levels, scoring,
                    neighbours, variance)
                # Bins come sorted, cell by cell: each cell's words are one slice of them.
                offsets.append(end + np.searchsorted(bins, cell_starts[1:]).astype(np.int32))
                words.append((bins % k).astype(np.int32))
                counts.append(image_counts.astype(np.float64))
                end += len(bins)
            rows = np.repeat(np.arange(batch.num_rows), n_cells)
            vectors = sparse_vectors(k, np.concatenate(offsets),
                                     np.concatenate(words + [np.zeros(0, np.int32)]),
                                     np.concatenate(counts + [np.zeros(0)]))
            yield pa.RecordBatch.from_arrays(
                [batch.column(name).take(pa.array(rows)) for name in kept]
                + [pa.array(np.tile(np.arange(n_cells, dtype=np.int32), batch.num_rows)),
                   vectors],
                names=[*kept, "cell", "words"],
            )

    return count


def word_histograms(descriptors: DataFrame, centers: np.ndarray, pyramid_levels: int = 1,
                    neighbours: int = 1, variance: float = 0.0) -> DataFrame:
    """One raw-count histogram per accepted image.

    `descriptors` has DESCRIPTOR_SCHEMA rows; `centers` is the (k, 32) vocabulary. Each
    descriptor counts 1 for its nearest word (neighbours = 1), or is shared among its
    `neighbours` nearest words (soft assignment with `variance`, bovw.words.soft_words).
    Returns (path, label, split, n_keypoints, [tone,] [colour,] histogram: vector of
    histogram_length(k, pyramid_levels) bins); tone and colour are carried over when the
    descriptors have them (bovw.tone, bovw.colour). An image with no keypoints gets an
    all-zero histogram; it contributes nothing to any word.

    Each descriptor goes to its nearest word inside an Arrow UDF, which emits one row per
    (image, pyramid cell) with that cell's word counts as a sparse vector. groupBy(image)
    .pivot(cell) then lines an image's cells up into one row, and VectorAssembler joins
    them into one sparse histogram. Pivoting on the cell rather than on the word keeps
    the shuffle at a few rows per image (not one per non-empty bin: ~600 here) and the
    pivot a few columns wide at any k.
    """
    k = len(centers)
    n_cells = histogram_length(k, pyramid_levels) // k
    images = accepted(descriptors)
    keys = [*_IMAGE_COLUMNS, *(block for block in _BLOCK_COLUMNS if block in images.columns)]
    schema = StructType([images.schema[name] for name in keys]
                        + [StructField("cell", IntegerType()), StructField("words", VectorUDT())])
    per_cell = images.select(*keys, "descriptors", "positions").mapInArrow(
        _cell_count_batches(centers, pyramid_levels, keys, neighbours, variance), schema)
    lined_up = per_cell.groupBy(*keys).pivot("cell", list(range(n_cells))).agg(F.first("words"))
    # The size metadata spares VectorAssembler a Spark job (a first() over this whole
    # plan) to find out how long each cell's vector is.
    cells = [F.col(f"`{cell}`").alias(f"cell_{cell}", metadata={"ml_attr": {"num_attrs": k}})
             for cell in range(n_cells)]
    assembler = VectorAssembler(inputCols=[f"cell_{cell}" for cell in range(n_cells)],
                                outputCol="histogram")
    return assembler.transform(lined_up.select(*keys, *cells)).select(*keys, "histogram")


def fit_idf(histograms: DataFrame) -> IDFModel:
    """Spark ML IDF fitted on the Training histograms only."""
    idf = IDF(inputCol="histogram", outputCol="weighted")
    return idf.fit(histograms.filter(F.col("split") == TRAIN))


def weight(histograms: DataFrame, settings: HistogramSettings, idf: IDFModel | None
           ) -> DataFrame:
    """Add `weighted`: the histogram times IDF (when enabled), then L2-normalised (when enabled)."""
    if settings.tfidf and idf is None:
        raise ValueError("TF-IDF is enabled but no IDF model was given")
    weighted = (idf.transform(histograms) if settings.tfidf
                else histograms.withColumn("weighted", F.col("histogram")))
    if settings.power != 1.0:
        powered = F.transform(vector_to_array("weighted"), lambda x: F.pow(x, settings.power))
        weighted = weighted.withColumn("weighted", array_to_vector(powered))
    if settings.l2:
        weighted = Normalizer(inputCol="weighted", outputCol="_l2", p=2.0).transform(weighted)
        weighted = weighted.drop("weighted").withColumnRenamed("_l2", "weighted")
    return weighted

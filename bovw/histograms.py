"""Histograms stage: each descriptor to its nearest visual word, then groupBy + pivot
into exactly one k-bin histogram per image, then optional TF-IDF and L2 weighting."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.ml.feature import IDF, IDFModel, Normalizer
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

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
    word_counts,
)

_COUNTS_SCHEMA = "path string, word int, count int"


def _count_batches(centers: np.ndarray, pyramid_levels: int):
    schema = pa.schema([("path", pa.string()), ("word", pa.int32()), ("count", pa.int32())])

    def count(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            paths, words, counts = [], [], []
            for path, blob, position_blob in zip(
                    batch.column("path").to_pylist(), batch.column("descriptors").to_pylist(),
                    batch.column("positions").to_pylist(), strict=True):
                image_words, image_counts = word_counts(
                    unpack(blob), centers, unpack_positions(position_blob), pyramid_levels)
                paths.extend([path] * len(image_words))
                words.extend(image_words.tolist())
                counts.extend(image_counts.tolist())
            yield pa.RecordBatch.from_pydict(
                {"path": paths, "word": words, "count": counts}, schema=schema
            )

    return count


def word_histograms(descriptors: DataFrame, centers: np.ndarray, pyramid_levels: int = 1
                    ) -> DataFrame:
    """One raw-count histogram per accepted image.

    `descriptors` has DESCRIPTOR_SCHEMA rows; `centers` is the (k, 32) vocabulary.
    Returns (path, label, split, n_keypoints, [colour,] histogram: vector of
    histogram_length(k, pyramid_levels) bins); colour is carried over when the descriptors
    have it (bovw.colour). An image with no keypoints gets an all-zero histogram; it
    contributes nothing to any word.
    """
    length = histogram_length(len(centers), pyramid_levels)
    images = accepted(descriptors)
    counts = images.filter(F.col("n_keypoints") > 0).select(
        "path", "descriptors", "positions"
    ).mapInArrow(_count_batches(centers, pyramid_levels), _COUNTS_SCHEMA)
    # The explicit word list spares Spark a pass to discover the distinct values.
    pivoted = counts.groupBy("path").pivot("word", list(range(length))).agg(F.sum("count"))
    bins = [F.coalesce(F.col(f"`{word}`"), F.lit(0)).cast("double") for word in range(length)]
    histograms = pivoted.select("path", array_to_vector(F.array(*bins)).alias("histogram"))
    empty = array_to_vector(F.array_repeat(F.lit(0.0), length))
    return (
        images.select("path", "label", "split", "n_keypoints",
                      *(["colour"] if "colour" in images.columns else []))
        .join(histograms, "path", "left")
        .withColumn("histogram", F.coalesce(F.col("histogram"), empty))
    )


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

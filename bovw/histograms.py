"""Histograms stage: each descriptor to its nearest visual word (and spatial-pyramid cell),
then groupBy + pivot into exactly one histogram per image, then TF-IDF, power and L2
weighting."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.ml.feature import IDF, IDFModel, Normalizer, VectorAssembler
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

# Bins per pivot block: 128 generated columns keep each JVM method well under 64 KB.
PIVOT_BLOCK = 128


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


def word_histograms(descriptors: DataFrame, centers: np.ndarray, pyramid_levels: int = 1,
                    block_size: int = PIVOT_BLOCK) -> DataFrame:
    """One raw-count histogram per accepted image.

    `descriptors` has DESCRIPTOR_SCHEMA rows; `centers` is the (k, 32) vocabulary.
    Returns (path, label, split, n_keypoints, [colour,] histogram: vector of
    histogram_length(k, pyramid_levels) bins); colour is carried over when the descriptors
    have it (bovw.colour). An image with no keypoints gets an all-zero histogram; it
    contributes nothing to any word.

    The pivot runs in blocks of `block_size` bins: groupBy(path, block).pivot(bin in block)
    gives one short count array per non-empty block, and groupBy(path).pivot(block) lines
    the blocks up. One pivot over every bin would generate a method per row beyond the
    JVM's 64 KB limit from ~1,000 bins on, and Spark then falls back to slow interpreted
    code; blocks keep each generated method small at any k.
    """
    length = histogram_length(len(centers), pyramid_levels)
    block_size = min(block_size, length)
    n_blocks = -(-length // block_size)
    images = accepted(descriptors)
    counts = images.filter(F.col("n_keypoints") > 0).select(
        "path", "descriptors", "positions"
    ).mapInArrow(_count_batches(centers, pyramid_levels), _COUNTS_SCHEMA)
    blocked = counts.select(
        "path",
        (F.col("word") / block_size).cast("int").alias("block"),
        (F.col("word") % block_size).alias("slot"),
        "count",
    )
    # Explicit values spare Spark a pass to discover the distinct ones.
    per_block = blocked.groupBy("path", "block").pivot("slot", list(range(block_size))).agg(
        F.sum("count"))
    zero = F.lit(0.0)
    block_arrays = per_block.select("path", "block", array_to_vector(F.array(*[
        F.coalesce(F.col(f"`{slot}`").cast("double"), zero) for slot in range(block_size)
    ])).alias("counts"))
    lined_up = block_arrays.groupBy("path").pivot("block", list(range(n_blocks))).agg(
        F.first("counts"))
    empty_block = array_to_vector(F.array_repeat(zero, block_size))
    assembler = VectorAssembler(inputCols=[f"block_{block}" for block in range(n_blocks)],
                                outputCol="blocks")
    histograms = assembler.transform(lined_up.select("path", *[
        F.coalesce(F.col(f"`{block}`"), empty_block).alias(f"block_{block}")
        for block in range(n_blocks)
    ])).select("path", _first_bins(length, n_blocks * block_size).alias("histogram"))
    empty = array_to_vector(F.array_repeat(zero, length))
    return (
        images.select("path", "label", "split", "n_keypoints",
                      *(["colour"] if "colour" in images.columns else []))
        .join(histograms, "path", "left")
        .withColumn("histogram", F.coalesce(F.col("histogram"), empty))
    )


def _first_bins(length: int, padded_length: int):
    """The `blocks` vector cut to `length` bins (the last block may run past the end)."""
    if length == padded_length:
        return F.col("blocks")
    return array_to_vector(F.slice(vector_to_array("blocks"), 1, length))


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

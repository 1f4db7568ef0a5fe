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

_COUNTS_SCHEMA = "image long, word int, count int"

# Bins per pivot block: 128 generated columns keep each JVM method well under 64 KB.
PIVOT_BLOCK = 128


def _count_batches(centers: np.ndarray, pyramid_levels: int):
    schema = pa.schema([("image", pa.int64()), ("word", pa.int32()), ("count", pa.int32())])

    def count(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            images, words, counts = [], [], []
            for image, blob, position_blob in zip(
                    batch.column("image").to_numpy(), batch.column("descriptors").to_pylist(),
                    batch.column("positions").to_pylist(), strict=True):
                image_words, image_counts = word_counts(
                    unpack(blob), centers, unpack_positions(position_blob), pyramid_levels)
                images.append(np.full(len(image_words), image, dtype=np.int64))
                words.append(image_words.astype(np.int32))
                counts.append(image_counts.astype(np.int32))
            yield pa.RecordBatch.from_arrays(
                [pa.array(np.concatenate(column) if column else np.zeros(0, dtype))
                 for column, dtype in ((images, np.int64), (words, np.int32),
                                       (counts, np.int32))],
                schema=schema,
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

    The pivot runs in blocks of `block_size` bins: groupBy(image, block).pivot(bin in block)
    gives one short count array per non-empty block, and groupBy(image).pivot(block) lines
    the blocks up. One pivot over every bin would generate a method per row beyond the
    JVM's 64 KB limit from ~1,000 bins on, and Spark then falls back to slow interpreted
    code; blocks keep each generated method small at any k.
    """
    length = histogram_length(len(centers), pyramid_levels)
    block_size = min(block_size, length)
    n_blocks = -(-length // block_size)
    # The shuffles below carry a 64-bit hash of the path rather than the path itself: a
    # tenth of the bytes. Two of 10^6 paths collide with probability ~3e-8.
    images = accepted(descriptors).withColumn("image", F.xxhash64("path"))
    counts = images.filter(F.col("n_keypoints") > 0).select(
        "image", "descriptors", "positions"
    ).mapInArrow(_count_batches(centers, pyramid_levels), _COUNTS_SCHEMA)
    # One shuffle by image up front: every grouping below has the image in its key, so
    # Spark reuses this partitioning instead of shuffling again before each of them.
    blocked = counts.repartition("image").select(
        "image",
        (F.col("word") / block_size).cast("int").alias("block"),
        (F.col("word") % block_size).alias("slot"),
        "count",
    )
    # Explicit values spare Spark a pass to discover the distinct ones.
    per_block = blocked.groupBy("image", "block").pivot("slot", list(range(block_size))).agg(
        F.sum("count"))
    zero = F.lit(0.0)
    block_arrays = per_block.select("image", "block", F.array(*[
        F.coalesce(F.col(f"`{slot}`").cast("double"), zero) for slot in range(block_size)
    ]).alias("counts"))
    lined_up = block_arrays.groupBy("image").pivot("block", list(range(n_blocks))).agg(
        F.first("counts"))
    empty_block = F.array_repeat(zero, block_size)
    last_length = length - (n_blocks - 1) * block_size

    def block_vector(block: int):
        counts = F.coalesce(F.col(f"`{block}`"), empty_block)
        if block == n_blocks - 1 and last_length < block_size:
            counts = F.slice(counts, 1, last_length)
        return array_to_vector(counts).alias(f"block_{block}")

    # VectorAssembler stores the result sparse when that is smaller: a few hundred
    # non-zero bins out of thousands, cheap to shuffle into the join below.
    assembler = VectorAssembler(inputCols=[f"block_{block}" for block in range(n_blocks)],
                                outputCol="histogram")
    histograms = assembler.transform(
        lined_up.select("image", *[block_vector(block) for block in range(n_blocks)])
    ).select("image", "histogram")
    empty = array_to_vector(F.array_repeat(zero, length))
    return (
        images.select("image", "path", "label", "split", "n_keypoints",
                      *(["colour"] if "colour" in images.columns else []))
        .join(histograms, "image", "left")
        .drop("image")
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

"""Ingest: list the images of a dataset folder with their label and Training/Test split."""

from __future__ import annotations

import re
from urllib.parse import unquote

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from bovw.config import IngestSettings
from bovw.inputs import check_local_input, is_local_path  # noqa: F401 (part of this stage's API)

TRAIN, TEST = "Training", "Test"
_SPLIT_NAMES = {"training": TRAIN, "train": TRAIN, "test": TEST}


def extension_glob(extensions: tuple[str, ...]) -> str:
    """A Hadoop glob matching every extension in any letter case: ("jpg",) -> "*.{[jJ][pP][gG]}"."""
    def any_case(ext: str) -> str:
        return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in ext)

    return "*.{" + ",".join(any_case(ext.lstrip(".")) for ext in extensions) + "}"


def list_files(spark: SparkSession, path: str, settings: IngestSettings) -> DataFrame:
    """The binaryFile listing of every image under `path` (recursive, any-case extension).

    Returns the binaryFile DataFrame (path, modificationTime, length, content); the
    content column is only read by Spark when a later stage selects it. Zero-byte files,
    which Spark's file scan skips, are added back with empty content so that they are
    rejected visibly instead of vanishing.
    """
    files = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", extension_glob(settings.extensions))
        .load(path)
    )
    listed = files.inputFiles()  # Spark's own driver-side listing, already in memory
    if len(listed) == files.count():
        return files
    # The listing holds URIs (file:///a%20b); the path column holds Hadoop paths (file:/a b).
    every = spark.createDataFrame(
        [(re.sub("^file:///", "file:/", unquote(uri)),) for uri in listed], "path string")
    empty = every.join(files.select("path"), "path", "left_anti").select(
        "path",
        F.lit(None).cast("timestamp").alias("modificationTime"),
        F.lit(0).cast("long").alias("length"),
        F.lit(b"").cast("binary").alias("content"),
    )
    return files.unionByName(empty)


def with_labels(files: DataFrame) -> DataFrame:
    """Add `label` (the parent folder's name) and `split_folder` (Training/Test or null).

    The split comes from the grandparent folder, so `Training/Apple Red 1/x.jpg` gives
    label "Apple Red 1", split "Training".
    """
    parts = F.split(F.col("path"), "/")
    grandparent = F.lower(F.element_at(parts, -3))
    split_expr = F.lit(None).cast("string")
    for folder, split in _SPLIT_NAMES.items():
        split_expr = F.when(grandparent == folder, F.lit(split)).otherwise(split_expr)
    return files.withColumn("label", F.element_at(parts, -2)).withColumn(
        "split_folder", split_expr
    )


def assign_splits(images: DataFrame, test_fraction: float, seed: int, has_split_folders: bool
                  ) -> DataFrame:
    """Add the `split` column.

    With split folders the folder decides, and images outside them get split null (the
    caller rejects them). Without, a seeded stratified split: within each label, images
    are ranked by a hash of (seed, path) and the first round(n * test_fraction) go to
    Test. Hash-ranking makes the split independent of partitioning and master URL.
    """
    if has_split_folders:
        return images.withColumn("split", F.col("split_folder"))
    by_label = Window.partitionBy("label")
    ranked = images.withColumn("_h", F.xxhash64(F.lit(seed), F.col("path"))).withColumn(
        "_rank", F.row_number().over(by_label.orderBy("_h", "path"))
    ).withColumn("_n", F.count(F.lit(1)).over(by_label))
    is_test = F.col("_rank") <= F.round(F.col("_n") * F.lit(test_fraction))
    return ranked.withColumn(
        "split", F.when(is_test, F.lit(TEST)).otherwise(F.lit(TRAIN))
    ).drop("_h", "_rank", "_n")

"""Descriptors stage: ORB on every image inside an Arrow-batched Spark UDF (mapInArrow).

One output row per input image: the descriptors packed as (n * 32) bytes, or a reject
reason. Oversized files are rejected from their listed length without being read. Files
of a local folder are read by the Python workers themselves: Spark's binaryFile reader
would open each one in the JVM and copy its bytes through several row formats to reach
them (3 s of CPU more on the 15.5k files of fruits360-dev).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from bovw.columns import (
    COLOUR,
    CONTENT,
    DESCRIPTOR_SCHEMA,
    DESCRIPTORS,
    HEIGHT,
    LABEL,
    LENGTH,
    N_KEYPOINTS,
    PATH,
    POSITIONS,
    REJECT_REASON,
    SAMPLE,
    SPLIT,
    TEST,
    TONE,
    TRAIN,
    WIDTH,
)
from bovw.config import ColourSettings, OrbSettings, ToneSettings
from bovw.image.orb import (
    DESCRIPTOR_BYTES,
    EMPTY_DESCRIPTORS,
    Extraction,
    extract_descriptors,
    image_rng,
    pack,
)
from bovw.pipeline.ingest import class_label, split_folder
from bovw.pipeline.inputs import read_local_file

__all__ = ["PARQUET_COMPRESSION", "ImageSizes", "SplitClasses", "accepted", "describe_images",
           "other_size_images", "rejects", "sample_rows", "statistics", "training_size"]

# The descriptors Parquet is written without compression: its bulk is ORB's binary
# descriptors, which compress little. On fruits360-dev x10 (155k images, on a local disk:
# `python -m bench.descriptor_codecs /tmp/bovw-bench/fruits360-dev-x10 --repeat 4`) Snappy
# made it 1,276 MB instead of 1,532 MB (17% less), for 66.4 s instead of 61.8 s to list,
# describe and write it (medians; paired 1.07x, 0.98-1.15x) and 5.1 s instead of 4.7 s to
# read its descriptors back into the Python workers. On S3 (not measured: no s3a here)
# those 17% more bytes go over the network on every read instead. Every other output
# keeps the session's codec (spark.sql.parquet.compression.codec, Snappy by default).
PARQUET_COMPRESSION = "uncompressed"

_OUTPUT_SCHEMA = pa.schema([
    (PATH, pa.string()), (LABEL, pa.string()), (SPLIT, pa.string()),
    (N_KEYPOINTS, pa.int32()), (DESCRIPTORS, pa.binary()), (REJECT_REASON, pa.string()),
    (WIDTH, pa.int32()), (HEIGHT, pa.int32()), (POSITIONS, pa.binary()),
    (COLOUR, pa.list_(pa.float32())),
    (TONE, pa.list_(pa.float32())),
    (SAMPLE, pa.binary()),
])


def sample_rows(descriptors: np.ndarray, count: int, seed: int, path: str) -> np.ndarray:
    """`count` of an image's descriptor rows (all of them when it has fewer), chosen by a
    generator seeded from (seed, image_key(path)), in their original order: the same for a
    copy of the image under another folder."""
    if len(descriptors) <= count:
        return descriptors
    chosen = image_rng(seed, path).choice(len(descriptors), count, replace=False)
    return descriptors[np.sort(chosen)]


def _describe_batches(settings: OrbSettings, colour: ColourSettings | None,
                      tone: ToneSettings | None, sample_per_image: int, seed: int):
    from bovw.image.colour import image_colour

    def describe(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            columns = batch.to_pydict()
            if CONTENT not in columns:  # a local folder: the files are read here
                columns[CONTENT] = [read_local_file(path) for path in columns[PATH]]
            results = [Extraction(EMPTY_DESCRIPTORS, reject_reason=content)
                       if isinstance(content, str)
                       else extract_descriptors(content or b"", settings, tone)
                       for content in columns[CONTENT]]
            colours = [image_colour(content, settings, colour).tolist()
                       if colour is not None and colour.enabled and r.reject_reason is None
                       else [] for content, r in zip(columns[CONTENT], results, strict=True)]
            samples = [pack(sample_rows(r.descriptors, sample_per_image, seed, path))
                       if split == TRAIN and sample_per_image > 0 else b""
                       for path, split, r in zip(columns[PATH], columns[SPLIT], results,
                                                 strict=True)]
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(columns[PATH], pa.string()),
                    pa.array([class_label(label) for label in columns[LABEL]], pa.string()),
                    pa.array(columns[SPLIT], pa.string()),
                    pa.array([r.n_keypoints for r in results], pa.int32()),
                    pa.array([pack(r.descriptors) for r in results], pa.binary()),
                    pa.array([r.reject_reason for r in results], pa.string()),
                    pa.array([r.width for r in results], pa.int32()),
                    pa.array([r.height for r in results], pa.int32()),
                    pa.array([pack(r.positions) for r in results], pa.binary()),
                    pa.array(colours, pa.list_(pa.float32())),
                    pa.array([r.tone.tolist() for r in results], pa.list_(pa.float32())),
                    pa.array(samples, pa.binary()),
                ],
                schema=_OUTPUT_SCHEMA,
            )

    return describe


def describe_images(files: DataFrame, settings: OrbSettings, max_file_bytes: int,
                    colour: ColourSettings | None = None, sample_per_image: int = 0,
                    seed: int = 0, tone: ToneSettings | None = None,
                    read_local: bool = False) -> DataFrame:
    """ORB descriptors for every listed image.

    `files` has the binaryFile columns plus label and split (null split = outside the
    Training/Test folders). Returns DESCRIPTOR_SCHEMA rows, one per file, rejects included
    with their reason and n_keypoints 0; `colour` holds the image's colour block when
    `colour.enabled` (bovw.image.colour), else it is empty; `tone` likewise its tone block
    when `tone.enabled` (bovw.image.tone). `sample` holds `sample_per_image`
    of a Training image's descriptors (sample_rows with `seed`), packed like
    `descriptors`: the vocabulary stage samples from these small blobs instead of reading
    every descriptor again. With `read_local` (the paths are local files) the Python
    workers read the files themselves; one that cannot be read is rejected with the
    reason.
    """
    readable = files.filter((F.col(LENGTH) <= max_file_bytes) & F.col(SPLIT).isNotNull())
    columns = [PATH, LABEL, SPLIT] + ([] if read_local else [CONTENT])
    described = readable.select(*columns).mapInArrow(
        _describe_batches(settings, colour, tone, sample_per_image, seed), DESCRIPTOR_SCHEMA
    )
    too_large = F.col(LENGTH) > max_file_bytes
    # Training/Kiwi/2024/a.jpg: the label would be "2024", so it is not read; the reason
    # names the class folder the image should sit directly in.
    nested = split_folder(F.col(PATH), level=4).isNotNull()
    # Test/c.jpg: in a split folder, but with no class folder to give its label.
    unlabelled = split_folder(F.col(PATH), level=2).isNotNull()
    # Every kind of unread reject comes from one scan of the listing, not one each.
    unread = files.filter(too_large | F.col(SPLIT).isNull()).select(
        PATH, LABEL, SPLIT,
        F.when(too_large, F.concat(
            F.lit("file too large: "), F.col(LENGTH).cast("string"),
            F.lit(f" bytes exceeds ingest.max_file_bytes={max_file_bytes}"),
        )).when(nested, F.concat(
            F.lit("in a sub-folder of the class folder "),
            F.element_at(F.split(F.col(PATH), "/"), -3),
            F.lit(": images must sit directly in Training/<Class>/ or Test/<Class>/"),
        )).when(unlabelled, F.concat(
            F.lit("directly in the split folder "),
            F.element_at(F.split(F.col(PATH), "/"), -2),
            F.lit(", outside any class folder: images must sit in Training/<Class>/ or "
                  "Test/<Class>/"),
        )).otherwise(F.lit("not inside a Training or Test folder")).alias(REJECT_REASON),
    )
    rejected_unread = unread.select(
        PATH, LABEL, SPLIT,
        F.lit(0).cast("int").alias(N_KEYPOINTS),
        F.lit(b"").cast("binary").alias(DESCRIPTORS),
        REJECT_REASON,
        F.lit(0).cast("int").alias(WIDTH),
        F.lit(0).cast("int").alias(HEIGHT),
        F.lit(b"").cast("binary").alias(POSITIONS),
        F.array().cast("array<float>").alias(COLOUR),
        F.array().cast("array<float>").alias(TONE),
        F.lit(b"").cast("binary").alias(SAMPLE),
    )
    return described.unionByName(rejected_unread)


def accepted(descriptors: DataFrame) -> DataFrame:
    """The rows of images that were read (rejects removed); zero-keypoint images stay."""
    return descriptors.filter(F.col(REJECT_REASON).isNull())


def training_size(descriptors: DataFrame) -> tuple[int, int] | None:
    """The median width and height of the accepted Training images, the size the
    Predictor frames a photo to; None without any (or with descriptors that predate the
    width and height columns)."""
    if WIDTH not in descriptors.columns:
        return None
    row = (
        accepted(descriptors)
        .filter((F.col(SPLIT) == TRAIN) & (F.col(WIDTH) > 0))
        .agg(F.percentile_approx(WIDTH, 0.5, 100000).alias(WIDTH),
             F.percentile_approx(HEIGHT, 0.5, 100000).alias(HEIGHT))
        .first()
    )
    if row is None or row[WIDTH] is None:
        return None
    return int(row[WIDTH]), int(row[HEIGHT])


def rejects(descriptors: DataFrame) -> DataFrame:
    """The (path, label, split, reason) rows of rejected images."""
    return descriptors.filter(F.col(REJECT_REASON).isNotNull()).select(
        PATH, LABEL, SPLIT, F.col(REJECT_REASON).alias("reason")
    )


def statistics(descriptors: DataFrame) -> tuple[dict, dict, ImageSizes, SplitClasses]:
    """Counts (images, accepted, rejected, per split, classes, the classes found only in
    Test: a few names, not per image) and keypoint statistics over
    accepted images (mean, min, median, max, images without keypoints, total; and over
    Training images, `training` descriptors of which `set_aside` were set aside for the
    vocabulary sample), the ImageSizes and the SplitClasses, in one pass."""
    ok = F.col(REJECT_REASON).isNull()
    keypoints = F.when(ok, F.col(N_KEYPOINTS))
    training = ok & (F.col(SPLIT) == TRAIN)
    set_aside = (F.length(SAMPLE) if SAMPLE in descriptors.columns else F.lit(0)
                 ) / DESCRIPTOR_BYTES
    row = descriptors.agg(
        F.count(F.lit(1)).alias("images"),
        F.sum(F.when(ok, 1).otherwise(0)).alias("accepted"),
        F.sum(F.when(training, 1).otherwise(0)).alias(TRAIN),
        F.sum(F.when(ok & (F.col(SPLIT) == TEST), 1).otherwise(0)).alias(TEST),
        F.mean(keypoints).alias("mean"),
        F.min(keypoints).alias("min"),
        F.percentile_approx(keypoints, 0.5).alias("median"),
        F.max(keypoints).alias("max"),
        F.sum(F.when(ok & (F.col(N_KEYPOINTS) == 0), 1).otherwise(0)).alias("zero"),
        F.sum(keypoints).alias("total"),
        F.sum(F.when(training, F.col(N_KEYPOINTS))).alias("training"),
        F.sum(F.when(training, set_aside)).alias("set_aside"),
        F.collect_set(F.when(training, F.col(LABEL))).alias("training_classes"),
        F.collect_set(F.when(ok & (F.col(SPLIT) == TEST), F.col(LABEL))
                      ).alias("test_classes"),
        *_size_columns(descriptors, ok, training),
    ).first()
    counts = {
        "images": int(row["images"]),
        "accepted": int(row["accepted"] or 0),
        "rejected": int(row["images"]) - int(row["accepted"] or 0),
        "per_split": {TRAIN: int(row[TRAIN] or 0), TEST: int(row[TEST] or 0)},
        # Every accepted image is in one of the two split folders (the others are
        # rejected), so the classes are the union of the two sets: no count_distinct,
        # whose extra shuffle made this pass three Spark jobs instead of two.
        "classes": len(set(row["training_classes"]) | set(row["test_classes"])),
        # Classes with Test images and none in Training: no model trained here names them.
        "test_only_classes": sorted(set(row["test_classes"]) - set(row["training_classes"])),
    }
    keypoint_stats = {
        "mean": round(float(row["mean"] or 0.0), 2),
        "min": int(row["min"] or 0),
        "median": int(row["median"] or 0),
        "max": int(row["max"] or 0),
        "images_without_keypoints": int(row["zero"] or 0),
        "total": int(row["total"] or 0),
        "training": int(row["training"] or 0),
        "set_aside": int(row["set_aside"] or 0),
    }
    classes = SplitClasses(frozenset(row["training_classes"]), frozenset(row["test_classes"]))
    return counts, keypoint_stats, _sizes(row), classes


@dataclass(frozen=True)
class SplitClasses:
    """The classes (labels) of the accepted Training images and of the accepted Test ones."""

    training: frozenset[str] = frozenset()
    test: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ImageSizes:
    """The median (width, height) of the accepted Training images, the size the Predictor
    frames a photo to (None without any), and whether the accepted images are not all of
    one size."""

    training: tuple[int, int] | None = None
    varied: bool = False


def _size_columns(descriptors: DataFrame, ok: Column, training: Column) -> list[Column]:
    if WIDTH not in descriptors.columns:  # descriptors of a bovw before 0.2
        return []
    described = ok & (F.col(WIDTH) > 0)
    return [
        *(F.percentile_approx(F.when(training & (F.col(WIDTH) > 0), F.col(side)), 0.5,
                              100000).alias(f"training_{side}") for side in (WIDTH, HEIGHT)),
        *(getattr(F, bound)(F.when(described, F.col(side))).alias(f"{bound}_{side}")
          for bound in ("min", "max") for side in (WIDTH, HEIGHT)),
    ]


def _sizes(row) -> ImageSizes:
    values = row.asDict()
    if values.get(f"training_{WIDTH}") is None:
        return ImageSizes()
    smallest, largest = ((values[f"{bound}_{WIDTH}"], values[f"{bound}_{HEIGHT}"])
                         for bound in ("min", "max"))
    return ImageSizes((int(values[f"training_{WIDTH}"]), int(values[f"training_{HEIGHT}"])),
                      varied=smallest != largest)


def other_size_images(descriptors: DataFrame, size: tuple[int, int], split: str) -> int:
    """How many accepted `split` images are not of `size` (width, height)."""
    width, height = size
    return (accepted(descriptors)
            .filter((F.col(SPLIT) == split) & (F.col(WIDTH) > 0)
                    & ((F.col(WIDTH) != width) | (F.col(HEIGHT) != height)))
            .count())

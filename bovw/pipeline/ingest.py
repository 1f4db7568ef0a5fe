"""Ingest: list the images of a dataset folder with their label and Training/Test split."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

import pyarrow as pa
from pyspark.sql import Column, DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F

from bovw.columns import (
    CONTENT,
    LABEL,
    LENGTH,
    PATH,
    SPLIT,
    SPLIT_FOLDER,
    SPLIT_NAMES,
    TEST,
    TRAIN,
)
from bovw.config import IngestSettings
from bovw.errors import InputError
from bovw.locations import is_local_path
from bovw.pipeline.inputs import read_local_file, split_of
from bovw.pipeline.listing import (
    LocalImage,
    LocalTree,
    local_tree,
    names_spark_skips,
)
from bovw.spark.jvm import FileSplits, file_splits, input_file_names, input_files
from bovw.spark.storage import literal

__all__ = ["Listing", "assign_splits", "class_label", "extension_glob", "image_name",
           "input_digest", "labelled_images", "list_files", "listed_images", "split_folder",
           "with_labels"]


def extension_glob(extensions: tuple[str, ...]) -> str:
    """A Hadoop glob matching every extension in any letter case: ("jpg",) -> "*.{[jJ][pP][gG]}"."""
    def any_case(ext: str) -> str:
        return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in ext)

    return "*.{" + ",".join(any_case(ext.lstrip(".")) for ext in extensions) + "}"


def list_files(spark: SparkSession, path: str, settings: IngestSettings,
               log: Callable[[str], None] = print) -> DataFrame:
    """The binaryFile listing of every image under `path`; see _list_files."""
    return _list_files(spark, path, settings, log)[0]


@dataclass(frozen=True)
class Listing:
    """The images a run reads (`frame`: labelled_images' rows) and `digest`, a digest of
    their listing (names, sizes, modification times) that input_digest gives again for as
    long as the input holds the same files."""

    frame: DataFrame
    digest: str


def labelled_images(spark: SparkSession, path: str, settings: IngestSettings, seed: int,
                    log: Callable[[str], None] = print) -> DataFrame:
    """Every image under `path` with its label and split (see with_labels, assign_splits):
    the Training/Test folders decide the split when the dataset has them, else a seeded
    stratified split with settings.test_fraction."""
    return listed_images(spark, path, settings, seed, log).frame


def listed_images(spark: SparkSession, path: str, settings: IngestSettings, seed: int,
                  log: Callable[[str], None] = print) -> Listing:
    """labelled_images, with the digest of the very listing its rows come from: a file
    added while the images are read is not in either."""
    files, has_split_folders, digest = _list_files(spark, path, settings, log)
    return Listing(assign_splits(with_labels(files), settings.test_fraction, seed,
                                 has_split_folders), digest)


def input_digest(spark: SparkSession, path: str, settings: IngestSettings) -> str:
    """The Listing.digest of the images under `path` now. Local: LocalTree.fingerprint of
    Python's walk; elsewhere (S3, HDFS) the count of the files Spark lists and the sum of
    a hash of each one's path, size and modification time, taken in the job that surveys
    the listing (no file is read)."""
    tree = _walked(path, settings)
    if tree is not None:  # the walk alone, without the DataFrame of its files
        return tree.fingerprint()
    return _list_files(spark, path, settings, lambda _line: None)[2]


def _list_files(spark: SparkSession, path: str, settings: IngestSettings,
                log: Callable[[str], None]) -> tuple[DataFrame, bool, str]:
    """Every image under `path` (recursive, any-case extension) in binaryFile's columns
    (path, modificationTime, length, content), whether any sits in a Training/Test
    folder, and the listing's digest (input_digest). The content column is only read when
    a later step selects it.

    A local tree is walked by Python (_local_files); what it leaves out is said through
    `log`. Elsewhere Spark's binaryFile source lists it, and the zero-byte files, which its
    scan skips, are added back with empty content, so that they are rejected visibly
    instead of vanishing.
    """
    tree = _walked(path, settings)
    if tree is not None:
        _log_local_tree(tree, settings, log)
        if tree.loops and not tree.images:
            raise InputError(f"input folder {path} holds nothing outside symbolic link "
                             "loops")
        return (_local_files(spark, tree.images),
                any(split_of(image.path) for image in tree.images), tree.fingerprint())
    notice = names_spark_skips(spark, path, settings.extensions).message(path)
    if notice:
        log(notice)
    files = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", extension_glob(settings.extensions))
        .load(literal(path))
    )
    # Spark's own driver-side listing; one job counts the scanned files against it and
    # looks for split folders.
    listed = input_files(files)
    survey = files.select(
        (F.count(F.lit(1)) < F.lit(len(listed))).alias("skipped"),
        F.max(split_folder(F.col(PATH)).isNotNull()).alias("split_folders"),
        *_digest_columns(),
    ).first()
    has_split_folders = bool(survey["split_folders"])
    if not survey["skipped"]:
        return files, has_split_folders, _digest(survey)
    every = spark.createDataFrame(
        [(_path_column(uri),) for uri in input_file_names(spark, listed)], "path string")
    empty = every.join(files.select(PATH), PATH, "left_anti").select(
        PATH,
        F.lit(None).cast("timestamp").alias("modificationTime"),
        F.lit(0).cast("long").alias(LENGTH),
        F.lit(b"").cast("binary").alias(CONTENT),
    )
    everything = files.unionByName(empty)
    if not has_split_folders:  # unless only zero-byte files sit in split folders
        has_split_folders = everything.filter(
            split_folder(F.col(PATH)).isNotNull()).limit(1).count() > 0
    return everything, has_split_folders, _digest(everything.select(*_digest_columns()).first())


def _walked(path: str, settings: IngestSettings) -> LocalTree | None:
    """Python's walk of a local `path` (listing.local_tree), None for one Spark lists."""
    return local_tree(path, settings.extensions) if is_local_path(path) else None


def _path_column(uri: str) -> str:
    """A URI of Spark's listing as binaryFile's path column spells it: unquoted (the URI
    s3a://b/a%20b is the path s3a://b/a b), and file:///a as file:/a."""
    path = unquote(uri)
    return "file:/" + path.removeprefix("file:///") if path.startswith("file:///") else path


def _digest_columns() -> list[Column]:
    # A sum of the files' hashes: the same whatever the order Spark lists them in. Exact
    # as a decimal (a long would wrap), and a zero-byte file, added back with no time, is
    # hashed on its path and size.
    hashed = F.xxhash64(F.col(PATH), F.col(LENGTH), F.col("modificationTime"))
    return [F.count(F.lit(1)).alias("files"),
            F.sum(hashed.cast("decimal(38,0)")).alias("hashes")]


def _digest(row: Row) -> str:
    return f"listing:{row['files']}:{row['hashes'] or 0}"


def _log_local_tree(tree: LocalTree, settings: IngestSettings,
                    log: Callable[[str], None]) -> None:
    """One line for each kind of file a local tree holds that is not read."""
    if tree.hidden:
        log(f"[bovw] ingest: leaving out {len(tree.hidden)} hidden image file(s) (a "
            f"name starting with '.' on their path), such as {tree.hidden[0]!r}")
    if tree.other_images:
        counted = ", ".join(f"{kind} {count}" for kind, count in tree.other_images)
        log(f"[bovw] ingest: not reading {sum(n for _, n in tree.other_images)} image "
            f"file(s) of other types ({counted}): ingest.extensions is "
            f"{', '.join(settings.extensions)}")
    if tree.undecodable:
        log(f"[bovw] ingest: leaving out {len(tree.undecodable)} image file(s) whose path "
            f"is not valid UTF-8, such as {tree.undecodable[0]!r}: rename them to have "
            "them read")
    for link, target in tree.loops:
        log(f"[bovw] ingest: not following {link!r}: a symbolic link to its own "
            f"ancestor folder {target!r}")


_LISTING_SCHEMA = pa.schema([(PATH, pa.string()),
                             ("modificationTime", pa.timestamp("us", tz="UTC")),
                             (LENGTH, pa.int64())])


def _local_files(spark: SparkSession, images: tuple[LocalImage, ...]) -> DataFrame:
    """binaryFile's columns for the images of a local tree, from Python's walk.

    Spark's own listing of the same folder would stat every file again in the driver's
    JVM (4-5 s of a run's ingest at 155k files). `path` is named as binaryFile names it
    ("file:/a/b c.jpg"); `content` is read by a Python UDF, and only when a later step
    selects it (the descriptors stage reads the files itself). The rows are dealt round
    robin into as many partitions as Spark's file scan would fill with these files
    (_scan_partitions), so that every core gets a share and large and small files spread
    evenly.
    """
    table = pa.table([
        pa.array([f"file:{image.path}" for image in images], pa.string()),
        pa.array([int(image.modified * 1_000_000) for image in images],
                 pa.timestamp("us", tz="UTC")),
        pa.array([image.size for image in images], pa.int64()),
    ], schema=_LISTING_SCHEMA)
    # From an Arrow table the rows stay in the JVM (a list of tuples would become a Python
    # RDD, read back through Python workers), but on the session's default parallelism
    # whatever the table's batches: a repartition to the number the files call for. A
    # number given explicitly is one adaptive execution keeps.
    partitions = _scan_partitions([image.size for image in images], file_splits(spark))
    return spark.createDataFrame(table).repartition(partitions).withColumn(
        CONTENT, F.udf(_local_content, "binary", useArrow=False)(F.col(PATH)))


def _scan_partitions(sizes: list[int], splits: FileSplits) -> int:
    """How many partitions files of these sizes fill at the split size of Spark's file
    scan (FilePartition.maxSplitBytes: each file counts its size plus the open cost; the
    pieces hold at most max_partition_bytes, and there are at least min_partitions of
    them), one file each at most. Spark's own packing of whole files into such pieces
    can leave a few more."""
    if not sizes:
        return 1
    total = sum(sizes) + len(sizes) * splits.open_cost_bytes
    per_core = total / splits.min_partitions
    piece = min(splits.max_partition_bytes, max(splits.open_cost_bytes, per_core))
    return max(1, min(len(sizes), math.ceil(total / piece)))


def _local_content(path: str) -> bytes | None:
    """The bytes of a local file named by its Hadoop path ("file:/a/b.jpg"), None when it
    cannot be read (the descriptors stage reads it again and says why)."""
    content = read_local_file(path)
    return None if isinstance(content, str) else content


def class_label(folder_name: str | None) -> str | None:
    """The class a folder name stands for: the name in Unicode NFC (None stays None).

    macOS writes "Pêche" decomposed (NFD), Linux and Windows tools mostly composed (NFC):
    a Training folder copied from one and a Test folder made on the other must be one
    class, not a class "not in Training". The Python stages that carry the label apply
    it (the descriptors UDF, bovw predict's), so Spark needs no Unicode function.
    """
    return None if folder_name is None else unicodedata.normalize("NFC", folder_name)


def with_labels(files: DataFrame) -> DataFrame:
    """Add `label` (the parent folder's name) and `split_folder` (Training/Test or null).

    The split comes from the grandparent folder, so `Training/Apple Red 1/x.jpg` gives
    label "Apple Red 1", split "Training".
    """
    return files.withColumn(LABEL, F.element_at(F.split(F.col(PATH), "/"), -2)).withColumn(
        SPLIT_FOLDER, split_folder(F.col(PATH))
    )


def image_name(path: Column) -> Column:
    """"<class folder>/<file name>" of `path`: the image's name wherever the dataset lies
    (bovw.image.orb.image_key, without its Unicode normalisation)."""
    # The shortest end of the path holding at most one "/" ("c.jpg" stays "c.jpg"):
    # element_at(-2) would raise on a path without folders under ANSI mode. Not a regular
    # expression: an unanchored one is tried from every position of the path, and as a
    # sort key it is evaluated again in every comparison (the classifier stage's sort of
    # 155k rows took 9 s more).
    return F.substring_index(path, "/", -2)


def split_folder(path: Column, level: int = 3) -> Column:
    """Training, Test or null: the split named by the grandparent folder of `path` (or the
    folder `level` steps up the path), in any letter case."""
    grandparent = F.element_at(F.split(path, "/"), -level)
    split = F.lit(None).cast("string")
    for folder, name in SPLIT_NAMES.items():
        # An ASCII-case-insensitive match rather than lower() == folder: the same answer for
        # these ASCII names (no other character lower-cases to one of their letters), without
        # Spark's ICU case mapping, whose tables take the first task half a second to build.
        matches = grandparent.rlike(f"(?i)^{folder}\\z")
        split = F.when(matches, F.lit(name)).otherwise(split)
    return split


def assign_splits(images: DataFrame, test_fraction: float, seed: int, has_split_folders: bool
                  ) -> DataFrame:
    """Add the `split` column.

    With split folders the folder decides, and images outside them get split null (the
    caller rejects them). Without, a seeded stratified split: within each label, images
    are ranked by a hash of (seed, label, file name) and the first round(n * test_fraction)
    go to Test. Hash-ranking makes the split independent of partitioning and master URL;
    leaving the folders above the label out of the hash gives a copy of the same images
    anywhere else (another disk, S3) the same split. Label and file name count in Unicode
    NFC (class_label), like the labels of the later stages: a copy whose names another
    system decomposed (macOS) gets the same split, and the two spellings of one class are
    one stratum.
    """
    if has_split_folders:
        return images.withColumn(SPLIT, F.col(SPLIT_FOLDER))
    # Spark SQL has no Unicode normalisation; this Python pass is paid only by datasets
    # without split folders.
    nfc = F.udf(class_label, "string", useArrow=False)
    label = nfc(F.col(LABEL))
    by_label = Window.partitionBy("_label")
    file_name = nfc(F.element_at(F.split(F.col(PATH), "/"), -1))
    ranked = images.withColumn("_label", label).withColumn(
        "_h", F.xxhash64(F.lit(seed), F.col("_label"), file_name)).withColumn(
        "_rank", F.row_number().over(by_label.orderBy("_h", PATH))
    ).withColumn("_n", F.count(F.lit(1)).over(by_label))
    is_test = F.col("_rank") <= F.round(F.col("_n") * F.lit(test_fraction))
    return ranked.withColumn(
        SPLIT, F.when(is_test, F.lit(TEST)).otherwise(F.lit(TRAIN))
    ).drop("_label", "_h", "_rank", "_n")

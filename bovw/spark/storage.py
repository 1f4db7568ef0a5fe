"""Files and folders on any Hadoop filesystem (local, HDFS, s3a) through Spark's JVM.

Outputs never assume a local filesystem: the same calls write metrics.json to a local
folder in tests and to s3a:// on EC2. Writing files that appear whole is
bovw.spark.whole_files's (write_bytes, replace_file and create_new are also named here).
"""

from __future__ import annotations

import os
import re
from typing import TypeVar

from pyspark.sql import DataFrame, SparkSession

from bovw.spark.filesystems import OBJECT_STORES, path_and_fs, scheme
from bovw.spark.jvm import driver_jvm
from bovw.spark.storage_errors import local_failure, translated
from bovw.spark.whole_files import Creation, create_new, replace_file, replace_output, write_bytes

__all__ = ["Creation", "absolute", "base_name", "create_new", "delete", "exists",
           "has_atomic_rename", "is_file", "join", "list_files", "list_names", "literal",
           "load_model", "modification_seconds", "read_bytes", "read_parquet", "read_text",
           "rename", "replace_file", "resolve", "sibling", "write_bytes", "write_parquet",
           "write_text"]

_Model = TypeVar("_Model")


# The characters of a Hadoop glob pattern (org.apache.hadoop.fs.GlobPattern).
_GLOB_CHARACTERS = re.compile(r"([\\\[\]{}*?^])")


def literal(path: str) -> str:
    """`path` as Spark's readers (DataFrameReader, an ML model's load) must be given it to
    read that path and nothing else.

    They expand any path holding a glob character ([ ] { } * ? ^ \\) as a pattern, so a
    folder such as "fruits [2024]" was "not found"; each one is escaped with a backslash.
    Writers and the FileSystem calls of this module take paths as they are.
    """
    return _GLOB_CHARACTERS.sub(r"\\\1", path)


def read_parquet(spark: SparkSession, path: str) -> DataFrame:
    """The Parquet dataset at `path` (taken literally, see `literal`)."""
    return spark.read.parquet(literal(path))


def load_model(model_class: type[_Model], path: str) -> _Model:
    """The Spark ML model of `model_class` saved at `path` (taken literally, see `literal`)."""
    return model_class.load(literal(path))


def absolute(path: str) -> str:
    """A plain local path made absolute (and normalised), anything else as it is.

    A relative path names another folder from another working directory: whatever is
    recorded to be compared later (a run's input in run.json) or compared with another
    spelling of a path (an input inside an output) must not depend on it.
    """
    if "://" in path or path.startswith("file:"):
        return path
    return os.path.normpath(os.path.abspath(path))


def resolve(spark: SparkSession, path: str, keep_dots: bool = True) -> str:
    """`path` said where Spark reads or writes it: a relative plain path made absolute on
    the filesystem Hadoop resolves it on (the local disk: /work/runs/x; HDFS, a cluster's
    default: hdfs://namenode:8020/user/me/runs/x); anything else as it is, and with
    `keep_dots` "." and ".." too (an output they name is refused as having no folder of
    its own; a folder that is only read, e.g. by bovw report, is theirs)."""
    if ("://" in path or path.startswith("file:") or os.path.isabs(path)
            or keep_dots and os.path.basename(os.path.normpath(path)) in (".", "..")):
        return path
    hadoop_path, fs = path_and_fs(spark, path)
    if scheme(fs) == "file":
        return absolute(path)
    return str(fs.makeQualified(hadoop_path).toString())


def join(base: str, *parts: str) -> str:
    """Join path parts with '/', for local paths and URLs alike."""
    return "/".join([base.rstrip("/"), *[part.strip("/") for part in parts]])


@translated("check")
def exists(spark: SparkSession, path: str) -> bool:
    """True when a file or folder exists at `path`."""
    hadoop_path, fs = path_and_fs(spark, path)
    return bool(fs.exists(hadoop_path))


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write `text` (UTF-8) to `path`, replacing it; the file appears whole."""
    write_bytes(spark, path, text.encode("utf-8"))


@translated("read")
def read_bytes(spark: SparkSession, path: str) -> bytes:
    """The bytes of the file at `path` (meant for small files: read whole into memory)."""
    if path.startswith("file:/") and not path.startswith("file://"):
        # A local file as Spark names it (the Hadoop path "file:/a/b c.jpg", nothing
        # escaped) is read here: through Hadoop each read is several py4j round trips and
        # a JVM copy, 12 ms a thumbnail for a report.
        try:
            with open(path.removeprefix("file:"), "rb") as local:
                return local.read()
        except OSError as error:  # the same one-line StorageError as through Hadoop
            raise local_failure("read", path, error) from error
    hadoop_path, fs = path_and_fs(spark, path)
    jvm = driver_jvm(spark)
    stream = fs.open(hadoop_path)
    try:
        buffer = jvm.java.io.ByteArrayOutputStream()
        jvm.org.apache.hadoop.io.IOUtils.copyBytes(stream, buffer, 65536, False)
        return bytes(buffer.toByteArray())
    finally:
        stream.close()


@translated("write", every_failure=False)
def write_parquet(spark: SparkSession, frame: DataFrame, path: str,
                  compression: str | None = None) -> None:
    """Write `frame` as a Parquet folder at `path`, replacing it; readers never see it half
    written. `compression` is Spark's Parquet codec name for this output ("uncompressed",
    "snappy", ...); None keeps the session's (spark.sql.parquet.compression.codec).

    Where a folder rename is atomic (local, HDFS) the job writes to a hidden sibling (Spark
    readers skip names starting with "."), renamed to `path` once the job has committed: a
    run killed mid-write leaves no `path`. On object stores (s3a) a rename is a copy, so
    the job writes in place; the S3A committer publishes the files at job commit and
    `_SUCCESS` last. The pipeline trusts an output only once its stage marker exists.
    """
    writer = frame.write.mode("overwrite")
    if compression is not None:
        writer = writer.option("compression", compression)
    hadoop_path, fs = path_and_fs(spark, path)
    replace_output(spark, path, hadoop_path, fs,
                   lambda target: writer.parquet(target.toString()), folder=True)


def read_text(spark: SparkSession, path: str) -> str:
    """The UTF-8 text of the file at `path`."""
    return read_bytes(spark, path).decode("utf-8")


@translated("delete")
def delete(spark: SparkSession, path: str) -> None:
    """Remove the file or folder at `path` (recursively); absent paths are fine."""
    hadoop_path, fs = path_and_fs(spark, path)
    if fs.exists(hadoop_path):
        fs.delete(hadoop_path, True)


@translated("list")
def list_names(spark: SparkSession, path: str) -> list[str]:
    """Names of the entries directly inside the folder `path` (empty if it is absent)."""
    hadoop_path, fs = path_and_fs(spark, path)
    if not fs.exists(hadoop_path):
        return []
    return sorted(status.getPath().getName() for status in fs.listStatus(hadoop_path))


@translated("check")
def is_file(spark: SparkSession, path: str) -> bool:
    """True when `path` is an existing regular file (not a folder)."""
    hadoop_path, fs = path_and_fs(spark, path)
    return bool(fs.exists(hadoop_path)) and bool(fs.getFileStatus(hadoop_path).isFile())


@translated("list")
def list_files(spark: SparkSession, path: str) -> list[str]:
    """Paths, relative to the folder `path`, of every file below it (sorted; [] if absent)."""
    hadoop_path, fs = path_and_fs(spark, path)
    if not fs.exists(hadoop_path):
        return []
    base = fs.makeQualified(hadoop_path).toUri().getPath().rstrip("/") + "/"
    files = fs.listFiles(hadoop_path, True)
    names = []
    while files.hasNext():
        names.append(str(files.next().getPath().toUri().getPath()).removeprefix(base))
    return sorted(names)


@translated("list")
def glob_below(spark: SparkSession, path: str, pattern: str) -> list[tuple[str, bool]]:
    """(path relative to the folder `path`, is a folder) of each match of the Hadoop glob
    `pattern` below it (e.g. "*/_*"); `path` itself is taken literally."""
    hadoop_path, fs = path_and_fs(spark, path)
    prefix = str(fs.makeQualified(hadoop_path).toString()).rstrip("/") + "/"
    found = fs.globStatus(driver_jvm(spark).org.apache.hadoop.fs.Path(
        f"{literal(path.rstrip('/'))}/{pattern}")) or []
    return [(str(status.getPath().toString()).removeprefix(prefix), bool(status.isDirectory()))
            for status in found]


def sibling(spark: SparkSession, path: str, name: str) -> str:
    """The path of `name` in the folder that holds `path` (same scheme and authority).

    Raises ValueError when `path` is the root of its filesystem (or of its bucket).
    """
    hadoop_path = driver_jvm(spark).org.apache.hadoop.fs.Path(path)
    parent = hadoop_path.getParent()
    if parent is None or not hadoop_path.getName():
        raise ValueError(f"{path} is the root of its filesystem")
    return driver_jvm(spark).org.apache.hadoop.fs.Path(parent, name).toString()


def base_name(spark: SparkSession, path: str) -> str:
    """The last component of `path` ("" for a filesystem or bucket root)."""
    return str(driver_jvm(spark).org.apache.hadoop.fs.Path(path).getName())


@translated("check")
def modification_seconds(spark: SparkSession, path: str) -> float | None:
    """The modification time of `path` in seconds since the epoch, None if it is absent."""
    hadoop_path, fs = path_and_fs(spark, path)
    if not fs.exists(hadoop_path):
        return None
    return fs.getFileStatus(hadoop_path).getModificationTime() / 1000.0


@translated("move", path_argument="source")
def rename(spark: SparkSession, source: str, target: str) -> None:
    """Move `source` to `target`, which must not exist. Atomic on local disks and HDFS;
    on object stores (a copy, then a delete) use it for single files only. Raises OSError.
    """
    source_path, fs = path_and_fs(spark, source)
    target_path, _fs = path_and_fs(spark, target)
    if fs.exists(target_path):
        raise OSError(f"cannot move {source} to {target}: the target exists")
    parent = target_path.getParent()
    if parent is not None and not fs.exists(parent):
        fs.mkdirs(parent)
    if not fs.rename(source_path, target_path):
        raise OSError(f"could not move {source} to {target}")


@translated("check")
def has_atomic_rename(spark: SparkSession, path: str) -> bool:
    """True where a folder rename is one atomic step (local disks, HDFS); False on object
    stores, where it copies every file."""
    _hadoop_path, fs = path_and_fs(spark, path)
    return scheme(fs) not in OBJECT_STORES

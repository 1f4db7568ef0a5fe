"""Which Hadoop filesystem a path lies on, as bovw.spark.storage and bovw.spark.whole_files
tell them apart: a local disk, an object store (no atomic rename; a single PUT is
all-or-nothing instead) or any other (HDFS)."""

from __future__ import annotations

from pyspark.sql import SparkSession

from bovw.spark.jvm import driver_jvm, hadoop_configuration

__all__ = ["OBJECT_STORES", "path_and_fs", "scheme"]

# Filesystems without an atomic rename: a single PUT is all-or-nothing instead.
OBJECT_STORES = ("s3a", "s3", "gs", "abfs", "abfss", "wasb")


def path_and_fs(spark: SparkSession, path: str):
    """(org.apache.hadoop.fs.Path of `path`, the FileSystem it lies on), through the
    driver's JVM and the session's Hadoop configuration."""
    hadoop_path = driver_jvm(spark).org.apache.hadoop.fs.Path(path)
    return hadoop_path, hadoop_path.getFileSystem(hadoop_configuration(spark))


def scheme(fs) -> str:
    """The scheme of the Hadoop FileSystem `fs` ("file" for a local disk, "hdfs", "s3a")."""
    return fs.getUri().getScheme() or "file"

"""Small files on any Hadoop filesystem (local, HDFS, s3a) through Spark's JVM.

Outputs never assume a local filesystem: the same calls write metrics.json to a local
folder in tests and to s3a:// on EC2.
"""

from __future__ import annotations

from pyspark.sql import SparkSession


def _path_and_fs(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return hadoop_path, fs


def join(base: str, *parts: str) -> str:
    """Join path parts with '/', for local paths and URLs alike."""
    return "/".join([base.rstrip("/"), *[part.strip("/") for part in parts]])


def exists(spark: SparkSession, path: str) -> bool:
    """True when a file or folder exists at `path`."""
    hadoop_path, fs = _path_and_fs(spark, path)
    return bool(fs.exists(hadoop_path))


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write `text` (UTF-8) to `path`, replacing it; the file appears whole."""
    write_bytes(spark, path, text.encode("utf-8"))


def write_bytes(spark: SparkSession, path: str, content: bytes) -> None:
    """Write `content` to `path`, replacing it; the file appears whole.

    On filesystems with atomic rename the bytes go to a hidden temporary file first; on
    object stores a single PUT on close is already all-or-nothing.
    """
    hadoop_path, fs = _path_and_fs(spark, path)
    jvm = spark.sparkContext._jvm
    data = bytearray(content)
    scheme = fs.getUri().getScheme() or "file"
    if scheme in ("s3a", "s3", "gs", "abfs", "abfss", "wasb"):
        _write_bytes(fs, hadoop_path, data)
        return
    temporary = jvm.org.apache.hadoop.fs.Path(hadoop_path.getParent(),
                                              "._tmp_" + hadoop_path.getName())
    _write_bytes(fs, temporary, data)
    if fs.exists(hadoop_path):
        fs.delete(hadoop_path, False)
    if not fs.rename(temporary, hadoop_path):
        raise OSError(f"could not move {temporary.toString()} to {path}")


def _write_bytes(fs, hadoop_path, data: bytearray) -> None:
    fs.setWriteChecksum(False)
    stream = fs.create(hadoop_path, True)
    try:
        stream.write(data)
    finally:
        stream.close()


def read_text(spark: SparkSession, path: str) -> str:
    """The UTF-8 text of the file at `path`."""
    return read_bytes(spark, path).decode("utf-8")


def read_bytes(spark: SparkSession, path: str) -> bytes:
    """The content of the (small) file at `path`."""
    hadoop_path, fs = _path_and_fs(spark, path)
    jvm = spark.sparkContext._jvm
    stream = fs.open(hadoop_path)
    try:
        buffer = jvm.java.io.ByteArrayOutputStream()
        jvm.org.apache.hadoop.io.IOUtils.copyBytes(stream, buffer, 65536, False)
        return bytes(buffer.toByteArray())
    finally:
        stream.close()


def delete(spark: SparkSession, path: str) -> None:
    """Remove the file or folder at `path` (recursively); absent paths are fine."""
    hadoop_path, fs = _path_and_fs(spark, path)
    if fs.exists(hadoop_path):
        fs.delete(hadoop_path, True)


def list_names(spark: SparkSession, path: str) -> list[str]:
    """Names of the entries directly inside the folder `path` (empty if it is absent)."""
    hadoop_path, fs = _path_and_fs(spark, path)
    if not fs.exists(hadoop_path):
        return []
    return sorted(status.getPath().getName() for status in fs.listStatus(hadoop_path))

"""Files and folders that appear whole on any Hadoop filesystem: a reader, or a command
killed at any moment, finds the old content or the new, never a part.

    write_bytes     replace a small file (run.json, markers, metrics.json, reports)
    replace_file    replace it without a moment with no file (a lease's heartbeat)
    create_new      create it only if nothing is there, saying whether that was exclusive
    replace_output  the step bovw.spark.storage.write_parquet writes its folders through

Each filesystem has its own way: a local disk renames (or hard-links) a whole sibling in
POSIX calls; an object store's single PUT is all-or-nothing; HDFS renames a sibling over
the target with Hadoop's FileContext (one step there, HDFS-654).
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any

from pyspark.sql import SparkSession

from bovw.spark import filesystems
from bovw.spark.jvm import driver_jvm
from bovw.spark.storage_errors import local_failure, translated

__all__ = ["Creation", "create_new", "replace_file", "replace_output", "write_bytes"]

# What a local filesystem without hard links (FAT, some network and FUSE mounts) answers
# link(2) with; any other error is a failure to write.
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


class Creation(Enum):
    """What create_new did."""

    EXISTED = "a file was there already: nothing written"
    EXCLUSIVE = "written, and no other create of the same path can have succeeded"
    SHARED = "written, but a create of the same path at the same instant may have replaced it"


@translated("write")
def write_bytes(spark: SparkSession, path: str, content: bytes) -> None:
    """Write `content` to `path`, replacing it; the file appears whole, and missing folders
    above it are created.

    On a local disk the bytes go to a hidden sibling of a unique name, renamed over `path`
    in one step (POSIX rename): a reader sees the old content or the new, and a command
    killed at any point leaves one of them at `path`. On object stores a single PUT on
    close is already all-or-nothing. Elsewhere (HDFS) the hidden sibling `._tmp_<name>`
    replaces `path` as replace_output says. Raises StorageError when `path` is a folder.
    """
    hadoop_path, fs = filesystems.path_and_fs(spark, path)
    if filesystems.scheme(fs) == "file":
        _replace_local(fs, hadoop_path, path, content, create_folders=True)
        return
    data = bytearray(content)
    replace_output(spark, path, hadoop_path, fs, lambda target: _write_bytes(fs, target, data),
                   folder=False)


def _replace_local(fs, hadoop_path, path: str, content: bytes, create_folders: bool) -> None:
    """Put `content` at the local file `hadoop_path` (named `path` in errors) by renaming a
    whole sibling over it; OSErrors become one-line StorageErrors and leave no sibling."""
    target = fs.makeQualified(hadoop_path).toUri().getPath()
    with _local_sibling(target, path, content, create_folders) as sibling:
        os.replace(sibling, target)


@contextmanager
def _local_sibling(target: str, path: str, content: bytes, create_folders: bool
                   ) -> Iterator[str]:
    """A hidden sibling of the local file `target` holding `content` (its folders made
    first when `create_folders`), removed on the way out whatever happened, unless it was
    renamed away; OSErrors become the one-line StorageErrors Hadoop's would (`path`)."""
    folder, name = os.path.split(target)
    sibling = os.path.join(folder, f"._tmp_{name}.{uuid.uuid4().hex}")
    if create_folders:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as error:
            raise local_failure("write", path, error, making_folders=True) from error
    try:
        with open(sibling, "wb") as file:
            file.write(content)
        yield sibling
    except OSError as error:
        raise local_failure("write", path, error) from error
    finally:
        if os.path.lexists(sibling):
            os.remove(sibling)


def replace_output(spark: SparkSession, path: str, hadoop_path, fs,
                   write: Callable[[Any], None], folder: bool) -> None:
    """Call write(target) so that `path` (`hadoop_path` on its filesystem `fs`) is replaced
    only by a whole new file or folder: on object stores the target is `path` itself,
    elsewhere the hidden sibling `._tmp_<name>`, renamed to `path` once written: a file
    over the old one (_rename_over); a folder (or a file on a filesystem without a
    FileContext), whose rename refuses an existing target, once the old one is renamed
    aside to `._tmp_<name>.replaced`, which is deleted only after the new one is in place,
    and renamed back when the new one cannot be. An aside left by a replacement stopped
    between its two renames is taken back first when `path` is missing (or deleted, as
    the older copy, when it is not)."""
    if filesystems.scheme(fs) in filesystems.OBJECT_STORES:
        write(hadoop_path)
        return
    temporary = driver_jvm(spark).org.apache.hadoop.fs.Path(
        hadoop_path.getParent(), "._tmp_" + hadoop_path.getName())
    write(temporary)
    context = None if folder else _file_context(spark, fs)
    if context is not None:
        _rename_over(spark, context, temporary, hadoop_path)
        return
    aside = driver_jvm(spark).org.apache.hadoop.fs.Path(
        hadoop_path.getParent(), f"._tmp_{hadoop_path.getName()}.replaced")
    if fs.exists(aside):
        if fs.exists(hadoop_path):
            fs.delete(aside, folder)
        elif not fs.rename(aside, hadoop_path):
            raise OSError(f"could not move {aside.toString()} back to {path}")
    old = aside if fs.exists(hadoop_path) else None
    if old is not None and not fs.rename(hadoop_path, old):
        raise OSError(f"could not move {path} aside to {old.toString()}")
    if not fs.rename(temporary, hadoop_path):
        if old is not None:
            fs.rename(old, hadoop_path)
        raise OSError(f"could not move {temporary.toString()} to {path}")
    if old is not None:
        fs.delete(old, folder)


def _file_context(spark: SparkSession, fs):
    """Hadoop's FileContext for the filesystem `fs`, None when it has none."""
    context_class = driver_jvm(spark).org.apache.hadoop.fs.FileContext
    try:
        return context_class.getFileContext(fs.getUri(), fs.getConf())
    except Exception as error:  # py4j wraps UnsupportedFileSystemException
        if "UnsupportedFileSystemException" in str(error):
            return None
        raise


def _rename_over(spark: SparkSession, context, source, target) -> None:
    """Rename file `source` over `target` with `context` (OVERWRITE): one step on HDFS."""
    rename = driver_jvm(spark).org.apache.hadoop.fs.Options.Rename
    options = spark.sparkContext._gateway.new_array(rename, 1)
    options[0] = rename.OVERWRITE
    context.rename(source, target, options)


def _write_bytes(fs, hadoop_path, data: bytearray) -> None:
    fs.setWriteChecksum(False)
    stream = fs.create(hadoop_path, True)
    try:
        stream.write(data)
    finally:
        stream.close()


def _aside(spark: SparkSession, hadoop_path):
    """A hidden sibling of `hadoop_path` of a unique name."""
    return driver_jvm(spark).org.apache.hadoop.fs.Path(
        hadoop_path.getParent(), f"._tmp_{hadoop_path.getName()}.{uuid.uuid4().hex}")


@translated("write")
def create_new(spark: SparkSession, path: str, content: bytes) -> Creation:
    """Write `content` to `path` only if nothing is there (missing folders above it are
    created); the file appears whole. Returns what happened (Creation).

    EXCLUSIVE on a local disk, where a whole sibling is hard-linked to `path` (link(2)
    fails when anything is there), and on HDFS, whose rename refuses an existing target.
    SHARED where the existence check and the publication are two steps, so that a rival
    creating the same path at the same instant may replace the file: on object stores (a
    single PUT on close), a local filesystem without hard links (the sibling renamed in)
    and other filesystems; a caller that needs a single winner then reads it back.
    """
    hadoop_path, fs = filesystems.path_and_fs(spark, path)
    kind = filesystems.scheme(fs)
    if kind == "file":
        return _create_local(fs.makeQualified(hadoop_path).toUri().getPath(), path, content)
    fs.setWriteChecksum(False)
    if kind in filesystems.OBJECT_STORES:
        try:
            stream = fs.create(hadoop_path, False)
        except Exception as error:  # py4j wraps FileAlreadyExistsException
            if "FileAlreadyExistsException" in str(error):
                return Creation.EXISTED
            raise
        try:
            stream.write(bytearray(content))
        finally:
            stream.close()
        return Creation.SHARED
    aside = _aside(spark, hadoop_path)
    _write_bytes(fs, aside, bytearray(content))
    if fs.exists(hadoop_path) or not fs.rename(aside, hadoop_path):
        fs.delete(aside, False)
        return Creation.EXISTED
    return Creation.EXCLUSIVE if kind == "hdfs" else Creation.SHARED


def _create_local(target: str, path: str, content: bytes) -> Creation:
    """create_new on a local disk: a whole sibling hard-linked to `target` (exclusive), or
    renamed to it where the filesystem has no hard links."""
    with _local_sibling(target, path, content, create_folders=True) as sibling:
        try:
            os.link(sibling, target)
        except FileExistsError:
            return Creation.EXISTED
        except OSError as error:
            if error.errno not in _NO_HARD_LINKS:
                raise
            if os.path.lexists(target):
                return Creation.EXISTED
            os.replace(sibling, target)
            return Creation.SHARED
    return Creation.EXCLUSIVE


@translated("write")
def replace_file(spark: SparkSession, path: str, content: bytes) -> None:
    """Replace the file at `path` with `content` without removing it first: there is no
    moment without a file, and a reader sees the old content or the new, whole.

    On a local disk the bytes go to a hidden sibling of a unique name, renamed over `path`
    (POSIX rename replaces the target in one step); on an object store the single PUT
    replaces the object whole; on HDFS it is renamed over `path` (_rename_over). Only a
    filesystem without a FileContext has the file rewritten in place (a reader may
    briefly see it empty).
    """
    hadoop_path, fs = filesystems.path_and_fs(spark, path)
    kind = filesystems.scheme(fs)
    if kind == "file":
        _replace_local(fs, hadoop_path, path, content, create_folders=False)
        return
    context = None if kind in filesystems.OBJECT_STORES else _file_context(spark, fs)
    if context is None:
        _write_bytes(fs, hadoop_path, bytearray(content))
        return
    aside = _aside(spark, hadoop_path)
    _write_bytes(fs, aside, bytearray(content))
    try:
        _rename_over(spark, context, aside, hadoop_path)
    except BaseException:
        fs.delete(aside, False)
        raise

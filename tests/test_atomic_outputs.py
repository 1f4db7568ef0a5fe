"""Stage outputs appear whole or not at all; a stage without its marker is redone."""

from __future__ import annotations

import errno
import json
import os
import re
import threading

import pytest
from py4j.protocol import Py4JJavaError
from pyspark.sql import functions as F
from pyspark.sql.types import LongType

from bovw.errors import StorageError
from bovw.pipeline.layout import RunLayout, finished_stage, mark_finished
from bovw.spark import filesystems, storage, whole_files
from bovw.spark.storage_errors import local_failure
from bovw.spark.whole_files import Creation
from tests.parquet_files import parquet_codecs


def test_write_parquet_publishes_the_whole_output(spark, tmp_path):
    target = tmp_path / "histograms"
    storage.write_parquet(spark, spark.range(10).repartition(3), str(target))
    assert sorted(row["id"] for row in storage.read_parquet(spark, str(target)).collect()) == list(
        range(10))
    assert (target / "_SUCCESS").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["histograms"]


def test_outputs_under_glob_characters_are_read_as_named(spark, tmp_path):
    # Spark reads "run [1]" as a pattern, which names the sibling "run 1" instead: a run
    # under such a folder read another run's tables and models, or none ("not found").
    from pyspark.ml.feature import StringIndexerModel

    for folder, ids, labels in (("run [1]", range(3), ["mine"]),
                                ("run 1", range(100, 105), ["sibling"])):
        storage.write_parquet(spark, spark.range(ids.start, ids.stop), str(tmp_path / folder / "t"))
        StringIndexerModel.from_labels(labels, inputCol="a").save(str(tmp_path / folder / "m"))
    named = str(tmp_path / "run [1]")
    assert storage.literal(named).endswith("run \\[1\\]")
    assert sorted(r["id"] for r in storage.read_parquet(spark, f"{named}/t").collect()) == [0, 1, 2]
    assert storage.load_model(StringIndexerModel, f"{named}/m").labels == ["mine"]
    assert storage.literal("s3a://b/{a,b}*?^\\x") == "s3a://b/\\{a,b\\}\\*\\?\\^\\\\x"


def test_write_parquet_takes_a_codec_for_one_output_only(spark, tmp_path):
    frame = spark.range(100).selectExpr("id", "repeat('abc', 50) AS text")
    storage.write_parquet(spark, frame, str(tmp_path / "plain"), compression="uncompressed")
    storage.write_parquet(spark, frame, str(tmp_path / "default"))
    assert parquet_codecs(tmp_path / "plain") == {"UNCOMPRESSED"}
    # The session's codec (spark.sql.parquet.compression.codec) for the others.
    assert parquet_codecs(tmp_path / "default") == {"SNAPPY"}
    assert sorted(row["id"] for row in storage.read_parquet(spark, str(tmp_path / "plain"))
                  .collect()) == list(range(100))


def test_a_failed_write_leaves_the_previous_output_untouched(spark, tmp_path):
    target = tmp_path / "features"
    storage.write_parquet(spark, spark.range(5), str(target))

    @F.udf(LongType())
    def fail_on_seven(value):
        if value == 7:
            raise ValueError("stop half way")
        return value

    # Several tasks: some finish and write their part files before one fails.
    failing = spark.range(0, 12, numPartitions=4).select(fail_on_seven("id").alias("id"))
    with pytest.raises(Exception, match="stop half way"):
        storage.write_parquet(spark, failing, str(target))
    assert sorted(row["id"] for row in storage.read_parquet(spark, str(target)).collect()) == list(
        range(5))


def test_a_stage_output_without_its_marker_is_not_finished(spark, tmp_path):
    layout = RunLayout(str(tmp_path / "run"))
    storage.write_parquet(spark, spark.range(3), layout.histograms)
    assert finished_stage(spark, layout, "histograms") is None
    mark_finished(spark, layout, "histograms", {"timings": {"histograms": 1.5}})
    assert finished_stage(spark, layout, "histograms") == {"timings": {"histograms": 1.5}}


def test_read_bytes_reads_a_local_file_as_spark_names_it(spark, tmp_path):
    # Spark's path column holds Hadoop paths: nothing escaped, "%20" is three characters.
    image = tmp_path / "Apple Red%20 1" / "a b.jpg"
    image.parent.mkdir()
    image.write_bytes(b"\xff\xd8 jpeg bytes")
    listed = spark.read.format("binaryFile").load(storage.literal(str(image.parent))
                                                  ).first()["path"]
    assert listed == f"file:{image}"
    assert storage.read_bytes(spark, listed) == b"\xff\xd8 jpeg bytes"
    # Through Hadoop, as every other scheme is: the same bytes.
    assert storage.read_bytes(spark, str(image)) == b"\xff\xd8 jpeg bytes"


def test_read_bytes_of_a_missing_local_file_is_a_one_line_storage_error(spark, tmp_path):
    for path in (f"file:{tmp_path}/gone.json", str(tmp_path / "gone.json")):
        # Read in Python (file:/...) or through Hadoop: the same error.
        expected = r"^cannot read .*gone\.json: not found \(.*\); fix: check the path$"
        with pytest.raises(StorageError, match=expected):
            storage.read_bytes(spark, path)


def test_write_text_renames_a_whole_file_over_the_old_one(spark, tmp_path):
    # write_text once deleted the old file, then renamed the new one in: a reader could
    # find no file at all, and a command killed between the two steps lost it (a swap's
    # journal, a run's metrics.json).
    target = tmp_path / "metrics.json"
    contents = [json.dumps({"version": n, "pad": "x" * (n * 37 % 4000)}) for n in range(150)]
    target.write_text(contents[0])
    seen, failures, writing = set(), [], threading.Event()

    def read_while_written():
        while not writing.is_set():
            try:
                seen.add(contents.index(target.read_text()))
            except (OSError, ValueError) as error:  # missing, or not one whole version
                failures.append(repr(error))

    reader = threading.Thread(target=read_while_written)
    reader.start()
    try:
        inodes = set()
        for text in contents[1:]:
            storage.write_text(spark, str(target), text)
            inodes.add(target.stat().st_ino)
    finally:
        writing.set()
        reader.join()
    assert failures == []
    assert len(seen) > 10  # read across many rewrites
    assert len(inodes) > 1  # new files renamed over it, not rewritten
    assert target.read_text() == contents[-1]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["metrics.json"]


def test_write_bytes_creates_its_folders_and_takes_each_spelling_of_a_local_path(
        spark, tmp_path):
    folder = tmp_path / "run 50%" / "_stages"
    for path in (str(folder / "a.json"), f"file:{folder}/b.json", f"file://{folder}/c.json"):
        storage.write_bytes(spark, path, path.encode())
    assert sorted(path.name for path in folder.iterdir()) == ["a.json", "b.json", "c.json"]
    assert (folder / "b.json").read_bytes() == f"file:{folder}/b.json".encode()
    assert storage.read_text(spark, str(folder / "c.json")) == f"file://{folder}/c.json"


def test_write_bytes_never_replaces_a_folder_nor_writes_through_a_file(spark, tmp_path):
    (tmp_path / "report.html").mkdir()  # empty: the delete-then-rename once replaced it
    with pytest.raises(StorageError, match=re.escape(
            f"cannot write {tmp_path}/report.html: Is a directory; fix: check the path")):
        storage.write_text(spark, str(tmp_path / "report.html"), "<html>")
    assert (tmp_path / "report.html").is_dir()
    (tmp_path / "notes.txt").write_text("mine")
    for below in ("notes.txt/metrics.json", "notes.txt/_stages/x.json"):
        with pytest.raises(StorageError, match=re.escape(
                f"cannot write {tmp_path}/{below}: a part of the path is a file, not a folder (")
                           + r".*; fix: choose a path inside a folder$"):
            storage.write_text(spark, str(tmp_path / below), "{}")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt", "report.html"]


def test_a_folder_that_cannot_be_created_is_one_line(spark):
    # Nobody, root included, may create a folder in /proc or /sys.
    for root in ("/proc", "/sys"):
        with pytest.raises(StorageError, match=re.escape(
                f"cannot write {root}/bovw-test/metrics.json: the folder could not be created (")
                           + r".*\): no permission, a read-only filesystem or a full disk; fix: "
                           r"choose a location you may write to"):
            storage.write_text(spark, f"{root}/bovw-test/metrics.json", "{}")


@pytest.mark.parametrize(("error", "cause", "fix"), [
    (PermissionError(errno.EACCES, "Permission denied", "/runs/a/._tmp_x"),
     "permission denied (Permission denied: /runs/a/._tmp_x)", "choose a location you may write"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/._tmp_x"),
     "the filesystem is read-only (Read-only file system: /mnt/ro/._tmp_x)",
     "choose a location you may write"),
    (OSError(errno.ENOSPC, "No space left on device"),
     "the disk is full (No space left on device)", "free space, or write to another disk"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/runs/gone"),
     "not found (No such file or directory)", "check the path"),
    (OSError(errno.EIO, "Input/output error"), "Input/output error",
     "check the path and the permissions on it"),
])
def test_a_local_write_failure_gets_hadoops_cause_and_fix(error, cause, fix):
    message = str(local_failure("write", "/runs/a/x", error))
    assert message.startswith(f"cannot write /runs/a/x: {cause}; fix: {fix}")
    assert "\n" not in message


def test_on_hdfs_a_file_is_renamed_over_the_old_one_in_one_step(spark, tmp_path, monkeypatch):
    # HDFS's FileSystem.rename refuses an existing target: write_bytes once deleted the old
    # file first, and replace_file (a lease's heartbeat) rewrote it in place. Both now rename
    # a whole sibling over it with FileContext's OVERWRITE, one step on HDFS; here the local
    # disk stands in for HDFS.
    monkeypatch.setattr(filesystems, "scheme", lambda _fs: "hdfs")
    real, renames = whole_files._rename_over, []

    def recorded(spark, context, source, target):
        renames.append((source.getName(), target.getName()))
        return real(spark, context, source, target)

    monkeypatch.setattr(whole_files, "_rename_over", recorded)
    for name, replace in (("metrics.json", storage.write_bytes),
                          ("lease", storage.replace_file)):
        (tmp_path / name).write_bytes(b"old")
        replace(spark, str(tmp_path / name), b"new content")
        assert (tmp_path / name).read_bytes() == b"new content"
    assert renames[0] == ("._tmp_metrics.json", "metrics.json")
    assert re.fullmatch(r"\._tmp_lease\.[0-9a-f]{32}", renames[1][0]) and renames[1][1] == "lease"
    assert len(renames) == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["lease", "metrics.json"]


def test_a_filesystem_without_a_file_context_still_gets_whole_files(spark, tmp_path,
                                                                    monkeypatch):
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()

    class NoFileContext:
        def getUri(self):
            return jvm.java.net.URI("nosuchfs:///")

        def getConf(self):
            return conf

    assert whole_files._file_context(spark, NoFileContext()) is None
    # Then the file is deleted and the sibling renamed in (write_bytes), or rewritten in
    # place (replace_file): the only ways such a filesystem offers.
    monkeypatch.setattr(filesystems, "scheme", lambda _fs: "hdfs")
    monkeypatch.setattr(whole_files, "_file_context", lambda *_args: None)
    for name, replace in (("metrics.json", storage.write_bytes),
                          ("lease", storage.replace_file)):
        (tmp_path / name).write_bytes(b"old")
        replace(spark, str(tmp_path / name), b"new content")
        assert (tmp_path / name).read_bytes() == b"new content"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["lease", "metrics.json"]


def test_a_file_context_that_fails_otherwise_is_an_error_not_a_missing_one(spark):
    # Only "this filesystem has no FileContext" falls back to the old way; any other failure
    # (here a null configuration) must not be taken for it and silently do so.
    jvm = spark.sparkContext._jvm

    class NoConfiguration:
        def getUri(self):
            return jvm.java.net.URI("file:///")

        def getConf(self):
            return None

    with pytest.raises(Py4JJavaError) as raised:
        whole_files._file_context(spark, NoConfiguration())
    assert "UnsupportedFileSystemException" not in str(raised.value)


def test_creating_a_new_local_file_is_exclusive_and_leaves_nothing_beside(spark, tmp_path):
    path = tmp_path / "new" / "folders" / ".out.bovw-lock"
    assert storage.create_new(spark, str(path), b"first") is Creation.EXCLUSIVE
    assert path.read_bytes() == b"first"
    assert storage.create_new(spark, str(path), b"second") is Creation.EXISTED
    assert path.read_bytes() == b"first"
    assert [p.name for p in path.parent.iterdir()] == [".out.bovw-lock"]


def test_a_rival_creating_the_same_local_file_first_keeps_it_whole(spark, tmp_path,
                                                                   monkeypatch):
    # Publication is link(2), which fails when anything is there: the rival that lands
    # between this command's write and its publication keeps its file (a rename would have
    # replaced it, and both commands would have believed they had created it).
    path, link = tmp_path / ".out.bovw-lock", os.link

    def rival_first(source, target):
        path.write_bytes(b"rival")
        link(source, target)

    monkeypatch.setattr(whole_files.os, "link", rival_first)
    assert storage.create_new(spark, str(path), b"mine") is Creation.EXISTED
    assert path.read_bytes() == b"rival"
    assert [p.name for p in tmp_path.iterdir()] == [".out.bovw-lock"]


@pytest.mark.parametrize("code", [errno.EPERM, errno.EOPNOTSUPP])
def test_a_local_filesystem_without_hard_links_creates_the_file_shared(spark, tmp_path,
                                                                       monkeypatch, code):
    def no_links(_source, _target):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(whole_files.os, "link", no_links)
    path = tmp_path / ".out.bovw-lock"
    assert storage.create_new(spark, str(path), b"first") is Creation.SHARED
    assert storage.create_new(spark, str(path), b"second") is Creation.EXISTED
    assert path.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == [".out.bovw-lock"]


def test_a_local_create_that_fails_is_one_line_and_leaves_nothing(spark, tmp_path,
                                                                  monkeypatch):
    def broken(_source, _target):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(whole_files.os, "link", broken)
    path = tmp_path / ".out.bovw-lock"
    with pytest.raises(StorageError, match=r"^cannot write .*\.out\.bovw-lock: "
                                           r"Input/output error; fix: ") as raised:
        storage.create_new(spark, str(path), b"first")
    assert "\n" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def _replace_folder(spark, path, content: str, fs=None) -> None:
    """replace_output of the folder `path` with one file, `content.txt`, written by Hadoop."""
    hadoop_path, local_fs = filesystems.path_and_fs(spark, str(path))

    def write(target):
        stream = local_fs.create(spark._jvm.org.apache.hadoop.fs.Path(target, f"{content}.txt"))
        stream.close()

    whole_files.replace_output(spark, str(path), hadoop_path, fs or local_fs, write, True)


class _RenameFails:
    """A Hadoop filesystem on which renaming the file or folder named `name` fails
    (returns False), as it does when another process holds or removed it."""

    def __init__(self, fs, name):
        self.fs, self.name = fs, name

    def rename(self, source, target):
        if source.getName() == self.name:
            return False
        return self.fs.rename(source, target)

    def __getattr__(self, name):
        return getattr(self.fs, name)


def _names(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_a_folder_is_replaced_with_the_old_one_renamed_aside_then_deleted(spark, tmp_path):
    target = tmp_path / "histograms"
    _replace_folder(spark, target, "old")
    _replace_folder(spark, target, "new")
    assert _names(target) == ["new.txt"] and _names(tmp_path) == ["histograms"]


def test_a_replacement_that_cannot_be_moved_in_puts_the_old_folder_back(spark, tmp_path):
    # The old folder had been deleted before the rename that then failed: nothing was
    # left at the path, the old output lost.
    target = tmp_path / "histograms"
    _replace_folder(spark, target, "old")
    _, fs = filesystems.path_and_fs(spark, str(target))
    with pytest.raises(OSError, match="could not move .*._tmp_histograms to "):
        _replace_folder(spark, target, "new", fs=_RenameFails(fs, "._tmp_histograms"))
    assert _names(target) == ["old.txt"]
    assert "._tmp_histograms.replaced" not in _names(tmp_path)


def test_an_aside_left_by_a_stopped_replacement_is_taken_back_or_dropped(spark, tmp_path):
    target = tmp_path / "histograms"
    aside = tmp_path / "._tmp_histograms.replaced"
    # Stopped between its two renames: the old output lies aside, nothing at the path.
    _replace_folder(spark, target, "old")
    target.rename(aside)
    _replace_folder(spark, target, "new")
    assert _names(target) == ["new.txt"] and _names(tmp_path) == ["histograms"]
    # Stopped after the new one was in: the aside is the older copy.
    _replace_folder(spark, aside, "older")
    _replace_folder(spark, target, "newer")
    assert _names(target) == ["newer.txt"] and _names(tmp_path) == ["histograms"]

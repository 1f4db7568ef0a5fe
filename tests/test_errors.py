"""Common failures are one line on stderr naming the cause and the fix; --verbose adds the trace.

Each case runs `bovw.cli.command` as the command does. Failures of the JVM's start need a
fresh JVM, so that case runs main in a child process (this one holds the test session);
its own stderr is captured there, apart from the JVM's.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bovw.cli import main
from bovw.cloud import s3 as s3_module
from bovw.image.synthetic import generate_dataset
from tests.cloud_fixtures import TEST_ACCESS_KEY, TEST_REGION, TEST_SECRET_KEY
from tests.cluster_fixtures import REPO_ROOT, subprocess_environment

WRITABLE_FIX = "fix: choose a location you may write to (on S3: see conf/iam/ for the permissions)"


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("error-images")
    # Both splits, two classes: a dataset without Test images, or of one Training class,
    # is refused before these cases.
    for split in ("Training", "Test"):
        for fruit in ("Apple", "Pear"):
            (root / split / fruit).mkdir(parents=True)
            (root / split / fruit / "0.jpg").write_bytes(b"not read: every case fails earlier")
    return root


def _one_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    return captured.err.rstrip("\n")


def _run(images: Path, output: str, *flags: str) -> list[str]:
    return ["run", "--input", str(images), "--output", output, *flags]


# --- before Spark starts -------------------------------------------------------------------

def test_a_master_spark_cannot_parse(images, tmp_path, capsys):
    assert main(_run(images, str(tmp_path / "out"), "--master", "garbage")) == 2

    assert _one_line(capsys) == (
        "bovw: config error: spark.master 'garbage' is not a Spark master URL; fix: use "
        "local[N] (N cores, * for all), spark://HOST:PORT (a standalone cluster), yarn or "
        "k8s://HOST:PORT")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("master", ["local", "local[2]", "local[*]", "local[4, 3]",
                                    "local-cluster[2, 1, 1024]", "yarn",
                                    "k8s://https://10.0.0.1:6443"])
def test_every_master_form_spark_accepts_passes(master):
    from bovw.spark.session import check_master

    check_master(master)


def test_yarn_without_a_hadoop_configuration(images, tmp_path, capsys):
    from bovw.spark.session import check_yarn_configuration

    environ = {key: value for key, value in subprocess_environment().items()
               if key not in ("HADOOP_CONF_DIR", "YARN_CONF_DIR")}
    assert main(_run(images, str(tmp_path / "out"), "--config",
                     str(REPO_ROOT / "conf" / "emr" / "emr.toml")), environ) == 1

    assert _one_line(capsys) == (
        "bovw: error: spark.master yarn needs the cluster's Hadoop configuration, and neither "
        "HADOOP_CONF_DIR nor YARN_CONF_DIR is set; fix: set one to the folder of its "
        "*-site.xml files, run on the cluster (spark-submit jobs/pipeline.py, or bovw emr "
        "submit), or pass --master local[N] to run here")
    assert not (tmp_path / "out").exists()
    for name in ("HADOOP_CONF_DIR", "YARN_CONF_DIR"):
        check_yarn_configuration("yarn", {name: str(tmp_path)})
    check_yarn_configuration("local[2]", {})


@pytest.mark.parametrize("master", ["local[0]", "local[0, 3]"])
def test_a_local_master_with_no_threads(images, tmp_path, capsys, master):
    # Spark itself refused it only after its JVM started, with a Java stack trace.
    assert main(_run(images, str(tmp_path / "out"), "--master", master)) == 2

    assert _one_line(capsys) == (
        f"bovw: config error: spark.master '{master}' asks for 0 threads; fix: local[N] with "
        "N >= 1, or local[*] for every core")
    assert not (tmp_path / "out").exists()


def test_a_standalone_master_nobody_listens_on(images, tmp_path, capsys):
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    assert main(_run(images, str(tmp_path / "out"), "--master", f"spark://127.0.0.1:{port}")
                ) == 1

    assert _one_line(capsys) == (
        f"bovw: error: cannot reach the Spark master at 127.0.0.1:{port}: Connection refused; "
        "fix: start the master (sbin/start-master.sh) or correct --master")


@pytest.mark.parametrize("memory", ["4gb", "0g", "00m"])
def test_a_driver_memory_the_jvm_cannot_read(images, tmp_path, capsys, memory):
    assert main(_run(images, str(tmp_path / "out"), "--set", f"spark.driver_memory={memory}")
                ) == 2

    assert _one_line(capsys) == (
        f"bovw: config error: spark.driver_memory '{memory}' is not a JVM memory size; fix: a "
        "whole number above 0 and a unit k, m, g or t, e.g. 4g")


# --- the output ----------------------------------------------------------------------------

def test_an_output_folder_that_cannot_be_created(spark, images, capsys):
    # Nobody, root included, may create a folder in /proc.
    output = "/proc/bovw-test-no-such-folder/run"

    assert main(_run(images, output, "--master", "local[2]")) == 1

    # The first thing written is the output's lock, beside it.
    parent = "/proc/bovw-test-no-such-folder"
    assert _one_line(capsys) == (
        f"bovw: error: cannot write {parent}/.run.bovw-lock: the folder could not be created "
        f"(No such file or directory: {parent}): no permission, a read-only filesystem or a "
        f"full disk; {WRITABLE_FIX}")


def test_an_output_inside_a_file(spark, images, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    output = tmp_path / "notes.txt" / "run"

    assert main(_run(images, str(output), "--master", "local[2]")) == 1

    # The first thing written is the output's lock, beside it.
    assert _one_line(capsys) == (
        f"bovw: error: cannot write {tmp_path}/notes.txt/.run.bovw-lock: a part of the path is "
        f"a file, not a folder (File exists: {tmp_path}/notes.txt); fix: choose a path inside "
        "a folder")
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_an_output_url_spark_has_no_filesystem_for(spark, images, capsys):
    assert main(_run(images, "nosuchfs://host/run", "--master", "local[2]")) == 1

    assert _one_line(capsys) == (
        "bovw: error: cannot check nosuchfs://host/.run.bovw-lock: Spark has no filesystem "
        'for this URL (No FileSystem for scheme "nosuchfs"); fix: use a local path, hdfs:// '
        "or s3a:// (s3:// is read as s3a://)")


def test_s3a_without_the_connector(spark, images, aws_files, bucket, capsys):
    try:
        spark._jvm.java.lang.Class.forName("org.apache.hadoop.fs.s3a.S3AFileSystem")
        pytest.skip("hadoop-aws is on this Spark's classpath")
    except Exception:  # noqa: BLE001 - py4j raises its own error for a missing class
        pass
    aws_files.write(credentials=f"[static]\naws_access_key_id = {TEST_ACCESS_KEY}\n"
                                f"aws_secret_access_key = {TEST_SECRET_KEY}\n")

    # As on a machine where the jars were meant to be on the classpath already (the bucket
    # exists: a missing one is said before Spark starts).
    code = main(_run(images, f"s3://{bucket}/runs/1", "--master", "local[2]",
                     "--profile", "static", "--region", TEST_REGION,
                     "--set", "s3.packages=false", "--set", "s3.committer=none"))

    assert code == 1
    assert _one_line(capsys) == (
        f"bovw: error: cannot check s3a://{bucket}/runs/1: Spark has no s3a connector (hadoop-aws "
        "is not on its classpath); fix: set s3.jars_dir to a folder holding the hadoop-aws jar "
        "of Spark's Hadoop version and its AWS SDK bundle, or s3.packages = true where Maven "
        "Central is reachable")


@pytest.fixture
def session_log_level(spark, test_config):
    """The shared session's console log level back as tests/conftest.py set it: `bovw
    --verbose` in this process raises the level of the session it gets (WARN), and every
    later test would log at it."""
    from bovw.spark.console import console_level

    yield
    spark.sparkContext.setLogLevel(console_level(test_config.spark.log_level, verbose=False))


@pytest.mark.parametrize(("where", "output", "causes", "line"), [
    # The first thing written is the output's lock, beside it: on a local disk in Python,
    ("before", "{tmp}/file/run", ["FileExistsError"],
     "cannot write {tmp}/file/.run.bovw-lock: a part of the path is a file"),
    # elsewhere through Hadoop, whose Java trace is shown too.
    ("after", "nosuchfs://host/run",
     ["py4j.protocol.Py4JJavaError", "org.apache.hadoop.fs.UnsupportedFileSystemException"],
     "cannot check nosuchfs://host/.run.bovw-lock: Spark has no filesystem for this URL"),
])
@pytest.mark.usefixtures("session_log_level")
def test_verbose_shows_the_trace_then_the_line(spark, images, tmp_path, capsys, where, output,
                                               causes, line):
    (tmp_path / "file").write_text("", encoding="utf-8")
    args = _run(images, output.format(tmp=tmp_path), "--master", "local[2]")
    args = ["--verbose", *args] if where == "before" else [*args, "--verbose"]

    assert main(args) == 1

    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    for cause in causes:
        assert cause in err
    assert "bovw.errors.StorageError" in err
    assert err.splitlines()[-1].startswith(f"bovw: error: {line.format(tmp=tmp_path)}")


# --- the s3 commands -----------------------------------------------------------------------

@pytest.fixture
def quick_retries(monkeypatch):
    monkeypatch.setattr(s3_module, "RETRIES", {"mode": "standard", "max_attempts": 1})


def test_s3_ls_without_network(aws_files, monkeypatch, quick_retries, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)

    code = main(["s3", "ls", "s3://bucket/fruits", "--endpoint", "http://127.0.0.1:1",
                 "--region", TEST_REGION])

    assert code == 1
    assert _one_line(capsys) == (
        "bovw: error: cannot reach AWS for listing s3://bucket/fruits/: Could not connect to "
        'the endpoint URL: "http://127.0.0.1:1/bucket?list-type=2&prefix=fruits%2F&max-keys='
        '1000&encoding-type=url"; fix: check the network connection (and s3.endpoint, if set)')


def test_s3_ls_without_network_verbose_shows_botocores_trace(aws_files, monkeypatch,
                                                            quick_retries, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)

    assert main(["s3", "--verbose", "ls", "s3://bucket/fruits", "--endpoint",
                 "http://127.0.0.1:1", "--region", TEST_REGION]) == 1

    err = capsys.readouterr().err
    assert "botocore.exceptions.EndpointConnectionError" in err
    assert err.splitlines()[-1].startswith("bovw: error: cannot reach AWS for listing")


def test_s3_ls_without_credentials(aws_files, capsys):
    assert main(["s3", "ls", "s3://bucket/fruits", "--region", TEST_REGION]) == 1

    assert _one_line(capsys) == (
        "bovw: error: no AWS credentials for listing s3://bucket/fruits/; fix: set s3.profile "
        "(--profile) to a configured profile (`aws configure --profile NAME`), or run where "
        "an IAM role provides them")


def test_s3_ls_of_a_missing_bucket(aws_files, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)

    assert main(["s3", "ls", "s3://bovw-no-such-bucket/x", "--region", TEST_REGION]) == 1

    assert _one_line(capsys) == (
        "bovw: error: bucket 'bovw-no-such-bucket' does not exist; fix: create it (`aws s3 mb "
        "s3://bovw-no-such-bucket`) or correct the URL")


# --- the JVM's start -----------------------------------------------------------------------

_MAIN_IN_A_CHILD = """
import contextlib, io, json, sys
from bovw.cli import main
from bovw.image.synthetic import generate_dataset
err = io.StringIO()
with contextlib.redirect_stderr(err):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "err": err.getvalue()}))
"""


def test_a_spark_sql_setting_spark_refuses_stops_a_run_before_any_work(images, tmp_path):
    # A new session takes it without a look: an 83-line traceback after run.json (review 3).
    out = tmp_path / "out"
    child = subprocess.run(
        [sys.executable, "-c", _MAIN_IN_A_CHILD,
         *_run(images, str(out), "--master", "local[1]", "--set", "spark.driver_memory=1g",
               "--set", "spark.conf.spark.sql.shuffle.partitions=abc")],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
        env=subprocess_environment())

    assert child.returncode == 0, child.stderr[-3000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["code"] == 2 and result["err"].count("\n") == 1, result["err"]
    # Spark's reason in its own words (4.3: "[INVALID_CONF_VALUE.TYPE_MISMATCH] The value
    # 'abc' ...", 4.0: "... should be int, but was abc").
    assert result["err"].startswith(
        "bovw: config error: spark.conf.spark.sql.shuffle.partitions is refused by Spark: ")
    assert "abc" in result["err"]
    assert not out.exists()


def test_a_driver_port_in_use(images, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        spark = {"driver.port": port, "port.maxRetries": 0, "driver.bindAddress": "127.0.0.1",
                 "driver.host": "127.0.0.1", "ui.enabled": "false"}
        flags = [word for key, value in spark.items()
                 for word in ("--set", f"spark.conf.spark.{key}={value}")]
        child = subprocess.run(
            [sys.executable, "-c", _MAIN_IN_A_CHILD,
             *_run(images, str(tmp_path / "out"), "--master", "local[1]",
                   "--set", "spark.driver_memory=1g", *flags)],
            capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
            env=subprocess_environment())

    assert child.returncode == 0, child.stderr[-3000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["code"] == 1
    assert result["err"].count("\n") == 1, result["err"]
    assert result["err"].startswith(
        "bovw: error: Spark could not start: BindException: ")
    assert "sparkDriver" in result["err"]
    assert result["err"].rstrip("\n").endswith(
        "; fix: another program holds the port: stop it, or set a free one with --set "
        "spark.conf.spark.driver.port=PORT (or leave it unset), and check "
        "spark.driver.bindAddress")


# --- how Java storage failures read -------------------------------------------------------

def test_an_unknown_hdfs_host_is_one_line(tmp_path, capsys):
    # pyspark raises it as its own IllegalArgumentException, which was not translated: a
    # 49-line traceback (review 3).
    from bovw.cli import main

    assert main(["run", "--input", "hdfs://nosuchnamenode.invalid:8020/x", "--output",
                 str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "bovw: error: cannot list hdfs://nosuchnamenode.invalid:8020/x: unknown host "
        "nosuchnamenode.invalid (no network, or a wrong host name); fix: check the network "
        "connection and the host in the URL (for S3: s3.endpoint)")


@pytest.mark.parametrize(("chain", "expected"), [
    ([("java.io.FileNotFoundException", "/runs/a/run.json (Permission denied)")],
     ("permission denied (/runs/a/run.json (Permission denied))", WRITABLE_FIX[5:])),
    ([("java.io.FileNotFoundException", "/mnt/ro/run.json (Read-only file system)")],
     ("the filesystem is read-only (/mnt/ro/run.json (Read-only file system))",
      WRITABLE_FIX[5:])),
    ([("org.apache.spark.SparkException", "Job aborted"),
      ("java.nio.file.AccessDeniedException", "s3a://b/runs/x: getFileStatus: 403 Forbidden")],
     ("permission denied (s3a://b/runs/x: getFileStatus: 403 Forbidden)", WRITABLE_FIX[5:])),
    ([("org.apache.hadoop.fs.s3a.UnknownStoreException", "s3a://nobucket/: Bucket does not "
                                                          "exist")],
     ("the bucket does not exist (s3a://nobucket/: Bucket does not exist)",
      "create it, or correct the URL")),
    ([("org.apache.hadoop.fs.s3a.AWSClientIOException", "getFileStatus on s3a://b/x"),
      ("java.net.UnknownHostException", "b.s3.eu-west-1.amazonaws.com")],
     ("unknown host b.s3.eu-west-1.amazonaws.com (no network, or a wrong host name)",
      "check the network connection and the host in the URL (for S3: s3.endpoint)")),
    # What a Parquet write into a full disk raised (a bench run at fruits360-dev x10).
    ([("org.apache.spark.SparkException", "[TASK_WRITE_FAILED] Task failed while writing "
                                          "rows to file:/runs/x/._tmp_descriptors."),
      ("org.apache.hadoop.fs.FSError", "java.io.IOException: No space left on device"),
      ("java.io.IOException", "No space left on device")],
     ("the disk is full (No space left on device)", "free space, or write to another disk")),
    # A task failing for its own reasons is not a storage failure.
    ([("org.apache.spark.SparkException", "Job aborted"),
      ("org.apache.spark.api.python.PythonException", "Traceback ...")], None),
])
def test_storage_failures_are_told_apart_by_their_java_class(chain, expected):
    from bovw.spark.jvm import JavaCause
    from bovw.spark.storage_errors import storage_cause

    assert storage_cause([JavaCause(name, message) for name, message in chain]) == expected


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _call_a_gone_jvm(*_args):
    """What a stage meets when the driver JVM has died: py4j cannot reach it."""
    from py4j.java_gateway import GatewayParameters, JavaGateway

    gateway = JavaGateway(gateway_parameters=GatewayParameters(port=_closed_port()))
    return gateway.jvm.java.lang.System.currentTimeMillis()


def test_a_driver_that_died_mid_command_is_one_line(monkeypatch, capsys, tmp_path):
    from bovw.cli import run as run_commands
    from bovw.cli.command import DRIVER_LOST

    monkeypatch.setitem(run_commands.HANDLERS, "run", _call_a_gone_jvm)
    code = main(["run", "--input", str(tmp_path), "--output", str(tmp_path / "out")])
    assert code == 1
    assert capsys.readouterr().err == f"bovw: error: {DRIVER_LOST}\n"
    assert DRIVER_LOST.startswith("the Spark driver (its JVM) stopped in the middle of the work")

    def cleanup_after_it(*_args):
        # The stage's own clean-up then fails too (Connection refused inside py4j).
        try:
            _call_a_gone_jvm()
        finally:
            _call_a_gone_jvm()

    monkeypatch.setitem(run_commands.HANDLERS, "run", cleanup_after_it)
    assert main(["run", "--input", str(tmp_path), "--output", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == f"bovw: error: {DRIVER_LOST}\n"


def test_workers_that_cannot_import_a_module_are_one_line(spark, monkeypatch, capsys, tmp_path):
    # A cluster whose nodes lack OpenCV: Spark's PythonException, with the worker's trace
    # and a Java stack, reached the console whole.
    from pyspark.errors.exceptions.captured import PythonException

    from bovw.cli import run as run_commands
    from bovw.spark.workers import worker_module_error

    def worker_fails(*_args):
        raise PythonException(
            desc="An exception was thrown from the Python worker. Please see the stack trace "
                 "below.\nTraceback (most recent call last):\n  File \"/x/colour.py\", line "
                 "12, in <module>\n    import cv2\nModuleNotFoundError: No module named "
                 "'cv2'\n", stackTrace="\tat org.apache.spark.api.python.BasePythonRunner")

    monkeypatch.setitem(run_commands.HANDLERS, "run", worker_fails)
    assert main(["run", "--input", str(tmp_path), "--output", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == f"bovw: error: {worker_module_error('cv2')}\n"
    assert worker_module_error("cv2") == (
        "the Python that Spark's workers run cannot import cv2 (a module bovw needs in every "
        "worker); fix: install bovw and its dependencies for that Python on every node, or "
        "name a Python that has them with --set spark.conf.spark.pyspark.python=PATH (it is "
        "spark.pyspark.python, else $PYSPARK_PYTHON, else python3 on each node)")

    def worker_fails_otherwise(*_args):
        raise PythonException(desc="ValueError: something else", stackTrace="")

    monkeypatch.setitem(run_commands.HANDLERS, "run", worker_fails_otherwise)
    with pytest.raises(PythonException):
        main(["run", "--input", str(tmp_path), "--output", str(tmp_path / "out")])


def _worker_lacks_cv2():
    from pyspark.errors.exceptions.captured import PythonException

    return PythonException(
        desc="An exception was thrown from the Python worker.\nTraceback (most recent call "
             "last):\n  File \"/x/orb.py\", line 9, in <module>\n    import cv2\n"
             "ModuleNotFoundError: No module named 'cv2'\n",
        stackTrace="\tat org.apache.spark.api.python.BasePythonRunner")


@pytest.mark.parametrize("failure, expected", [
    (_worker_lacks_cv2, "cv2"),
    (lambda: ValueError("not a worker's import"), None)])
def test_run_pipeline_names_a_module_its_workers_lack_in_one_line(spark, test_config,
                                                                    monkeypatch, tmp_path,
                                                                    failure, expected):
    # A notebook's run_pipeline (no CLI around it) got Spark's PythonException whole: the
    # worker's traceback and a Java stack. Now a WorkerError, one line, from that error.
    from bovw.errors import WorkerError
    from bovw.pipeline import run as pipeline_run
    from bovw.spark.workers import worker_module_error

    raised = failure()

    def stages_fail(*_args):
        raise raised

    monkeypatch.setattr(pipeline_run, "_run_stages", stages_fail)
    with pytest.raises(Exception) as caught:
        pipeline_run.run_pipeline(spark, test_config, str(tmp_path / "in"),
                                  str(tmp_path / "out"), log=lambda _line: None)
    if expected is None:
        assert caught.value is raised
    else:
        assert type(caught.value) is WorkerError and caught.value.__cause__ is raised
        assert str(caught.value) == worker_module_error(expected)


def test_worker_imports_named_nested_raises_the_inner_one_line(spark, test_config, monkeypatch,
                                                               tmp_path):
    # A comparison's CNN variant runs inside a block of its own; a sweep's points inside
    # run_pipeline's. An error already named by an inner block passes the outer one as it
    # is, from Spark's error: not wrapped again (its cause the inner WorkerError).
    import importlib

    from bovw.errors import WorkerError
    from bovw.spark.workers import worker_imports_named, worker_module_error

    compare_module = importlib.import_module("bovw.experiments.compare")

    raised = _worker_lacks_cv2()
    with pytest.raises(WorkerError) as caught, worker_imports_named(), worker_imports_named():
        raise raised
    assert caught.value.__cause__ is raised

    def cnn_variant_fails(*_args):
        raise raised

    monkeypatch.setattr(compare_module, "run_cnn_variant", cnn_variant_fails)
    with pytest.raises(WorkerError) as caught:
        compare_module._run_variants(spark, test_config, str(tmp_path / "in"),
                                     str(tmp_path / "out"), ["cnn"], None, None, False,
                                     lambda _line: None, None)
    assert str(caught.value) == worker_module_error("cv2")
    assert caught.value.__cause__ is raised


_NO_CV2 = """
import sys

class NoOpenCV:
    def find_spec(self, name, path=None, target=None):
        if name == "cv2":
            raise ModuleNotFoundError("No module named 'cv2'", name="cv2")
        return None

sys.meta_path.insert(0, NoOpenCV())
"""


def test_bovw_run_whose_workers_lack_opencv_ends_in_one_line(tmp_path):
    data = tmp_path / "data"
    generate_dataset(data, classes=2, train_per_class=3, test_per_class=1, size=48)
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(_NO_CV2)
    worker = tmp_path / "python-without-opencv"
    worker.write_text(f'#!/bin/sh\nPYTHONPATH="{blocker}:$PYTHONPATH" exec "{sys.executable}" '
                      '"$@"\n')
    worker.chmod(0o755)
    done = subprocess.run(
        [sys.executable, "-m", "bovw.cli", "run", "--input", str(data), "--output",
         str(tmp_path / "run"), "--master", "local[1]", "--k", "4",
         "--set", "spark.class_archive_dir=", "--set", "spark.conf.spark.ui.enabled=false",
         "--set", f"spark.conf.spark.pyspark.python={worker}"],
        capture_output=True, text=True, cwd=REPO_ROOT, env=subprocess_environment(),
        timeout=300)
    from bovw.spark.workers import worker_module_error

    assert done.returncode == 1, done.stderr[-3000:]
    assert done.stderr.splitlines()[-1] == f"bovw: error: {worker_module_error('cv2')}"


_INTERRUPTED = ("bovw: interrupted: what was finished is kept, and the same command again "
                "goes on from there\n")


def test_an_error_raised_while_a_ctrl_c_unwinds_is_the_interrupt(monkeypatch, capsys, tmp_path):
    # pyspark's toArrow asks the JVM for its cancelled job's result in a `finally`: the
    # job-cancelled error then replaced the KeyboardInterrupt, and bovw printed 150-190
    # lines of Python and Java trace instead of its one line.
    from bovw.cli import run as run_commands
    from bovw.errors import InputError

    def cancelled_in_finally(*_args):
        try:
            raise KeyboardInterrupt
        finally:
            raise RuntimeError("[SPARK_JOB_CANCELLED] Job 9 cancelled part of cancelled job group")

    def translated(*_args):
        try:
            cancelled_in_finally()
        except RuntimeError as error:
            raise InputError("cannot read the sample") from error

    command = ["run", "--input", str(tmp_path), "--output", str(tmp_path / "out")]
    for handler in (cancelled_in_finally, translated):
        monkeypatch.setitem(run_commands.HANDLERS, "run", handler)
        assert main(command) == 130
        assert capsys.readouterr().err == _INTERRUPTED
    # With --verbose, the trace is shown above the same line.
    assert main([*command, "--verbose"]) == 130
    err = capsys.readouterr().err
    assert "KeyboardInterrupt" in err and "SPARK_JOB_CANCELLED" in err
    assert err.endswith(_INTERRUPTED)


def test_an_error_without_a_ctrl_c_behind_it_is_not_an_interrupt(monkeypatch, capsys,
                                                                  tmp_path):
    from bovw.cli import run as run_commands
    from bovw.errors import InputError

    def handled_then_failed(*_args):
        try:
            raise ValueError("first")
        except ValueError:
            raise InputError("the input is unusable") from None

    monkeypatch.setitem(run_commands.HANDLERS, "run", handled_then_failed)
    assert main(["run", "--input", str(tmp_path), "--output", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == "bovw: error: the input is unusable\n"


def test_a_connection_error_outside_py4j_is_not_taken_for_the_driver(monkeypatch, tmp_path):
    from bovw.cli import run as run_commands

    def refused(*_args):
        with socket.create_connection(("127.0.0.1", _closed_port()), timeout=5):
            pass

    monkeypatch.setitem(run_commands.HANDLERS, "run", refused)
    with pytest.raises(ConnectionRefusedError):
        main(["run", "--input", str(tmp_path), "--output", str(tmp_path / "out")])


@pytest.mark.parametrize(("module", "argv", "goes_on"), [
    ("cloud", ["s3", "ls", "s3://bucket/fruits/"], False),
    ("cloud", ["s3", "upload", "photos", "s3://bucket/fruits/"], True),
    ("cloud", ["emr", "submit", "--config-uri", "s3://b/c.toml", "--input", "s3://b/i/",
               "--output", "s3://b/o/", "--dry-run"], False),
    ("predict", ["predict", "--model", "m.npz", "photo.jpg"], False),
    ("predict", ["predict", "--model", "m.npz", "photos", "--output", "out"], True),
    ("run", ["run", "--input", "photos", "--output", "out"], True),
])
def test_a_stopped_command_promises_to_go_on_only_when_it_can(monkeypatch, capsys, module,
                                                              argv, goes_on):
    # Review 4: `bovw s3 ls ... | head -1` said the same command again goes on from there;
    # a command that only prints (or submits to EMR) has nothing to go on from.
    from bovw.cli import cloud, predict, run

    def interrupted(*_args):
        raise KeyboardInterrupt

    handlers = {"cloud": cloud, "predict": predict, "run": run}[module].HANDLERS
    monkeypatch.setitem(handlers, argv[0], interrupted)
    assert main(argv) == 130
    assert capsys.readouterr().err == (_INTERRUPTED if goes_on else "bovw: interrupted\n")

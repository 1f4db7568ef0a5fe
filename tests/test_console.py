"""What a run prints: Spark's console kept quiet (bovw.spark.console) and the progress of its
stages (bovw.spark.progress). The console of a whole `bovw run` is checked on the runs of
tests/test_cluster_determinism.py."""

from __future__ import annotations

import io
import os
import re
import subprocess
import threading
import time
import zipfile

import pytest

from bovw.config import ConfigError, load_config
from bovw.spark.console import (
    FETCHING,
    LOG_CONFIG,
    DriverStderr,
    console_level,
    driver_starting,
    is_noise,
    log_options,
)
from bovw.spark.progress import JobTally, Snapshot, StageProgress, clock_text

# --- Spark's console -------------------------------------------------------------------------


@pytest.mark.parametrize("line", [
    "WARNING: Using incubator modules: jdk.incubator.vector",
    "netlib-blas: JNI_OnLoad: dlopen(libblas.so.3) failed: libblas.so.3: cannot open shared "
    "object file: No such file or directory",
    "Using Spark's default log4j profile: org/apache/spark/log4j2-defaults.properties",
    'Setting default log level to "WARN".',
    "To adjust logging level use sc.setLogLevel(newLevel). For SparkR, use setLogLevel(newLevel).",
])
def test_driver_start_up_noise_is_dropped(line):
    assert is_noise(line + "\n")


@pytest.mark.parametrize("line", [
    "26/12/01 14:49:06 ERROR Executor: Exception in task 0.0 in stage 3.0 (TID 7)",
    "Traceback (most recent call last):",
    "Error: Could not find or load main class org.apache.spark.deploy.SparkSubmit",
    "Invalid maximum heap size: -Xmx4q",
    "  WARNING: indented, so not the JVM's own",
])
def test_everything_else_on_the_driver_stderr_is_kept(line):
    assert not is_noise(line + "\n")


@pytest.mark.parametrize("level, verbose, shown", [
    ("ERROR", False, "ERROR"), ("ERROR", True, "WARN"), ("OFF", True, "WARN"),
    ("INFO", True, "INFO"), ("INFO", False, "INFO"), ("WARN", False, "WARN"),
])
def test_console_level(level, verbose, shown):
    assert console_level(level, verbose) == shown


def test_log_options_name_the_bundled_log4j2_configuration_and_the_level():
    assert log_options("ERROR") == (
        f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()} -Dbovw.log.level=ERROR")
    # The level comes from the system property, ERROR when it is missing.
    assert re.search(r"^rootLogger\.level = \$\{sys:bovw\.log\.level:-error\}$",
                     LOG_CONFIG.read_text(), re.MULTILINE)


def test_log_level_must_be_a_log4j_level():
    assert load_config(None, {}).spark.log_level == "ERROR"
    assert load_config(None, {"spark.log_level": "INFO"}).spark.log_level == "INFO"
    with pytest.raises(ConfigError, match="spark.log_level must be one of ALL, TRACE, DEBUG, "
                                          "INFO, WARN, ERROR, FATAL, OFF \\(got 'LOUD'\\)"):
        load_config(None, {"spark.log_level": "LOUD"})


def test_the_test_session_logs_at_error(spark):
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.logging.log4j.LogManager.getRootLogger()
    assert root.getLevel().toString() == "ERROR"
    assert jvm.java.lang.System.getProperty("log4j2.configurationFile") == LOG_CONFIG.as_uri()


def test_the_words_of_a_jvm_that_cannot_start_come_before_bovw_s_line(tmp_path):
    """The driver's stderr goes through bovw's filter: what the JVM says when it cannot
    start still reaches the console, and before bovw's one-line error that points at it."""
    from tests.cluster_fixtures import bovw_command, subprocess_environment

    child = subprocess.run(
        bovw_command("report", str(tmp_path / "nothing"), "--master", "local[1]",
                     "--set", "spark.conf.spark.driver.extraJavaOptions=-Xss1k"),
        capture_output=True, text=True, timeout=300, env=subprocess_environment())

    assert child.returncode == 1
    lines = child.stderr.splitlines()
    # (The JVM writes the cause itself, "The Java thread stack size specified is too
    # small", on its stdout, which bovw leaves alone.)
    assert lines[-3:-1] == ["Error: Could not create the Java Virtual Machine.",
                            "Error: A fatal exception has occurred. Program will exit."]
    assert lines[-1] == (
        "bovw: error: Spark's JVM exited while starting (its own message is above); fix: "
        "check spark.driver_memory, the spark.conf settings and JAVA_HOME")


# Ivy's report as Spark 4's spark-submit writes it (shortened where it repeats itself).
IVY_START = [
    "file:///srv/repo added as a remote repository with the name: repo-1",
    ":: loading settings :: url = jar:file:/x/ivy-2.5.3.jar!/org/apache/ivy/core/settings/"
    "ivysettings.xml",
    "Ivy Default Cache set to: /root/.ivy2.5.2/cache",
    "org.apache.hadoop#hadoop-aws added as a dependency",
    ":: resolving dependencies :: org.apache.spark#spark-submit-parent-40e8;1.0",
    "\tconfs: [default]",
    ":: resolution report :: resolve 156ms :: artifacts dl 0ms",
    "\t|      default     |   1   |   0   |   0   |   0   ||   0   |   0   |",
    ":: problems summary ::",
    ":::: WARNINGS",
    "\tHost repo1.maven.org not found. url=https://repo1.maven.org/maven2/org/apache/hadoop/"
    "hadoop-aws/3.4.1/hadoop-aws-3.4.1.pom",
    "",
    "\tHost repos.spark-packages.org not found. url=https://repos.spark-packages.org/org/x.pom",
    "\tHost repo1.maven.org not found. url=https://repo1.maven.org/maven2/org/x.jar",
]
IVY_GOT_THE_JARS = [
    ":: retrieving :: org.apache.spark#spark-submit-parent-40e8",
    "\tconfs: [default]",
    "\t1 artifacts copied, 0 already retrieved (0kB/6ms)",
]
IVY_FAILED = [
    "\t\t:: org.apache.hadoop#hadoop-aws;3.4.1: not found",
    ":: USE VERBOSE OR DEBUG MESSAGE LEVEL FOR MORE DETAILS",
    'Exception in thread "main" java.lang.RuntimeException: [unresolved dependency: '
    "org.apache.hadoop#hadoop-aws;3.4.1: not found]",
    "\tat org.apache.spark.util.MavenUtils$.resolveMavenCoordinates(MavenUtils.scala:539)",
    "\tat org.apache.spark.deploy.SparkSubmit.main(SparkSubmit.scala)",
]


def forwarded(lines: list[str]) -> tuple[list[str], str]:
    """What the driver's stderr filter passes on of `lines`, and what it found unresolved."""
    target = io.BytesIO()
    forwarder = DriverStderr(io.BytesIO("".join(line + "\n" for line in lines).encode()), target)
    forwarder.run()
    return target.getvalue().decode().splitlines(), forwarder.unresolved


def test_ivy_report_of_jars_that_came_is_dropped():
    lines = ["before", *IVY_START, *IVY_GOT_THE_JARS, "after", "WARNING: Using incubator"]
    assert forwarded(lines) == (["before", FETCHING.strip(), "after"], "")


def test_ivy_report_of_a_failure_becomes_what_is_missing_and_the_unreachable_hosts():
    lines = ["before", *IVY_START, *IVY_FAILED, "Error: something else"]
    assert forwarded(lines) == (
        ["before", FETCHING.strip(), "Error: something else"],
        "unresolved dependency: org.apache.hadoop#hadoop-aws;3.4.1: not found "
        "(could not reach repo1.maven.org, repos.spark-packages.org)")


def test_ivy_report_with_an_unknown_end_is_passed_on_whole():
    lines = [*IVY_START, 'Exception in thread "main" java.lang.OutOfMemoryError: heap']
    assert forwarded(lines) == ([FETCHING.strip(), *lines], "")


def test_a_report_still_held_when_the_driver_is_up_is_passed_on_and_nothing_more_held():
    read_end, write_end = os.pipe()
    target = io.BytesIO()
    filtered = DriverStderr(os.fdopen(read_end, "rb"), target)
    filtered.start()
    with os.fdopen(write_end, "wb", buffering=0) as driver:
        driver.write(f"{IVY_START[1]}\nno end Ivy knows\n".encode())
        deadline = time.monotonic() + 10
        while not target.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert target.getvalue().decode().splitlines() == [FETCHING.strip()]  # held back
        filtered.started()
        assert target.getvalue().decode().splitlines() == [
            FETCHING.strip(), IVY_START[1], "no end Ivy knows"]
        driver.write(f"{IVY_START[1]}\nlater\n".encode())
    filtered.join(5)
    assert target.getvalue().decode().splitlines()[3:] == [IVY_START[1], "later"]


def _ivy_settings(folder, repository):
    """Ivy settings that resolve from the Maven layout at `repository` only: no network."""
    settings = folder / "ivysettings.xml"
    settings.write_text(
        '<ivysettings><settings defaultResolver="here"/><resolvers>'
        f'<ibiblio name="here" m2compatible="true" root="{repository.as_uri()}"/>'
        "</resolvers></ivysettings>")
    return settings


def _maven_artifact(repository, group, artifact, version):
    folder = repository.joinpath(*group.split("."), artifact, version)
    folder.mkdir(parents=True)
    (folder / f"{artifact}-{version}.pom").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        f"<groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version></project>")
    with zipfile.ZipFile(folder / f"{artifact}-{version}.jar", "w") as jar:
        jar.writestr("bovw-test.txt", "a jar")


@pytest.mark.parametrize("package, last_line", [
    ("org.example:present:1.0",
     "bovw: error: {nothing} not found"),
    ("org.example:absent:1.0",
     "bovw: error: Spark could not fetch spark.jars.packages: unresolved dependency: "
     "org.example#absent;1.0: not found; fix: give this machine access to Maven Central (or "
     "the spark.jars.repositories named), or download the jars and set s3.jars_dir to their "
     "folder (s3a's jars) or spark.conf.spark.jars"),
])
def test_spark_jars_packages_report_stays_off_the_console(tmp_path, package, last_line):
    """A real driver resolving real packages (from a local Maven layout, not the network):
    Ivy's ~30-line report is not shown when the jar comes, and is one line when it does not."""
    from tests.cluster_fixtures import bovw_command, subprocess_environment

    repository = tmp_path / "repository"
    _maven_artifact(repository, "org.example", "present", "1.0")
    nothing = tmp_path / "nothing"
    child = subprocess.run(
        bovw_command("report", str(nothing), "--master", "local[1]",
                     "--set", f"spark.conf.spark.jars.packages={package}",
                     "--set", f"spark.conf.spark.jars.ivySettings="
                              f"{_ivy_settings(tmp_path, repository)}",
                     "--set", f"spark.conf.spark.jars.ivy={tmp_path / 'ivy'}"),
        capture_output=True, text=True, timeout=300, env=subprocess_environment())

    assert child.returncode == 1
    assert child.stderr.splitlines() == [FETCHING.strip(), last_line.format(nothing=nothing)]


def _launch_waiting_for(block_ran: threading.Event, launched: list, error=None):
    """A stand-in for launch_quiet_driver that ends only once the caller's block has run:
    it would wait out its timeout if the two did not run at the same time."""
    def launch(conf, target=None):
        ran = block_ran.wait(timeout=10)
        time.sleep(0.2)  # a launch that outlasts the block: it is waited for
        launched.append((conf, ran, threading.current_thread().name))
        if error is not None:
            raise error
    return launch


def test_the_driver_launches_while_the_block_runs_and_is_waited_for(monkeypatch):
    block_ran, launched = threading.Event(), []
    monkeypatch.setattr("bovw.spark.console.launch_quiet_driver",
                        _launch_waiting_for(block_ran, launched))
    with driver_starting("the conf"):
        block_ran.set()
    assert launched == [("the conf", True, "bovw-driver-launch")]


def test_a_failed_launch_is_raised_once_the_block_is_done(monkeypatch):
    block_ran, launched = threading.Event(), []
    monkeypatch.setattr("bovw.spark.console.launch_quiet_driver",
                        _launch_waiting_for(block_ran, launched, RuntimeError("no JVM")))
    done = []
    with pytest.raises(RuntimeError, match="no JVM"), driver_starting("the conf"):
        block_ran.set()
        done.append("block")
    assert done == ["block"] and launched == [("the conf", True, "bovw-driver-launch")]


def test_the_block_s_own_error_wins_after_the_launch_has_ended(monkeypatch):
    block_ran, launched = threading.Event(), []
    monkeypatch.setattr("bovw.spark.console.launch_quiet_driver",
                        _launch_waiting_for(block_ran, launched, RuntimeError("no JVM")))
    with pytest.raises(ImportError, match="cv2"), driver_starting("the conf"):
        block_ran.set()
        raise ImportError("No module named 'cv2'")
    assert launched == [("the conf", True, "bovw-driver-launch")]


# --- progress --------------------------------------------------------------------------------

class _Job:
    def __init__(self, stage_ids, status):
        self.stageIds, self.status = stage_ids, status


class _Stage:
    def __init__(self, tasks, completed):
        self.numTasks, self.numCompletedTasks = tasks, completed


class FakeTracker:
    """pyspark's StatusTracker as bovw.spark.progress uses it."""

    def __init__(self):
        self.groups: dict[str, list[int]] = {}
        self.jobs: dict[int, _Job] = {}
        self.stages: dict[int, _Stage] = {}
        self.job_reads: list[int] = []

    def getJobIdsForGroup(self, group):  # noqa: N802 - pyspark's name
        return list(self.groups.get(group, []))

    def getJobInfo(self, job):  # noqa: N802
        self.job_reads.append(job)
        return self.jobs.get(job)

    def getStageInfo(self, stage):  # noqa: N802
        return self.stages.get(stage)


def test_tally_counts_the_tasks_of_the_group_jobs_started_since():
    tracker = FakeTracker()
    tracker.groups["g"] = [1, 2, 3]
    tracker.jobs = {2: _Job([20, 21], "SUCCEEDED"), 3: _Job([30, 31], "RUNNING")}
    # Stage 21 was skipped (its shuffle output reused): it never runs its 8 tasks.
    tracker.stages = {20: _Stage(4, 4), 21: _Stage(8, 0), 30: _Stage(6, 2), 31: _Stage(3, 0)}
    tally = JobTally(tracker, "g", ignored={1})

    assert tally.snapshot() == Snapshot(jobs=2, done=6, total=13)
    tracker.stages[30] = _Stage(6, 6)
    tracker.stages[31] = _Stage(3, 3)
    tracker.jobs[3] = _Job([30, 31], "SUCCEEDED")
    assert tally.snapshot() == Snapshot(jobs=2, done=13, total=13)
    # Finished jobs are read once: the tracker forgets old jobs.
    del tracker.jobs[2], tracker.jobs[3]
    tracker.job_reads.clear()
    assert tally.snapshot() == Snapshot(jobs=2, done=13, total=13)
    assert tracker.job_reads == []


def test_tally_of_a_job_the_tracker_no_longer_knows():
    tracker = FakeTracker()
    tracker.groups["g"] = [5]
    assert JobTally(tracker, "g").snapshot() == Snapshot(jobs=1, done=0, total=0)


@pytest.mark.parametrize("seconds, text", [(0, "0:00"), (59.9, "0:59"), (61, "1:01"),
                                           (3725, "1:02:05")])
def test_clock_text(seconds, text):
    assert clock_text(seconds) == text


def test_snapshot_text():
    assert Snapshot(jobs=1, done=3, total=8).text(75) == "3/8 tasks, 1 Spark job, 1:15"
    assert Snapshot(jobs=4, done=8, total=8).text(5) == "8/8 tasks, 4 Spark jobs, 0:05"


class FakeContext:
    """SparkContext's job-group properties and status tracker."""

    def __init__(self, tracker):
        self.tracker, self.properties = tracker, {}

    def getLocalProperty(self, key):  # noqa: N802
        return self.properties.get(key)

    def setLocalProperty(self, key, value):  # noqa: N802
        self.properties[key] = value

    def setJobGroup(self, group, description):  # noqa: N802
        self.properties["spark.jobGroup.id"] = group
        self.properties["spark.job.description"] = description

    def statusTracker(self):  # noqa: N802
        return self.tracker


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_output_prints_the_stage_line_then_a_line_every_so_often():
    tracker = FakeTracker()
    context = FakeContext(tracker)
    stream = io.StringIO()
    now = [100.0]
    progress = StageProgress(context, stream, interval=0.01, plain_every=30.0,
                             clock=lambda: now[0])
    with progress.stage("histograms"):
        group = context.properties["spark.jobGroup.id"]
        assert group.startswith("bovw-histograms-")
        tracker.groups[group] = [7]
        tracker.jobs[7] = _Job([70], "RUNNING")
        tracker.stages[70] = _Stage(40, 12)
        now[0] = 131.0
        _wait_for(lambda: "12/40" in stream.getvalue())
    assert stream.getvalue() == ("[bovw] histograms: running\n"
                                 "[bovw] histograms: 12/40 tasks, 1 Spark job, 0:31\n")
    assert context.properties["spark.jobGroup.id"] is None


def test_terminal_output_rewrites_one_line_per_stage():
    tracker = FakeTracker()
    context = FakeContext(tracker)
    stream = Terminal()
    now = [0.0]
    progress = StageProgress(context, stream, interval=0.01, clock=lambda: now[0])
    with pytest.raises(RuntimeError):
        with progress.stage("vocabulary"):
            group = context.properties["spark.jobGroup.id"]
            tracker.groups[group] = [1, 2]
            tracker.jobs = {1: _Job([10], "SUCCEEDED"), 2: _Job([11], "RUNNING")}
            tracker.stages = {10: _Stage(8, 8), 11: _Stage(8, 3)}
            now[0] = 42.0
            _wait_for(lambda: "11/16" in stream.getvalue())
            raise RuntimeError("the stage failed")
    written = stream.getvalue()
    assert written.startswith("[bovw] vocabulary: running\r")
    assert "\r[bovw] vocabulary: running  11/16 tasks, 2 Spark jobs, 0:42\x1b[K" in written
    assert written.endswith("\r[bovw] vocabulary: stopped  11/16 tasks, 2 Spark jobs, 0:42"
                            "\x1b[K\n")
    assert written.count("\n") == 1


def test_a_job_group_already_set_is_followed_and_kept():
    tracker = FakeTracker()
    context = FakeContext(tracker)
    context.setJobGroup("callers-group", "the caller's")
    tracker.groups["callers-group"] = [3]
    tracker.jobs[3] = _Job([30], "SUCCEEDED")
    tracker.stages[30] = _Stage(5, 5)
    stream = Terminal()
    with StageProgress(context, stream, interval=60).stage("reduction"):
        tracker.groups["callers-group"].append(4)
        tracker.jobs[4] = _Job([40], "SUCCEEDED")
        tracker.stages[40] = _Stage(2, 2)
    assert stream.getvalue().endswith("reduction: finished  2/2 tasks, 1 Spark job, 0:00"
                                      "\x1b[K\n")
    assert context.properties["spark.jobGroup.id"] == "callers-group"


def test_progress_reads_spark_s_own_status_tracker(spark):
    stream = Terminal()
    with StageProgress(spark.sparkContext, stream, interval=60).stage("descriptors"):
        spark.range(0, 1000, numPartitions=3).selectExpr("sum(id)").collect()
    final = stream.getvalue().rsplit("\r", 1)[1]
    assert re.fullmatch(r"\[bovw\] descriptors: finished  ([1-9]\d*)/\1 tasks, "
                        r"[1-9]\d* Spark jobs?, 0:\d\d\x1b\[K\n", final), final
    assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") is None


def _wait_for(condition, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_after_a_ctrl_c_the_driver_stderr_is_dropped(monkeypatch):
    # A Python worker whose task the cancel killed mid-batch prints a BrokenPipeError
    # trace through the driver's stderr, below bovw's one "interrupted" line.
    import threading

    from bovw.spark import console

    monkeypatch.setattr(console, "_SILENCED", threading.Event())

    class Stream(io.BytesIO):
        def __iter__(self):
            yield b"Error: before the Ctrl-C\n"
            console.silence_driver()
            yield b"Traceback (most recent call last):\n"
            yield b"BrokenPipeError: [Errno 32] Broken pipe\n"

    target = io.BytesIO()
    DriverStderr(Stream(), target).run()
    assert target.getvalue() == b"Error: before the Ctrl-C\n"


def test_the_ctrl_c_handler_silences_the_driver(monkeypatch):
    import signal
    import threading
    from types import SimpleNamespace

    from bovw.cli import interrupt
    from bovw.spark import console

    monkeypatch.setattr(console, "_SILENCED", threading.Event())
    cancelled = threading.Event()
    spark = SimpleNamespace(sparkContext=SimpleNamespace(cancelAllJobs=cancelled.set))
    previous = signal.getsignal(signal.SIGINT)
    try:
        interrupt.install(spark)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert console._SILENCED.is_set()
    assert cancelled.wait(5)


def test_the_driver_jvm_runs_in_a_session_of_its_own(spark):
    # A terminal's Ctrl-C signals its whole foreground process group: the JVM's Python
    # workers would each print a KeyboardInterrupt trace. Only bovw's process gets it.
    jvm = spark.sparkContext._gateway.proc
    assert os.getsid(jvm.pid) == jvm.pid
    assert os.getsid(jvm.pid) != os.getsid(0)

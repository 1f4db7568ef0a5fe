"""What the Spark driver that bovw starts prints on the console.

Left alone, a driver JVM prints Spark's start-up chatter and WARN lines that mean nothing
to a bovw user, and the JVM and native libraries write their own warnings straight to
stderr, where no log configuration reaches ("WARNING: Using incubator modules",
"netlib-blas: JNI_OnLoad: dlopen(libblas.so.3) failed"). A driver bovw launches therefore
logs through bovw/spark/log4j2.properties at spark.log_level (ERROR by default), and its stderr
goes through a thread that drops those few known lines and passes everything else on, so
errors still show. `--verbose` launches it as Spark does, untouched.

With spark.jars.packages (s3a's jars), Spark's dependency resolver (Ivy) writes its whole
report there as well: ~30 lines when the jars come, ~90 and a Java trace when a repository
cannot be reached. The filter holds that report back: dropped when the jars came, turned
into the one line of PackageResolutionError when they did not, and passed on unchanged
when it ends in a way the filter does not know.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from bovw.config.settings import LOG_LEVELS

__all__ = ["FETCHING", "LOG_CONFIG", "SPARK_DEFAULT_LEVEL", "DriverStderr",
           "PackageResolutionError", "console_level", "driver_starting", "is_noise",
           "launch_quiet_driver", "log_options", "silence_driver"]

LOG_CONFIG = Path(__file__).with_name("log4j2.properties")
# Spark's console level when it configures log4j itself (pyspark's driver).
SPARK_DEFAULT_LEVEL = "WARN"

# Lines a driver JVM writes to stderr outside its log: the JVM's own start-up warnings,
# the BLAS loader's failed dlopen, and Spark's notes on its default log profile.
_NOISE = re.compile(r"WARNING: |netlib-blas: |Using Spark's default log4j profile|"
                    r"Setting default log level to|To adjust logging level use")
_FLUSH_TIMEOUT = 5.0
# Ivy's report: its first line (a spark.jars.repositories note comes before it), the last
# line of a resolution that got every jar, and the exception SparkSubmit ends with when
# one is missing, followed by its stack trace.
_IVY_START = re.compile(r":: loading settings :: |\S+ added as a remote repository with the name: ")
_IVY_DONE = re.compile(r"\t\d+ artifacts copied, ")
_IVY_FAILED = re.compile(r'Exception in thread "main" java\.lang\.RuntimeException: '
                         r"\[(unresolved dependency: .*)\]\s*$")
_IVY_HOST = re.compile(r"\s*Host (\S+) not found\. ")
_TRACE = re.compile(r"\s+at |\s*\.\.\. \d+ more")


# What the console shows instead of Ivy's report.
FETCHING = ("[bovw] spark: fetching spark.jars.packages with Spark's Ivy (a first download "
            "can take minutes; --verbose shows its report)\n")


# Set once the command is stopping on a Ctrl-C (bovw.cli.interrupt): what the driver
# writes from then on is the cancelled jobs' aftermath (a Python worker's BrokenPipeError
# trace when its task is killed mid-batch), which bovw's one line already covers.
_SILENCED = threading.Event()


def silence_driver() -> None:
    """Drop everything the driver launched by launch_quiet_driver writes to stderr from now
    on (a --verbose driver's stderr is not filtered, and stays as it is)."""
    _SILENCED.set()


class PackageResolutionError(RuntimeError):
    """spark.jars.packages could not be resolved; the message says which and where from."""


def is_noise(line: str) -> bool:
    """True for a driver stderr line that a normal run does not show."""
    return _NOISE.match(line) is not None


def log_options(level: str) -> str:
    """The driver JVM flags that log through bovw's log4j2 configuration at `level`."""
    return f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()} -Dbovw.log.level={level}"


def console_level(level: str, verbose: bool) -> str:
    """The log level to apply: `level`, or with `verbose` at least Spark's own default."""
    if not verbose:
        return level
    return min(level, SPARK_DEFAULT_LEVEL, key=LOG_LEVELS.index)


class DriverStderr(threading.Thread):
    """Copies the lines of a pipe to `target`, less the noise and Ivy's report, until the
    pipe closes. `unresolved` then says what Ivy could not resolve, if it failed.

    Ivy runs before the driver starts: once it has (`started`), or when the pipe closes,
    a report the filter still holds (one that ended in a way it does not know) is passed
    on whole, and nothing after it is held back."""

    def __init__(self, source: BinaryIO, target: BinaryIO):
        super().__init__(name="bovw-driver-stderr", daemon=True)
        self.source, self.target = source, target
        self.unresolved = ""
        self._report: list[bytes] | None = None
        self._in_trace = False
        self._starting = True
        self._lock = threading.Lock()

    def run(self) -> None:
        with self.source:
            for raw in self.source:
                with self._lock:
                    self._take(raw)
        self.started()

    def started(self) -> None:
        """The driver is up: pass on a report still held, and hold nothing from now on."""
        with self._lock:
            self._starting = False
            if self._report:
                self._write(b"".join(self._report))
            self._report = None

    def _take(self, raw: bytes) -> None:
        if _SILENCED.is_set():
            return
        line = raw.decode(errors="replace")
        if self._report is not None:
            failed = _IVY_FAILED.match(line)
            if failed:
                self.unresolved = _unresolved_text(failed.group(1), self._report)
                self._report, self._in_trace = None, True
            elif _IVY_DONE.match(line):
                self._report = None
            else:
                self._report.append(raw)
            return
        if self._in_trace and _TRACE.match(line):
            return
        self._in_trace = False
        if self._starting and _IVY_START.match(line):
            self._report = [raw]
            # Held back, the report would leave a first download (the AWS SDK bundle is
            # hundreds of MB) silent for minutes.
            self._write(FETCHING.encode())
        elif not is_noise(line):
            self._write(raw)

    def _write(self, data: bytes) -> None:
        self.target.write(data)
        self.target.flush()


def _unresolved_text(missing: str, report: list[bytes]) -> str:
    """What Ivy could not resolve, and the repository hosts it could not reach."""
    hosts = sorted({match.group(1) for raw in report
                    if (match := _IVY_HOST.match(raw.decode(errors="replace")))})
    unreachable = f" (could not reach {', '.join(hosts)})" if hosts else ""
    return missing + unreachable


def launch_quiet_driver(conf, target: BinaryIO | None = None) -> None:
    """Start pyspark's driver JVM (its py4j gateway) for the SparkConf `conf`, with its
    stderr filtered into `target` (default: this process's file descriptor 2, where the
    JVM's stderr would have gone, whatever sys.stderr is now); the next SparkContext
    uses it. Does nothing when a gateway already runs. Raises what pyspark's
    launch_gateway raises when the JVM exits while starting, once the JVM's own last
    words have been passed on, or PackageResolutionError when it exited because
    spark.jars.packages could not be resolved."""
    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None:
        return
    read_end, write_end = os.pipe()
    # Reading starts before the JVM does: a full pipe would otherwise stall its start.
    forwarder = DriverStderr(os.fdopen(read_end, "rb"),
                             target or os.fdopen(os.dup(2), "wb", buffering=0))
    forwarder.start()
    try:
        # The JVM in a session of its own: a terminal's Ctrl-C reaches the whole foreground
        # process group, and the Python workers the JVM forks reset SIGINT to raise
        # KeyboardInterrupt, each printing its traceback over bovw's one line. bovw's
        # handler cancels the jobs instead (bovw.cli.interrupt). The JVM still ends with
        # this process: it exits when its stdin, a pipe from here, closes.
        gateway = launch_gateway(conf, popen_kwargs={"stderr": write_end,
                                                     "start_new_session": True})
    except BaseException as error:
        os.close(write_end)
        forwarder.join(_FLUSH_TIMEOUT)
        if forwarder.unresolved and isinstance(error, Exception):
            raise PackageResolutionError(forwarder.unresolved) from error
        raise
    os.close(write_end)  # the JVM holds its own copy; the pipe ends when the JVM does
    forwarder.started()
    SparkContext._ensure_initialized(gateway=gateway)


@contextmanager
def driver_starting(conf, target: BinaryIO | None = None) -> Iterator[None]:
    """launch_quiet_driver(conf, target) on a thread of its own while the block runs, and
    waited for as the block ends: the block is the caller's work that needs no JVM (a
    command's imports), done while the JVM boots instead of after it. At the start of a
    `bovw run` on this 2-core machine, its modules and the report's matplotlib (0.8 s)
    load within the JVM's launch (0.9-1.1 s), most of which pyspark spends sleeping until
    the JVM's connection file appears.

    Raises what launch_quiet_driver raises, once the block is done; an error of the block
    itself wins, raised once the launch has ended too, so that no JVM is left starting
    behind it (the JVM ends with this process either way). Start it with SIGINT held
    (bovw.cli.interrupt.held), as the launch itself: its thread keeps SIGINT blocked.
    """
    failure: list[BaseException] = []

    def launch() -> None:
        try:
            launch_quiet_driver(conf, target)
        except BaseException as error:  # handed to the caller's thread, raised there
            failure.append(error)

    thread = threading.Thread(target=launch, name="bovw-driver-launch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
    if failure:
        raise failure[0]

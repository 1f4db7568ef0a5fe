"""What the Spark driver that bovw starts prints on the console.

Left alone, a driver JVM prints Spark's start-up chatter and WARN lines that mean nothing
to a bovw user, and the JVM and native libraries write their own warnings straight to
stderr, where no log configuration reaches ("WARNING: Using incubator modules",
"netlib-blas: JNI_OnLoad: dlopen(libblas.so.3) failed"). A driver bovw launches therefore
logs through bovw/spark/log4j2.properties at spark.log_level (ERROR by default), and its stderr
goes through a thread that drops those few known lines and passes everything else on, so
errors still show. `--verbose` launches it as Spark does, untouched.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import BinaryIO

from bovw.config.settings import LOG_LEVELS

__all__ = ["LOG_CONFIG", "SPARK_DEFAULT_LEVEL", "console_level", "is_noise", "launch_quiet_driver",
           "log_options"]

LOG_CONFIG = Path(__file__).with_name("log4j2.properties")
# Spark's console level when it configures log4j itself (pyspark's driver).
SPARK_DEFAULT_LEVEL = "WARN"

# Lines a driver JVM writes to stderr outside its log: the JVM's own start-up warnings,
# the BLAS loader's failed dlopen, and Spark's notes on its default log profile.
_NOISE = re.compile(r"WARNING: |netlib-blas: |Using Spark's default log4j profile|"
                    r"Setting default log level to|To adjust logging level use")
_FLUSH_TIMEOUT = 5.0


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


class _Forwarder(threading.Thread):
    """Copies the lines of a pipe to `target`, less the noise, until the pipe closes."""

    def __init__(self, source: BinaryIO, target: BinaryIO):
        super().__init__(name="bovw-driver-stderr", daemon=True)
        self.source, self.target = source, target

    def run(self) -> None:
        with self.source:
            for raw in self.source:
                if not is_noise(raw.decode(errors="replace")):
                    self.target.write(raw)
                    self.target.flush()


def launch_quiet_driver(conf, target: BinaryIO | None = None) -> None:
    """Start pyspark's driver JVM (its py4j gateway) for the SparkConf `conf`, with its
    stderr filtered into `target` (default: this process's file descriptor 2, where the
    JVM's stderr would have gone, whatever sys.stderr is now); the next SparkContext
    uses it. Does nothing when a gateway already runs. Raises what pyspark's
    launch_gateway raises when the JVM exits while starting, once the JVM's own last
    words have been passed on."""
    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None:
        return
    read_end, write_end = os.pipe()
    # Reading starts before the JVM does: a full pipe would otherwise stall its start.
    forwarder = _Forwarder(os.fdopen(read_end, "rb"),
                           target or os.fdopen(os.dup(2), "wb", buffering=0))
    forwarder.start()
    try:
        gateway = launch_gateway(conf, popen_kwargs={"stderr": write_end})
    except BaseException:
        os.close(write_end)
        forwarder.join(_FLUSH_TIMEOUT)
        raise
    os.close(write_end)  # the JVM holds its own copy; the pipe ends when the JVM does
    SparkContext._ensure_initialized(gateway=gateway)

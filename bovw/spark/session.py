"""Building the SparkSession from the configuration, after checking for a usable JDK."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from bovw.config import Config, ConfigError, SparkSettings
from bovw.config.log_masking import mask_in_logs
from bovw.config.redaction import Redactor
from bovw.errors import JavaError, SparkStartError
from bovw.spark.console import (
    PackageResolutionError,
    console_level,
    driver_starting,
    log_options,
)
from bovw.spark.jvm import hadoop_configuration, java_causes
from bovw.spark.workers import local_cores, python_while_starting, worker_python

__all__ = ["HOT_PACKAGES", "JAVA_INSTALL_HINT", "SUPPORTED_JAVA", "build_session",
           "check_driver_memory", "check_java", "check_master", "check_yarn_configuration",
           "class_archive_option", "find_java", "java_major_version", "jit_threshold_options",
           "local_driver_options", "spark_properties"]

SUPPORTED_JAVA = (17, 21)
JAVA_INSTALL_HINT = (
    "install one with: sudo apt-get install -y openjdk-17-jre-headless (Debian/Ubuntu) "
    "or sudo dnf install -y java-17-amazon-corretto-headless (Amazon Linux 2023) "
    "or sudo yum install -y java-17-amazon-corretto-headless (Amazon Linux 2), "
    "then set JAVA_HOME if several are installed"
)




def java_major_version(version_output: str) -> int | None:
    """The major version in `java -version` output ("1.8.0_392" -> 8, "17.0.9" -> 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):
        return int(match.group(2))
    return major


def find_java(java_home: str | None) -> str | None:
    """The java executable: $JAVA_HOME/bin/java when given, else the first on PATH."""
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        return str(candidate) if candidate.is_file() else None
    return shutil.which("java")


def check_java(java_home: str | None) -> int:
    """Return the JDK's major version, or raise JavaError with the command that fixes it."""
    java = find_java(java_home)
    if java is None:
        where = f"JAVA_HOME={java_home} has no bin/java" if java_home else "no java on PATH"
        raise JavaError(f"Spark 4 needs Java 17 or 21, but {where}; {JAVA_INSTALL_HINT}")
    try:
        completed = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise JavaError(f"could not run {java} -version ({error}); {JAVA_INSTALL_HINT}") from None
    major = java_major_version(completed.stderr + completed.stdout)
    if major is None or major < min(SUPPORTED_JAVA):
        found = f"Java {major}" if major else "an unrecognised Java"
        raise JavaError(
            f"Spark 4 needs Java 17 or 21, found {found} at {java}; {JAVA_INSTALL_HINT}"
        )
    return major


def spark_properties(settings: SparkSettings) -> dict[str, str]:
    """Every Spark property the configuration sets, as strings."""
    properties = {
        "spark.master": settings.master,
        "spark.app.name": settings.app_name,
        "spark.driver.memory": settings.driver_memory,
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(settings.arrow_batch_size),
        "spark.sql.files.openCostInBytes": str(settings.open_cost_bytes),
        "spark.sql.files.maxPartitionBytes": str(settings.max_partition_bytes),
        "spark.sql.adaptive.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        # Pivot output and histograms are wide rows; the generated code for them is
        # larger than Java's 8 KB JIT limit, which would otherwise disable JIT.
        "spark.sql.codegen.hugeMethodLimit": "65535",
        # Hadoop's default local filesystem opens a ".<name>.crc" sidecar with every file,
        # and cannot even name it for a file called "a:b.jpg": the whole job failed. The
        # raw local filesystem reads and writes the same files without checksum sidecars.
        "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
    }
    cores = local_cores(settings.master)
    if cores:
        # At least two tasks per core for what Spark would split finer than its input
        # files or coalesce coarser than its shuffle. On 2 cores fruits360-dev's 15.5k
        # images otherwise scanned as 3 full partitions and one of 118 images, and the
        # histograms as 3 of 7,744/5,852/1,953 rows: the third waited for a free core in
        # each of the stages that follow. 2 x cores: 4 and 5 even partitions, and a `bovw
        # run` 2.2 s shorter (paired over 3 runs, 1.0-3.4 s). Larger inputs are split by
        # spark.sql.files.maxPartitionBytes and the shuffle's size as before.
        spread = str(2 * cores)
        properties["spark.sql.files.minPartitionNum"] = spread
        properties["spark.sql.adaptive.coalescePartitions.minPartitionNum"] = spread
    properties.update(settings.conf)
    return properties


def class_archive_option(archive_dir: Path, java: str, spark_version: str,
                         spark_home: str = "") -> str:
    """The JVM flag that reads the class-data archive in `archive_dir`, or writes it at exit
    when it is not there yet.

    The archive is named after the JVM, the Spark version and the folder of Spark's jars
    (`spark_home`), so an upgrade of either gets a new one instead of a stale one, and so
    does another installation: the JVM silently ignores an archive made with another
    class path (another virtualenv's pyspark), which would then never be written again.
    The JVM writes an archive's header after its contents, and refuses (silently) any file
    whose header does not check, so a run that starts while another is still writing
    simply goes without.
    """
    installation = f"{os.path.realpath(java)}|{spark_version}"
    if spark_home:
        installation += f"|{os.path.realpath(spark_home)}"
    key = hashlib.sha256(installation.encode()).hexdigest()[:16]
    archive = archive_dir / f"spark-{key}.jsa"
    # CDS logs a warning for every class it cannot archive; none of them matters here.
    quiet = "-Xlog:cds=off -Xlog:cds+dynamic=off"
    if archive.is_file() and archive.stat().st_size > 0:
        return f"-XX:SharedArchiveFile={_option_value(str(archive))} {quiet}"
    archive_dir.mkdir(parents=True, exist_ok=True)
    return f"-XX:ArchiveClassesAtExit={_option_value(str(archive))} {quiet}"


def _option_value(value: str) -> str:
    """`value` as one word of spark.driver.extraJavaOptions.

    Spark's launcher splits that string at white space, except inside double quotes, where
    a backslash escapes the next character. Unquoted, a folder such as "/home/Ann Lee"
    split the flag in two and the JVM took the second half for its main class: no run
    could start.
    """
    if not re.search(r"[\s\"'\\]", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# HotSpot's defaults for when a method (or loop) moves to C2, the optimising compiler.
_C2_THRESHOLDS = {"Tier4InvocationThreshold": 5000, "Tier4MinInvocationThreshold": 600,
                  "Tier4CompileThreshold": 15000, "Tier4BackEdgeThreshold": 40000}


# Code that keeps HotSpot's own thresholds under a raised scale: Spark ML's numeric loops
# (KMeans, LBFGS, IDF) and the BLAS they call, which runs on the incubating Vector API.
# Only C2 turns Vector API calls into vector instructions; before it, every call builds
# objects, and KMeans's first Lloyd iteration took 2.2 s of each of its first two tasks
# against 0.4-0.5 s later on. With these at the default and the rest at 20x, whole runs on
# fruits360-dev took 55.0 s against 57.9 s (medians of 4, paired in turn: 0.955x).
HOT_PACKAGES = ("dev.ludovic.netlib.blas", "jdk.incubator.vector", "org.apache.spark.ml",
                "org.apache.spark.mllib")


def jit_threshold_options(scale: int) -> str:
    """JVM flags that raise the C2 compilation thresholds `scale` times ("" for 1), except
    for the methods of HOT_PACKAGES, whose per-method scaling (1 / scale) undoes it."""
    if scale == 1:
        return ""
    raised = [f"-XX:{name}={value * scale}" for name, value in _C2_THRESHOLDS.items()]
    # "quiet" first: HotSpot prints every CompileCommand it reads after it on stdout.
    kept = ["-XX:CompileCommand=quiet"] + [
        f"-XX:CompileCommand=CompileThresholdScaling,{package}.*::*,{1 / scale:.6g}"
        for package in HOT_PACKAGES]
    return " ".join(raised + kept)


_COLLECTOR_FLAG = re.compile(r"-XX:\+Use\w+GC\b")


def local_driver_options(settings: SparkSettings, given: str, java: str,
                         spark_version: str, spark_home: str = "") -> str:
    """The driver JVM flags for a local-mode JVM that bovw starts: the JIT thresholds, the
    class archive and the garbage collector that `settings` ask for, then the `given` ones
    (spark.driver.extraJavaOptions), last so that they win: HotSpot keeps a flag's last
    value."""
    options = [jit_threshold_options(settings.jit_threshold_scale)]
    if settings.class_archive_dir:
        options.append(class_archive_option(Path(settings.class_archive_dir).expanduser(),
                                            java, spark_version, spark_home))
    # HotSpot refuses to start with two collectors: one the user names is the one.
    if settings.gc == "parallel" and not _COLLECTOR_FLAG.search(given):
        options.append("-XX:+UseParallelGC")
    options.append(given.strip())
    return " ".join(option for option in options if option)


# The master URLs spark-submit and SparkContext accept (SparkContext.createTaskScheduler).
_MASTERS = (r"local", r"local\[(\d+|\*)\]", r"local\[(\d+|\*)\s*,\s*\d+\]",
            r"local-cluster\[\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\]",
            r"spark://[^:/,]+:\d+(,[^:/,]+:\d+)*", r"yarn", r"k8s://.+")
# spark-submit gives spark.driver.memory to the JVM as -Xmx, which wants a unit.
_JVM_SIZE = re.compile(r"\d+[kKmMgGtT]")


def check_master(master: str, timeout: float = 5.0) -> None:
    """Raise ConfigError for a master URL Spark cannot parse, and SparkStartError when no
    master of a spark://HOST:PORT[,HOST:PORT] URL accepts a connection."""
    threads = re.fullmatch(r"local\[(\d+)(\s*,\s*\d+)?\]", master)
    if threads and int(threads.group(1)) == 0:
        raise ConfigError(f"spark.master {master!r} asks for 0 threads; fix: local[N] with "
                          "N >= 1, or local[*] for every core")
    if not any(re.fullmatch(pattern, master) for pattern in _MASTERS):
        raise ConfigError(
            f"spark.master {master!r} is not a Spark master URL; fix: use local[N] (N cores, "
            "* for all), spark://HOST:PORT (a standalone cluster), yarn or k8s://HOST:PORT")
    if not master.startswith("spark://"):
        return
    failures = []
    for address in master.removeprefix("spark://").split(","):
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return
        except OSError as error:
            failures.append(f"{address}: {error.strerror or error}")
    raise SparkStartError(
        f"cannot reach the Spark master at {'; '.join(failures)}; fix: start the master "
        "(sbin/start-master.sh) or correct --master")


def check_yarn_configuration(master: str, environ: Mapping[str, str]) -> None:
    """Raise SparkStartError when `master` is yarn and the environment names no Hadoop
    configuration: Spark's JVM would fail with a page of Java trace."""
    if master == "yarn" and not (environ.get("HADOOP_CONF_DIR") or environ.get("YARN_CONF_DIR")):
        raise SparkStartError(
            "spark.master yarn needs the cluster's Hadoop configuration, and neither "
            "HADOOP_CONF_DIR nor YARN_CONF_DIR is set; fix: set one to the folder of its "
            "*-site.xml files, run on the cluster (spark-submit jobs/pipeline.py, or bovw emr "
            "submit), or pass --master local[N] to run here")


def check_driver_memory(properties: Mapping[str, str]) -> None:
    """Raise ConfigError when spark.driver.memory is not a size the JVM reads."""
    memory = properties.get("spark.driver.memory", "")
    if memory and not (_JVM_SIZE.fullmatch(memory) and int(memory[:-1]) > 0):
        raise ConfigError(
            f"spark.driver_memory {memory!r} is not a JVM memory size; fix: a whole number "
            "above 0 and a unit k, m, g or t, e.g. 4g")


def _hidden_properties(properties: Mapping[str, str], redactor: Redactor) -> dict[str, str]:
    # pyspark starts its JVM with every builder property as a `--conf key=value` word,
    # visible to every local user in the process list. Hadoop settings can be applied to
    # the live configuration instead (Spark SQL copies it into every read and write).
    return {key: value for key, value in properties.items()
            if key.startswith("spark.hadoop.") and redactor.secret_property(key, value)}


def _start_error(error: Exception, properties: Mapping[str, str]) -> SparkStartError:
    causes = java_causes(error)
    if causes:
        root = causes[-1]
        if root.simple_name == "BindException":
            fix = ("another program holds the port: stop it, or set a free one with "
                   "--set spark.conf.spark.driver.port=PORT (or leave it unset), and check "
                   "spark.driver.bindAddress")
        else:
            fix = "correct the Spark setting it names (--set spark.conf.KEY=VALUE or the config)"
        return SparkStartError(f"Spark could not start: {root}; fix: {fix}")
    hint = ("spark.jars.packages could not be downloaded (no Maven access?): set s3.jars_dir "
            "to a folder with the jars, or " if "spark.jars.packages" in properties else "")
    return SparkStartError(
        "Spark's JVM exited while starting (its own message is above); fix: "
        f"{hint}check spark.driver_memory, the spark.conf settings and JAVA_HOME")


def build_session(config: Config, java_home: str | None = None,
                  extra: Mapping[str, str] | None = None, submitted: bool = False,
                  verbose: bool = False, environ: Mapping[str, str] | None = None,
                  meanwhile: Callable[[], object] = lambda: None):
    """Check Java, then get or create the SparkSession configured by `config`.

    `extra` adds properties decided at run time (e.g. S3 credentials), never saved.
    `submitted` means spark-submit started the JVM: its --master, --driver-memory and
    --conf flags (and spark-defaults.conf) then win over the config file. Secret
    `spark.hadoop.*` properties (by the config's redaction rules) are set on the live
    Hadoop configuration, never on the JVM's command line. A driver JVM started here logs
    at spark.log_level and keeps its start-up noise off the console (bovw.spark.console);
    `verbose` starts it as Spark does, logging at WARN or more. Returns a
    pyspark.sql.SparkSession; raises JavaError, ConfigError or SparkStartError, each one
    line with its fix. `environ` is the process environment (default os.environ).
    `meanwhile` is called once before the SparkContext starts: while a driver JVM started
    here boots (bovw.spark.console.driver_starting), for work that needs no Spark (the
    command's imports).
    """
    import pyspark
    from py4j.protocol import Py4JJavaError
    from pyspark import SparkConf
    from pyspark.errors import PySparkRuntimeError
    from pyspark.errors.exceptions.captured import CapturedException
    from pyspark.sql import SparkSession

    already_set: set[str] = set()
    properties = spark_properties(config.spark)
    environ = os.environ if environ is None else environ
    python = None
    if submitted:
        already_set = {key for key, _value in SparkConf().getAll()}
    else:
        check_java(java_home)
        check_master(properties["spark.master"])
        check_yarn_configuration(properties["spark.master"], environ)
        check_driver_memory(properties)
        key = "spark.driver.extraJavaOptions"
        options = properties.get(key, "")
        python = worker_python(config.spark.conf, environ,
                               config.spark.master.startswith("local"))
        if config.spark.master.startswith("local"):
            options = local_driver_options(config.spark, options,
                                           find_java(java_home) or "java", pyspark.__version__,
                                           os.path.dirname(pyspark.__file__))
        if not verbose:
            # First, so that a log4j2 configuration of the user's own wins.
            options = f"{log_options(config.spark.log_level)} {options}".strip()
        if options:
            properties[key] = options
    wanted = {key: value for key, value in {**properties, **(extra or {})}.items()
              if key not in already_set}
    redactor = config.redactor()
    # py4j logs every value it sends the JVM at DEBUG.
    mask_in_logs(*(str(value) for key, value in wanted.items()
                   if redactor.secret_property(key, value)))
    hidden = _hidden_properties(wanted, redactor)
    shown = {key: value for key, value in wanted.items() if key not in hidden}
    builder = SparkSession.builder
    for key, value in shown.items():
        builder = builder.config(key, value)
    try:
        with python_while_starting(python):
            if not submitted and not verbose:
                with driver_starting(SparkConf(loadDefaults=False).setAll(list(shown.items()))):
                    meanwhile()
            else:
                meanwhile()
            session = builder.getOrCreate()
    except (Py4JJavaError, CapturedException) as error:
        raise _start_error(error, wanted) from error
    except PySparkRuntimeError as error:
        if error.getCondition() != "JAVA_GATEWAY_EXITED":
            raise
        raise _start_error(error, wanted) from error
    except PackageResolutionError as error:
        raise SparkStartError(
            f"Spark could not fetch spark.jars.packages: {error}; fix: give this machine "
            "access to Maven Central (or the spark.jars.repositories named), or download the "
            "jars and set s3.jars_dir to their folder (s3a's jars) or spark.conf.spark.jars"
        ) from error
    hadoop_conf = hadoop_configuration(session)
    for key, value in hidden.items():
        hadoop_conf.set(key.removeprefix("spark.hadoop."), value)
    session.sparkContext.setLogLevel(console_level(config.spark.log_level, verbose))
    if not submitted:  # under spark-submit, its --conf values win over the config's
        _check_sql_settings(session, config.spark.conf, redactor)
    return session


def _check_sql_settings(session, conf: Mapping[str, str], redactor: Redactor) -> None:
    """Raise ConfigError for a spark.sql.* setting Spark refuses (a word where it wants a
    number): Spark checks one only when a query first reads it, mid-run, in a traceback;
    set again here (the same value), each is checked at once."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors.exceptions.captured import CapturedException

    for key, value in conf.items():
        if not key.startswith("spark.sql."):
            continue
        try:
            # A static one (spark.sql.warehouse.dir) cannot be set again: Spark took it at
            # start. (Asking reads the value, which is checked too.)
            if session.conf.isModifiable(key):
                session.conf.set(key, value)
        except (Py4JJavaError, CapturedException) as error:
            causes = java_causes(error)
            reason = causes[-1].message if causes else str(error).splitlines()[0]
            said = "" if redactor.secret_property(key, value) else f": {reason}"
            raise ConfigError(f"spark.conf.{key} is refused by Spark{said}; fix: correct it "
                              "(--set spark.conf.KEY=VALUE or the config)") from None

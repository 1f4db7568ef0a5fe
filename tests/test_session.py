"""Java detection and the Spark properties derived from the configuration."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest

from bovw.config import ConfigError, SparkSettings, load_config
from bovw.config.redaction import Redactor
from bovw.errors import JavaError
from bovw.spark.jvm import driver_jvm
from bovw.spark.session import (
    HOT_PACKAGES,
    check_java,
    class_archive_option,
    find_java,
    java_major_version,
    jit_threshold_options,
    local_driver_options,
    spark_properties,
)
from bovw.spark.workers import local_cores, python_while_starting, worker_python
from tests.cluster_fixtures import REPO_ROOT, subprocess_environment


@pytest.mark.parametrize("output, major", [
    ('openjdk version "17.0.15" 2025-04-15', 17),
    ('java version "1.8.0_392"', 8),
    ('openjdk version "21" 2023-09-19', 21),
    ("no version here", None),
])
def test_java_major_version(output, major):
    assert java_major_version(output) == major


def test_missing_java_names_the_install_command(tmp_path):
    with pytest.raises(JavaError) as error:
        check_java(str(tmp_path))
    message = str(error.value)
    expected = f"Spark 4 needs Java 17 or 21, but JAVA_HOME={tmp_path} has no bin/java"
    assert message.startswith(expected)
    assert "sudo apt-get install -y openjdk-17-jre-headless" in message
    assert "sudo dnf install -y java-17-amazon-corretto-headless" in message
    assert "\n" not in message


def test_old_java_is_refused(tmp_path):
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text('#!/bin/sh\necho \'java version "1.8.0_392"\' >&2\n')
    java.chmod(0o755)
    with pytest.raises(JavaError, match=r"found Java 8 at .*/bin/java; install one with"):
        check_java(str(tmp_path))


def test_installed_java_is_accepted():
    assert check_java(None) >= 17


def test_spark_properties_from_settings():
    properties = spark_properties(SparkSettings(master="local[2]", conf={"spark.x": "1"}))
    assert properties["spark.master"] == "local[2]"
    assert properties["spark.x"] == "1"
    assert properties["spark.sql.files.openCostInBytes"] == "8192"


@pytest.mark.parametrize(("master", "cores"), [
    ("local", 1), ("local[2]", 2), ("local[3, 2]", 3), ("local[*]", os.cpu_count()),
    ("spark://h:7077", None), ("yarn", None), ("k8s://https://h:6443", None)])
def test_local_cores(master, cores):
    assert local_cores(master) == cores


def test_the_workers_python_is_the_configured_one_else_the_variable_else_this_one():
    configured = {"spark.pyspark.python": "/opt/py/bin/python"}
    variable = {"PYSPARK_PYTHON": "/env/python"}
    assert worker_python(configured, variable, local=True) == "/opt/py/bin/python"
    assert worker_python(configured, {}, local=False) == "/opt/py/bin/python"
    assert worker_python({}, variable, local=True) == "/env/python"
    assert worker_python({}, {}, local=True) == sys.executable
    assert worker_python({}, {}, local=False) is None


@pytest.mark.parametrize("before", [None, "/env/python"])
def test_the_workers_python_variable_is_set_while_the_context_starts_only(before,
                                                                          monkeypatch):
    if before is None:
        monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    else:
        monkeypatch.setenv("PYSPARK_PYTHON", before)
    with python_while_starting("/opt/py/bin/python"):
        assert os.environ["PYSPARK_PYTHON"] == "/opt/py/bin/python"
    assert os.environ.get("PYSPARK_PYTHON") == before
    with pytest.raises(RuntimeError), python_while_starting("/opt/py/bin/python"):
        raise RuntimeError("the JVM did not start")
    assert os.environ.get("PYSPARK_PYTHON") == before
    with python_while_starting(None):  # pyspark's default: the variable as it is
        assert os.environ.get("PYSPARK_PYTHON") == before


_WORKER_PYTHON = """
import os, sys
from bovw.config import load_config
from bovw.spark.session import build_session

config = load_config(None, {"spark.master": "local[1]", "spark.class_archive_dir": "",
                            "spark.conf": {"spark.pyspark.python": sys.argv[1],
                                           "spark.ui.enabled": "false"}})

def wrapped(spark):
    return spark.range(1).rdd.map(lambda _: os.environ.get("BOVW_WRAPPED", "not")).first()


# The command's own work (its imports) runs while the driver JVM starts, before any context.
import threading
from pyspark import SparkContext
seen = []
spark = build_session(config, meanwhile=lambda: seen.append(
    (SparkContext._active_spark_context is None,
     [thread.name for thread in threading.enumerate()].count("bovw-driver-launch"))))
print(seen)
print(wrapped(spark), os.environ.get("PYSPARK_PYTHON", "unset"))
spark.stop()
# A later session of the process, without the setting: this interpreter's workers.
config = load_config(None, {"spark.master": "local[1]", "spark.class_archive_dir": "",
                            "spark.conf": {"spark.ui.enabled": "false"}})
print(wrapped(build_session(config)), os.environ.get("PYSPARK_PYTHON", "unset"))
"""


def test_a_local_session_s_workers_run_the_configured_python_and_that_session_s_only(
        tmp_path):
    # (and the caller's `meanwhile` runs once, while the JVM is being launched)
    # spark.pyspark.python was silently ignored: a JVM that pyspark starts itself takes the
    # workers' Python from $PYSPARK_PYTHON, which bovw set to its own interpreter.
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nBOVW_WRAPPED=yes exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    env = {key: value for key, value in subprocess_environment().items()
           if key != "PYSPARK_PYTHON"}
    done = subprocess.run([sys.executable, "-c", _WORKER_PYTHON, str(wrapper)],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300)
    # The variable, which pyspark reads as the SparkContext starts, is set for that only:
    # left set, a later session without the setting ran its workers through the wrapper.
    assert (done.returncode, done.stdout) == (0, "[(True, 1)]\nyes unset\nnot unset\n"), (
        done.stderr[-2000:])


_SPREAD = ("spark.sql.files.minPartitionNum",
           "spark.sql.adaptive.coalescePartitions.minPartitionNum")


def test_local_masters_ask_for_two_partitions_per_core():
    every = str(2 * os.cpu_count())
    for master, spread in (("local[2]", "4"), ("local", "2"), ("local[*]", every)):
        properties = spark_properties(SparkSettings(master=master))
        assert [properties[key] for key in _SPREAD] == [spread, spread], master
    assert not set(_SPREAD) & set(spark_properties(SparkSettings(master="yarn")))
    mine = spark_properties(SparkSettings(master="local[2]", conf={_SPREAD[0]: "16"}))
    assert mine[_SPREAD[0]] == "16"


def test_a_small_scan_is_split_into_two_partitions_per_core(spark, tmp_path):
    # 8 files of 10 KB (18 KB each with the 8 KB open cost): Spark's split is the total
    # over spark.sql.files.minPartitionNum. On local[2] that was 2 partitions of 4 files,
    # where one core waits when a third task comes; it is now 4 of 2.
    for index in range(8):
        (tmp_path / f"f{index}.bin").write_bytes(bytes(10_000))
    files = spark.read.format("binaryFile").load(str(tmp_path))
    assert files.rdd.getNumPartitions() == 4


def test_python_workers_run_this_interpreter(spark):
    def interpreter(_rows):
        import sys

        yield sys.executable

    ran = spark.sparkContext.parallelize([1], 1).mapPartitions(interpreter).collect()
    assert ran == [sys.executable]


def test_class_archive_is_written_first_then_read(tmp_path):
    folder = tmp_path / "cache" / "bovw"
    write = shlex.split(class_archive_option(folder, "/usr/bin/java", "4.3.0"))
    assert write[0].startswith(f"-XX:ArchiveClassesAtExit={folder}/spark-")
    assert folder.is_dir() and not list(folder.iterdir())
    archive = write[0].split("=", 1)[1]
    with open(archive, "wb") as made_by_the_jvm:
        made_by_the_jvm.write(b"CDS")
    assert shlex.split(class_archive_option(folder, "/usr/bin/java", "4.3.0"))[0] == (
        f"-XX:SharedArchiveFile={archive}")
    # Another Spark (or JVM) gets its own archive, never a stale one.
    assert class_archive_option(folder, "/usr/bin/java", "4.4.0").startswith(
        "-XX:ArchiveClassesAtExit=")


def test_each_spark_installation_has_its_own_class_archive(tmp_path):
    # The JVM refuses an archive made with another class path, silently: a second
    # virtualenv must write its own instead of never having one.
    first = class_archive_option(tmp_path, "/usr/bin/java", "4.3.0", "/venv-a/pyspark")
    open(shlex.split(first)[0].split("=", 1)[1], "wb").write(b"CDS")
    assert class_archive_option(tmp_path, "/usr/bin/java", "4.3.0", "/venv-a/pyspark"
                                ).startswith("-XX:SharedArchiveFile=")
    assert class_archive_option(tmp_path, "/usr/bin/java", "4.3.0", "/venv-b/pyspark"
                                ).startswith("-XX:ArchiveClassesAtExit=")


def test_an_empty_class_archive_is_written_again(tmp_path):
    archive = shlex.split(class_archive_option(tmp_path, "/usr/bin/java", "4.3.0")
                          )[0].split("=", 1)[1]
    open(archive, "wb").close()
    assert class_archive_option(tmp_path, "/usr/bin/java", "4.3.0").startswith(
        "-XX:ArchiveClassesAtExit=")


def _spark_launcher_words(spark, options: str) -> list[str]:
    """`options` split into JVM arguments by the very parser of Spark's launcher, which
    turns spark.driver.extraJavaOptions into the local-mode JVM's command line."""
    jvm, gateway = spark._jvm, spark.sparkContext._gateway
    types = gateway.new_array(jvm.java.lang.Class, 1)
    types[0] = jvm.java.lang.Class.forName("java.lang.String")
    parse = jvm.java.lang.Class.forName("org.apache.spark.launcher.CommandBuilderUtils"
                                        ).getDeclaredMethod("parseOptionString", types)
    parse.setAccessible(True)
    arguments = gateway.new_array(jvm.java.lang.Object, 1)
    arguments[0] = options
    return list(parse.invoke(None, arguments))


@pytest.mark.parametrize("folder", ["Ann Lee/.cache", "it's \\ \"odd\"\there"])
def test_a_class_archive_folder_with_spaces_and_quotes_stays_one_jvm_argument(
        spark, tmp_path, folder):
    # Unquoted, the launcher split "-XX:...=/home/Ann Lee/..." in two and the JVM took the
    # second half for its main class: no run could start for a user with such a home.
    settings = SparkSettings(jit_threshold_scale=1, class_archive_dir=str(tmp_path / folder),
                             gc="jvm")
    for existing in (False, True):
        options = local_driver_options(settings, "-Dgiven=1", "/usr/bin/java", "4.3.0")
        words = _spark_launcher_words(spark, options)
        flag, archive = words[0].split("=", 1)
        assert flag == ("-XX:SharedArchiveFile" if existing else "-XX:ArchiveClassesAtExit")
        assert archive.startswith(f"{tmp_path / folder}/spark-") and archive.endswith(".jsa")
        assert words[1:] == ["-Xlog:cds=off", "-Xlog:cds+dynamic=off", "-Dgiven=1"]
        if not existing:
            open(archive, "wb").write(b"CDS")


def test_jit_thresholds_scale_hotspots_defaults_but_for_spark_ml_and_its_blas():
    assert jit_threshold_options(1) == ""
    assert jit_threshold_options(20) == (
        "-XX:Tier4InvocationThreshold=100000 -XX:Tier4MinInvocationThreshold=12000 "
        "-XX:Tier4CompileThreshold=300000 -XX:Tier4BackEdgeThreshold=800000 "
        "-XX:CompileCommand=quiet "
        "-XX:CompileCommand=CompileThresholdScaling,dev.ludovic.netlib.blas.*::*,0.05 "
        "-XX:CompileCommand=CompileThresholdScaling,jdk.incubator.vector.*::*,0.05 "
        "-XX:CompileCommand=CompileThresholdScaling,org.apache.spark.ml.*::*,0.05 "
        "-XX:CompileCommand=CompileThresholdScaling,org.apache.spark.mllib.*::*,0.05")
    assert jit_threshold_options(3).endswith("org.apache.spark.mllib.*::*,0.333333")


def test_the_jvm_takes_the_hot_packages_per_method_scaling_and_prints_nothing(tmp_path):
    java = find_java(os.environ.get("JAVA_HOME"))
    options = jit_threshold_options(20).split()
    # Without "quiet", HotSpot echoes each CompileCommand as it understood it.
    echoed = subprocess.run([java, *[o for o in options if o != "-XX:CompileCommand=quiet"],
                             "-version"], capture_output=True, text=True, check=True).stdout
    assert [line for line in echoed.splitlines() if line.startswith("CompileCommand")] == [
        f"CompileCommand: CompileThresholdScaling {package.replace('.', '/')}/*.* double "
        "CompileThresholdScaling = 0.050000" for package in HOT_PACKAGES]
    quiet = subprocess.run([java, *options, "-version"], capture_output=True, text=True,
                           check=True)
    assert quiet.stdout == "" and "CompileCommand" not in quiet.stderr


def test_the_session_a_local_run_starts_has_the_hot_packages_scaling(spark):
    runtime = driver_jvm(spark).java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = list(runtime.getInputArguments())
    assert "-XX:Tier4BackEdgeThreshold=800000" in arguments
    assert ("-XX:CompileCommand=CompileThresholdScaling,org.apache.spark.ml.*::*,0.05"
            in arguments)


def test_local_driver_options_put_the_given_ones_last(tmp_path):
    settings = SparkSettings(jit_threshold_scale=2, class_archive_dir=str(tmp_path))
    options = shlex.split(local_driver_options(settings, " -XX:Tier4InvocationThreshold=7 ",
                                               "/usr/bin/java", "4.3.0"))
    assert options[0] == "-XX:Tier4InvocationThreshold=10000"
    archive = options[len(jit_threshold_options(2).split())]
    assert archive.startswith(f"-XX:ArchiveClassesAtExit={tmp_path}/spark-")
    # The user's own flags come last, where HotSpot takes them over bovw's.
    assert options[-1] == "-XX:Tier4InvocationThreshold=7"
    assert local_driver_options(SparkSettings(jit_threshold_scale=1, class_archive_dir="",
                                              gc="jvm"), "", "/usr/bin/java", "4.3.0") == ""


def test_a_local_jvm_gets_the_parallel_collector_unless_the_user_names_one():
    def options(gc, given=""):
        return local_driver_options(SparkSettings(jit_threshold_scale=1, class_archive_dir="",
                                                  gc=gc), given, "/usr/bin/java", "4.3.0")

    assert options("parallel") == "-XX:+UseParallelGC"
    assert options("parallel", "-Xss4m") == "-XX:+UseParallelGC -Xss4m"
    # HotSpot refuses two collectors ("Conflicting collector combinations"): theirs alone.
    assert options("parallel", "-XX:+UseG1GC -Dx=1") == "-XX:+UseG1GC -Dx=1"
    assert options("parallel", "-XX:+UseZGC") == "-XX:+UseZGC"
    assert options("jvm") == ""


def test_the_session_a_local_run_starts_collects_with_the_parallel_collector(spark):
    beans = driver_jvm(spark).java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    # HotSpot's names for the young and old generations of -XX:+UseParallelGC.
    assert sorted(bean.getName() for bean in beans) == ["PS MarkSweep", "PS Scavenge"]


def test_an_unknown_collector_is_refused():
    with pytest.raises(ConfigError, match=r"spark.gc must be one of parallel, jvm \(got 'g2'\)"):
        load_config(None, {"spark.gc": "g2"})


def test_a_default_local_jvm_gets_the_raised_jit_thresholds(tmp_path):
    # `bovw run` without a config file: C2 compiling Spark's lukewarm code cost a whole
    # dev-set run 14 s of CPU (79 s -> 65 s).
    options = shlex.split(local_driver_options(SparkSettings(class_archive_dir=str(tmp_path)),
                                               "", "/usr/bin/java", "4.3.0"))
    raised = jit_threshold_options(20).split()
    assert options[:len(raised)] == raised
    assert options[len(raised)].startswith(f"-XX:ArchiveClassesAtExit={tmp_path}/spark-")


def test_jit_threshold_scale_out_of_range_is_refused():
    for scale in (0, 1001):
        with pytest.raises(ConfigError,
                           match="spark.jit_threshold_scale must be between 1 and 1000"):
            load_config(None, {"spark.jit_threshold_scale": scale})


def test_spark_sql_settings_spark_refuses_are_config_errors(spark):
    # Spark checks one when a query first reads it: mid-run, in a traceback (review 3).
    from bovw.spark.session import _check_sql_settings

    partitions = spark.conf.get("spark.sql.shuffle.partitions")
    with pytest.raises(ConfigError) as error:
        _check_sql_settings(spark, {"spark.sql.shuffle.partitions": "abc"}, Redactor())
    # Spark's reason in its own words, which differ between 4.0 and 4.3.
    assert str(error.value).startswith(
        "spark.conf.spark.sql.shuffle.partitions is refused by Spark: ")
    assert "abc" in str(error.value) and str(error.value).endswith(
        "; fix: correct it (--set spark.conf.KEY=VALUE or the config)")
    assert spark.conf.get("spark.sql.shuffle.partitions") == partitions
    # A secret's value is not repeated.
    with pytest.raises(ConfigError) as error:
        _check_sql_settings(spark, {"spark.sql.shuffle.partitions": "abc"},
                            Redactor("partitions"))
    assert str(error.value) == ("spark.conf.spark.sql.shuffle.partitions is refused by Spark; "
                                "fix: correct it (--set spark.conf.KEY=VALUE or the config)")
    # Static settings, which cannot be set again, and settings Spark does not know pass.
    warehouse = spark.conf.get("spark.sql.warehouse.dir")
    _check_sql_settings(spark, {"spark.sql.warehouse.dir": warehouse,
                                "spark.sql.bovw.unknown": "x"}, Redactor())
    assert spark.conf.get("spark.sql.warehouse.dir") == warehouse

"""The same run on local[1], local[2] and a real standalone cluster, one of them killed mid-way.

Every run is the `bovw run` command in its own process, as users start it, so each gets
its own master URL. The three runs must give the same vocabulary (exactly equal centers)
and the same metrics. To keep the suite short, the local[1] run is also the fault-tolerance
run: it is killed (SIGKILL, JVM and Python workers included) while its histograms stage
runs, then started again with the same output; it must reuse the finished stages, redo the
rest, and end exactly like the uninterrupted local[2] and cluster runs.

The local[2] run is also the check of a run's console: only bovw's own lines, no Spark
WARN line and no traceback; the cluster run, with --verbose, shows Spark's lines.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pyspark.ml.clustering import KMeansModel

from bovw.image.synthetic import generate_dataset
from bovw.spark import storage
from tests.cluster_fixtures import (
    StandaloneCluster,
    bovw_command,
    kill_bovw_at,
    subprocess_environment,
)

pytestmark = pytest.mark.subprocess_runs

SEED = "7"
RUN_FLAGS = [
    "--k", "8", "--pca-components", "5", "--seed", SEED,
    "--set", "spark.shuffle_partitions=4", "--set", "spark.driver_memory=1g",
    "--set", "spark.conf.spark.ui.enabled=false",
    "--set", "spark.conf.spark.driver.host=127.0.0.1",
    "--set", "spark.conf.spark.driver.bindAddress=127.0.0.1",
]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cluster-images")
    generate_dataset(root, classes=3, train_per_class=8, test_per_class=3, seed=3)
    return root


def run_command(images: Path, output: Path, master: str, *extra: str) -> list[str]:
    return ["run", "--input", str(images), "--output", str(output), "--master", master,
            *RUN_FLAGS, *extra]


def start_run(images: Path, output: Path, master: str, *extra: str
              ) -> tuple[subprocess.Popen, Path]:
    """Start the pipeline in a child process; returns it and its log file (stdout and
    stderr)."""
    log = output.parent / f"{output.name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            bovw_command(*run_command(images, output, master, *extra)), stdout=out,
            stderr=subprocess.STDOUT, env=subprocess_environment(), start_new_session=True)
    return process, log


def wait_run(started: tuple[subprocess.Popen, Path], timeout: float = 900) -> str:
    """Wait for a started run to finish successfully; returns what it printed."""
    process, log = started
    try:
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
    printed = log.read_text(errors="replace")
    assert process.returncode == 0, printed[-4000:]
    return printed


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("master-runs")


def vocabulary(run: Path) -> np.ndarray:
    model = storage.load_model(KMeansModel, str(run / "models" / "vocabulary"))
    return np.array(model.clusterCenters())


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_the_cluster_run_used_the_cluster(cluster_run, standalone_cluster):
    summary = json.loads((cluster_run / "summary.json").read_text())
    assert summary["config"]["spark"]["master"] == standalone_cluster.master_url
    # The master records the application as completed shortly after the driver exits.
    deadline = time.monotonic() + 60
    while not standalone_cluster.status()["completedapps"] and time.monotonic() < deadline:
        time.sleep(0.5)
    status = standalone_cluster.status()
    assert [app["name"] for app in status["completedapps"]] == ["bovw"]
    application = status["completedapps"][0]["id"]
    # Each worker ran an executor of it (the worker keeps one folder per executor).
    for worker_dir in standalone_cluster.worker_dirs:
        assert len(list((worker_dir / application).iterdir())) == 1, worker_dir


def test_local1_local2_and_cluster_give_the_same_vocabulary(spark, local1_run, local2_run,
                                                             cluster_run):
    reference = vocabulary(local2_run)
    assert reference.shape == (8, 32)
    assert np.array_equal(vocabulary(local1_run), reference)
    assert np.array_equal(vocabulary(cluster_run), reference)


def test_local1_local2_and_cluster_give_the_same_metrics(local1_run, local2_run, cluster_run):
    reference = metrics(local2_run)
    assert reference["test_images"] == 9
    assert metrics(local1_run) == reference
    assert metrics(cluster_run) == reference


def test_local1_local2_and_cluster_give_the_same_counts(local1_run, local2_run, cluster_run):
    def counts(run: Path) -> tuple:
        summary = json.loads((run / "summary.json").read_text())
        return summary["counts"], summary["keypoints"], summary["vocabulary"]

    assert counts(local1_run) == counts(local2_run) == counts(cluster_run)


def _kill_during_histograms(images: Path, output: Path, master: str) -> str:
    """Start a run, SIGKILL its process group once the histograms stage starts; returns
    what it printed."""
    partial = output / "._tmp_histograms"

    def histograms_being_written() -> None:
        # Kill while the histograms Parquet is being written, not before.
        deadline = time.monotonic() + 120
        while not partial.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    _pid, printed = kill_bovw_at(run_command(images, output, master),
                                 "[bovw] histograms: running", histograms_being_written)
    return "\n".join(printed)


@dataclass
class KilledRun:
    output: Path
    printed_before_kill: str
    stages_after_kill: list[str]
    histograms_after_kill: list[str]
    printed_on_resume: str


@dataclass
class Runs:
    local1: KilledRun
    local2: Path
    cluster: Path
    local2_printed: str
    cluster_printed: str


@pytest.fixture(scope="module")
def runs(images, runs_root, standalone_cluster: StandaloneCluster) -> Runs:
    """The three runs, side by side to save time (each is mostly latency, not CPU).

    local[1] is killed during its histograms stage, then run again to the end. The cluster
    run is the one with --verbose.
    """
    local2 = start_run(images, runs_root / "local2", "local[2]")
    cluster = start_run(images, runs_root / "cluster", standalone_cluster.master_url,
                        "--verbose")
    try:
        output = runs_root / "local1"
        printed = _kill_during_histograms(images, output, "local[1]")
        stages = sorted(path.name for path in (output / "_stages").glob("*"))
        histograms = sorted(path.name for path in output.glob("*histograms*"))
        resumed = wait_run(start_run(images, output, "local[1]"))
    finally:
        local2_printed = wait_run(local2)
        cluster_printed = wait_run(cluster)
    assert "[bovw] classifier: running" in local2_printed
    assert "[bovw] classifier: running" in cluster_printed
    return Runs(KilledRun(output, printed, stages, histograms, resumed),
                runs_root / "local2", runs_root / "cluster", local2_printed, cluster_printed)


@pytest.fixture(scope="module")
def killed_and_resumed(runs) -> KilledRun:
    return runs.local1


@pytest.fixture(scope="module")
def local2_run(runs) -> Path:
    return runs.local2


@pytest.fixture(scope="module")
def cluster_run(runs) -> Path:
    return runs.cluster


@pytest.fixture(scope="module")
def local1_run(killed_and_resumed) -> Path:
    return killed_and_resumed.output


def test_a_run_killed_during_histograms_resumes_from_there(killed_and_resumed):
    run = killed_and_resumed
    assert run.printed_before_kill.endswith("[bovw] histograms: running")
    assert run.stages_after_kill == ["descriptors.json", "vocabulary.json"]
    # Killed mid-write: the histograms Parquet was still aside, never in place half-written.
    assert run.histograms_after_kill == ["._tmp_histograms"]
    assert "[bovw] descriptors: already finished, reusing its outputs" in run.printed_on_resume
    assert "[bovw] vocabulary: already finished, reusing its outputs" in run.printed_on_resume
    assert "[bovw] histograms: running" in run.printed_on_resume
    summary = json.loads((run.output / "summary.json").read_text())
    assert summary["resumed_stages"] == ["descriptors", "vocabulary"]
    assert not (run.output / "._tmp_histograms").exists()
    assert sorted(path.name for path in (run.output / "_stages").glob("*")) == [
        "classifier.json", "descriptors.json", "histograms.json", "reduction.json",
        "vocabulary.json"]


def test_the_resumed_run_ends_like_an_uninterrupted_one(spark, local1_run, local2_run):
    assert np.array_equal(vocabulary(local1_run), vocabulary(local2_run))
    assert metrics(local1_run) == metrics(local2_run)
    histograms = {
        run: sorted((row["path"], row["histogram"].toArray().tolist())
                    for row in storage.read_parquet(spark, str(run / "histograms")).collect())
        for run in (local1_run, local2_run)
    }
    assert histograms[local1_run] == histograms[local2_run]


def test_a_run_prints_only_bovw_s_own_lines(runs):
    printed = runs.local2_printed.splitlines()
    noise = [line for line in printed
             if re.search(r"WARN|Traceback|Exception|ERROR", line)]
    assert not noise, "\n".join(noise)
    assert printed[0] == "[bovw] descriptors: running"
    # Every line is bovw's: its stage lines, then the summary.
    summary = printed.index("bovw run finished")
    assert all(line.startswith("[bovw] ") for line in printed[:summary]), printed[:summary]
    assert all(line.startswith("  ") for line in printed[summary + 1:]), printed[summary + 1:]


def test_verbose_shows_spark_s_own_console(runs):
    printed = runs.cluster_printed
    assert ("Using Spark's default log4j profile: org/apache/spark/log4j2-defaults.properties"
            in printed)
    assert re.search(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d WARN ", printed, re.MULTILINE), printed


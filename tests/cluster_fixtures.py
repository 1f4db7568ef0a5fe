"""A real Spark standalone cluster on 127.0.0.1, and runs of the `bovw` command in subprocesses.

The cluster is one Master and two Workers (one core, 1 GB each) started with pyspark's own
`bin/spark-class`, so it runs exactly the Spark the tests use. The pipeline runs against it
from a separate Python process (`python -m bovw.cli run --master spark://...`): this test
process already holds the session-wide local SparkSession.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
STARTUP_SECONDS = 120


def spark_home() -> Path:
    """The installed pyspark package folder, which is a complete SPARK_HOME (bin/, jars/)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_environment(**extra: str) -> dict[str, str]:
    """This process's environment for a child running bovw or Spark.

    The repository root goes first on PYTHONPATH so that the child, its Spark executors
    and their Python workers import this checkout's bovw even when it is not installed;
    PYSPARK_PYTHON is this interpreter so every Python worker has the same packages.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    env["PYTHONUNBUFFERED"] = "1"
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    env.update(extra)
    return env


@dataclass
class StandaloneCluster:
    """A running standalone cluster: its master URL and the master's JSON status URL."""

    master_url: str
    status_url: str
    processes: list[subprocess.Popen]
    logs: Path
    worker_dirs: list[Path]

    def status(self) -> dict:
        with urllib.request.urlopen(self.status_url, timeout=5) as response:
            return json.load(response)

    def alive_workers(self) -> int:
        return sum(1 for worker in self.status().get("workers", [])
                   if worker.get("state") == "ALIVE")

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop the workers, then the master: their whole process groups (executors too)."""
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def _start(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log, "wb") as out:
        # A new session makes the daemon its own process group, stopped as one.
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def start_cluster(workdir: Path, workers: int = WORKERS) -> StandaloneCluster:
    """Start a Master and `workers` Workers (1 core, 1 GB each) on 127.0.0.1.

    Returns once every worker is registered with the master. Raises RuntimeError (after
    stopping what started) when they do not come up within STARTUP_SECONDS.
    """
    home = spark_home()
    spark_class = str(home / "bin" / "spark-class")
    port, webui = free_port(), free_port()
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = subprocess_environment(SPARK_HOME=str(home), SPARK_DAEMON_MEMORY="256m",
                                 SPARK_LOG_DIR=str(logs))
    env.pop("PYSPARK_GATEWAY_PORT", None)
    processes = [_start([spark_class, "org.apache.spark.deploy.master.Master",
                         "--host", "127.0.0.1", "--port", str(port),
                         "--webui-port", str(webui)], logs / "master.log", env)]
    cluster = StandaloneCluster(master_url=f"spark://127.0.0.1:{port}",
                                status_url=f"http://127.0.0.1:{webui}/json",
                                processes=processes, logs=logs, worker_dirs=[])
    try:
        for index in range(workers):
            work_dir = workdir / f"worker-{index}"
            work_dir.mkdir(exist_ok=True)
            cluster.worker_dirs.append(work_dir)
            processes.append(_start([
                spark_class, "org.apache.spark.deploy.worker.Worker", cluster.master_url,
                "--host", "127.0.0.1", "--cores", "1", "--memory", "1g",
                "--webui-port", str(free_port()), "--work-dir", str(work_dir),
            ], logs / f"worker-{index}.log", env))
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a cluster daemon exited with {process.returncode}")
            try:
                if cluster.alive_workers() == workers:
                    return cluster
            except OSError:
                pass  # the master's web UI is not up yet
            if time.monotonic() > deadline:
                raise RuntimeError(f"{workers} workers did not register within "
                                   f"{STARTUP_SECONDS} s")
            time.sleep(1)
    except Exception as error:
        tail = cluster.log_tail()
        cluster.stop()
        raise RuntimeError(f"standalone cluster did not start: {error}\n{tail}") from None


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory) -> Iterator[StandaloneCluster]:
    """A Master and two one-core Workers on 127.0.0.1, stopped after the module."""
    cluster = start_cluster(tmp_path_factory.mktemp("spark-standalone"))
    try:
        yield cluster
    finally:
        cluster.stop()


def bovw_command(*args: str) -> list[str]:
    """The `bovw` command line, run with this interpreter (same as the installed script)."""
    return [sys.executable, "-m", "bovw.cli", *args]


def kill_bovw_at(args: list[str], line: str, before_kill: Callable[[], None] = lambda: None
                 ) -> tuple[int, list[str]]:
    """Run `bovw <args>` in a child process; once it prints `line`, call `before_kill()`,
    then SIGKILL its process group (driver JVM and Python workers too). Returns the child's
    pid and the lines it printed (ending with `line` unless it ended before)."""
    process = subprocess.Popen(bovw_command(*args), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, env=subprocess_environment(),
                               start_new_session=True)
    printed = []
    try:
        for raw in process.stdout:
            printed.append(raw.decode(errors="replace").rstrip())
            if printed[-1] == line:
                before_kill()
                os.killpg(process.pid, signal.SIGKILL)
                break
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        process.stdout.close()
    return process.pid, printed


def run_bovw(args: list[str], log: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `bovw <args>` in a child process; its output goes to `log`. Returns the result."""
    with open(log, "wb") as out:
        return subprocess.run(bovw_command(*args), stdout=out, stderr=subprocess.STDOUT,
                              env=subprocess_environment(), timeout=timeout, check=False,
                              start_new_session=True)

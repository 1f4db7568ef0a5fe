"""bench/spark_run.py times a `bovw run` process from outside (no Spark here: a stand-in
command writes the run folder's files and leaves a busy orphan behind, like the driver JVM)."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from bench.spark_run import bovw_command

REPO = Path(__file__).resolve().parents[1]

# Stands in for `bovw run`: run.json first, then an orphan that burns 0.6 s of CPU after
# this process has exited (as the driver JVM shuts down after the bovw process), then
# summary.json.
STAND_IN = textwrap.dedent("""
    import json, os, subprocess, sys, time
    output = sys.argv[sys.argv.index("--output") + 1]
    os.makedirs(output)
    open(os.path.join(output, "run.json"), "w").write("{}")
    subprocess.Popen([sys.executable, "-c", "import time\\ntime.sleep(0.3)\\n"
                      "end = time.process_time() + 0.6\\n"
                      "while time.process_time() < end: pass"])
    time.sleep(0.2)
    json.dump({"timings_seconds": {"ingest": 0.1, "descriptors": 0.2},
               "metrics": {"accuracy": 0.5, "macro_f1": 0.25}, "counts": {"images": 3}},
              open(os.path.join(output, "summary.json"), "w"))
    sys.exit(int(os.environ.get("STAND_IN_EXIT", "0")))
""")

# The harness in its own process, as bench.compare runs it (it becomes a subreaper).
HARNESS = textwrap.dedent("""
    import sys
    from bench import spark_run
    spark_run.bovw_command = lambda i, o, f: [sys.executable, "-c", {stand_in!r},
                                              "--input", i, "--output", o, *f]
    sys.exit(spark_run.main(sys.argv[1:]))
""")


def _harness(tmp_path, env=None):
    return subprocess.run(
        [sys.executable, "-c", HARNESS.format(stand_in=STAND_IN), "in", str(tmp_path / "run"),
         "--k", "7", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env)


def test_the_command_is_bovw_run_with_the_forwarded_settings():
    assert bovw_command("data", "out", ["--k", "7", "--set", "spark.master=local[2]"]) == [
        sys.executable, "-m", "bovw.cli", "run", "--input", "data", "--output", "out",
        "--k", "7", "--set", "spark.master=local[2]"]


def test_a_run_is_timed_from_outside_with_its_orphans_cpu(tmp_path):
    completed = _harness(tmp_path)

    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.splitlines()[-1])
    assert result["command"][-4:] == ["--output", str(tmp_path / "run"), "--k", "7"]
    assert list(result["timings"]) == ["start", "ingest", "descriptors", "summary_and_report"]
    assert result["timings"]["descriptors"] == 0.2
    assert 0.0 <= result["timings"]["start"] < result["total_seconds"]
    assert result["total_seconds"] >= 0.2
    # The orphan's 0.6 s of CPU, spent after the stand-in exited, are counted.
    assert result["jvm_counted"] is True
    assert result["cpu_seconds"] >= 0.6
    assert result["metrics"]["accuracy"] == 0.5
    assert result["counts"]["images"] == 3
    assert result["peak_memory_mb"]["jvm"] > 0


def test_a_failed_run_is_an_error(tmp_path):
    completed = _harness(tmp_path, env={**__import__("os").environ, "STAND_IN_EXIT": "3"})

    assert completed.returncode == 2
    assert "failed with exit code 3" in completed.stderr

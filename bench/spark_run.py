"""One timed `bovw run`, as users run it, printed as JSON (the pipeline side of bench/compare.py).

    python -m bench.spark_run INPUT OUTPUT [--config conf/x.toml] [--k 500] [--set k=v] --json

The command is `python -m bovw.cli run --input INPUT --output OUTPUT ...` in its own process:
interpreter start, imports, the dataset check, the JVM and session start, every stage,
the printed summary and report.html are all inside the time, which runs from starting the
process to its exit. Stage timings are read back from the run's summary.json; `start` is
the time until the run folder's run.json was written (imports, JVM, session, output lock)
and `summary_and_report` the time from summary.json to the exit (summary, report.html).

This process is a child subreaper (Linux): the driver JVM, which outlives the `bovw`
process by its shutdown, is re-parented here and reaped, so its CPU time and peak memory
are counted too (RUSAGE_CHILDREN), and no run's JVM competes with the next run.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.config_args import add_config_arguments, config_arguments

PR_SET_CHILD_SUBREAPER = 36
# How long the JVM may take to shut down after the `bovw` process exits.
JVM_EXIT_SECONDS = 120.0


def parse_vmhwm_mb(status_text: str) -> float:
    """Peak resident set size (MB) from the text of /proc/<pid>/status (its VmHWM line)."""
    for line in status_text.splitlines():
        if line.startswith("VmHWM:"):
            amount, unit = line.split()[1:3]
            if unit != "kB":
                raise ValueError(f"unexpected VmHWM unit {unit!r} in /proc status")
            return int(amount) / 1024
    raise ValueError("no VmHWM line in /proc status (is this Linux, and is the process local?)")


def driver_jvm_peak_mb(spark) -> float:
    """VmHWM of the driver JVM; it only exists while the session runs, so call before stop()."""
    pid = spark.sparkContext._jvm.ProcessHandle.current().pid()
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return parse_vmhwm_mb(status.read())


def become_subreaper() -> bool:
    """Make orphaned descendants (the driver JVM) this process's children; False if the
    kernel cannot (not Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children() -> list[int]:
    """Processes whose parent is this one (read from /proc)."""
    mine = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                text = stat.read()
        except OSError:
            continue
        if int(text[text.rfind(")") + 2:].split()[1]) == os.getpid():
            mine.append(int(entry))
    return mine


def reap_adopted(known: set[int], deadline: float) -> list[resource.struct_rusage]:
    """Wait for every child of this process that is not in `known` (children it had before
    the run): the re-parented JVM. After `deadline` (monotonic) they are killed. Returns
    the usage of each one reaped."""
    usages = []
    killed = False
    while adopted := [pid for pid in _children() if pid not in known]:
        for pid in adopted:
            try:
                reaped, _status, usage = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if reaped:
                usages.append(usage)
        if time.monotonic() > deadline and not killed:
            for pid in adopted:
                os.kill(pid, signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    return usages


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def bovw_command(input_path: str, output_path: str, forwarded: Sequence[str]) -> list[str]:
    """The `bovw run` command line (the console script's module, with this interpreter)."""
    return [sys.executable, "-m", "bovw.cli", "run", "--input", input_path,
            "--output", output_path, *forwarded]


def run_spark(input_path: str, output_path: str, forwarded: Sequence[str]) -> dict:
    """Run `bovw run` once in its own process; returns timings, metrics, counts, CPU and
    memory. Raises RuntimeError when it fails."""
    reaper = become_subreaper()
    known = set(_children())
    command = bovw_command(input_path, output_path, forwarded)
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started_at, start = time.time(), time.perf_counter()
    # Its summary goes to the terminal (stderr); this process's stdout carries the JSON.
    process = subprocess.Popen(command, stdout=sys.stderr)
    _pid, status, driver = os.wait4(process.pid, 0)
    total = time.perf_counter() - start
    ended_at = time.time()
    process.returncode = os.waitstatus_to_exitcode(status)
    others = reap_adopted(known, time.monotonic() + JVM_EXIT_SECONDS) if reaper else []
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit code {process.returncode}")
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = Path(output_path)
    summary = json.loads((output / "summary.json").read_text(encoding="utf-8"))
    timings = {}
    run_written, summary_written = _mtime(output / "run.json"), _mtime(output / "summary.json")
    if run_written is not None:
        timings["start"] = round(run_written - started_at, 3)
    timings.update(summary["timings_seconds"])
    if summary_written is not None:
        timings["summary_and_report"] = round(ended_at - summary_written, 3)
    python_mb = driver.ru_maxrss / 1024
    jvm_mb = max((usage.ru_maxrss for usage in others), default=0) / 1024
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return {
        "command": command,
        "timings": timings,
        "total_seconds": round(total, 3),
        # The bovw process and everything it started, the JVM and its Python workers included
        # (without a subreaper: the bovw process only).
        "cpu_seconds": round(cpu, 3),
        "jvm_counted": reaper,
        "metrics": summary["metrics"],
        "counts": summary["counts"],
        "output": str(output),
        "peak_memory_mb": {
            "python": round(python_mb, 1),
            "jvm": round(jvm_mb, 1),
            "total": round(python_mb + jvm_mb, 1),
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One timed `bovw run`, in its own process.")
    parser.add_argument("input_path")
    parser.add_argument("output_path")
    add_config_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args(argv)
    try:
        result = run_spark(args.input_path, args.output_path, config_arguments(args))
    except (OSError, RuntimeError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

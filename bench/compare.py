"""Compare the Spark pipeline with the single-process reference on the same folder and config.

    python -m bench.compare /path/to/fruits360 --config conf/x.toml --k 500 --master 'local[2]'
    python -m bench.compare /path/to/fruits360 --k 500 --reference-only

Prints one Markdown table and writes it, with every raw number, to bench/results/.

Each side runs in its own Python process, one after the other. ru_maxrss is a high-water
mark that never goes down, and RUSAGE_CHILDREN keeps every child that ever finished, so a
side sharing a process with the other (or with this harness) would report the other's peak.
Running them one at a time also keeps them from competing for the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.reference import add_config_arguments, config_from_args, task_settings
from bench.table import comparison_rows, images_per_second, markdown_table
from bovw.config import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = REPO_ROOT / "bench" / "results"


def processes_for_master(master: str, cpu_count: int) -> int:
    """Cores a Spark master URL uses locally: local -> 1, local[N] -> N, local[*] / other -> all."""
    if master == "local":
        return 1
    match = re.fullmatch(r"local\[(\d+)(?:,\s*\d+)?\]", master)
    return int(match.group(1)) if match else cpu_count


def reference_summary(raw: dict) -> dict:
    """The table's summary of a bench/reference.py --json result."""
    memory = raw["peak_memory_mb"]
    return {
        "timings": raw["timings"],
        "total_seconds": raw["total_seconds"],
        "images": raw["n_images"],
        "accuracy": raw["accuracy"],
        "macro_f1": raw["macro_f1"],
        "peak_python_mb": memory["self"],
        "peak_helper_mb": memory["children"],
        "peak_memory_mb": memory["total"],
    }


def pipeline_summary(raw: dict) -> dict:
    """The table's summary of a bench/spark_run.py --json result."""
    memory = raw["peak_memory_mb"]
    return {
        "timings": raw["timings"],
        "total_seconds": raw["total_seconds"],
        "images": raw["counts"]["images"],
        "accuracy": raw["metrics"]["accuracy"],
        "macro_f1": raw["metrics"]["macro_f1"],
        "peak_python_mb": memory["python"],
        "peak_helper_mb": memory["jvm"],
        "peak_memory_mb": memory["total"],
    }


def run_json(command: Sequence[str]) -> dict:
    """Run a bench command in a fresh Python process; its last stdout line is its JSON result."""
    # stderr (Spark's log, warnings) goes straight to the terminal; stdout carries the result.
    finished = subprocess.run(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    if finished.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit code {finished.returncode}")
    lines = [line for line in finished.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(command)} printed no JSON result")
    return json.loads(lines[-1])


def warm_page_cache(input_dir: Path) -> int:
    """Read every file once so neither side pays for cold disk reads; returns files read."""
    count = 0
    for path in input_dir.rglob("*"):
        if path.is_file():
            path.read_bytes()
            count += 1
    return count


def config_arguments(args: argparse.Namespace) -> list[str]:
    """The --config/--set arguments that give a child process the same Config."""
    forwarded = ["--config", args.config] if args.config else []
    for assignment in args.set:
        forwarded += ["--set", assignment]
    if args.k is not None:
        forwarded += ["--k", str(args.k)]
    return forwarded


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Spark pipeline vs single-process reference.")
    parser.add_argument("input_dir", help="local folder holding Training/<Class>/, Test/<Class>/")
    add_config_arguments(parser)
    parser.add_argument("--master", help="Spark master URL, e.g. local[2] (spark.master)")
    parser.add_argument("--processes", type=int, help="reference pool size (default: as master)")
    parser.add_argument("--reference-only", action="store_true", help="skip the Spark pipeline")
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    args = parser.parse_args(argv)
    if args.master:
        args.set = [*args.set, f"spark.master={args.master}"]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return compare(parse_args(argv))
    except (ConfigError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def compare(args: argparse.Namespace) -> int:
    """Run both sides, print the table and write it to args.results_dir."""
    config = config_from_args(args)  # fail on a bad config before anything runs
    input_dir = Path(args.input_dir).resolve()
    if not input_dir.is_dir():
        raise RuntimeError(f"{input_dir} is not a local folder: the reference reads local files")
    processes = args.processes or processes_for_master(config.spark.master, os.cpu_count() or 1)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    # The machine may be shared: a busy box explains slow numbers, so the load is recorded.
    load_before = os.getloadavg()[0]
    warm_page_cache(input_dir)
    forwarded = config_arguments(args)

    reference_raw = run_json([
        sys.executable, "bench/reference.py", str(input_dir), "--json",
        "--processes", str(processes), *forwarded,
    ])
    pipeline_raw, failure = None, None
    if not args.reference_only:
        output = args.results_dir / f"pipeline-output-{stamp}"
        try:
            pipeline_raw = run_json([
                sys.executable, "-m", "bench.spark_run", str(input_dir), str(output), "--json",
                *forwarded,
            ])
        except RuntimeError as error:  # keep the reference's numbers: still write the table
            failure = str(error)

    summaries = {
        "pipeline": pipeline_summary(pipeline_raw) if pipeline_raw else None,
        "reference": reference_summary(reference_raw),
    }
    table = markdown_table(comparison_rows(summaries["pipeline"], summaries["reference"]))
    context = (
        f"Input {input_dir}, k = {config.vocabulary.k}, master {config.spark.master}, "
        f"reference processes {processes}, load average before {load_before:.2f}."
    )
    print(table + "\n" + context)

    args.results_dir.mkdir(parents=True, exist_ok=True)
    base = args.results_dir / f"compare-{stamp}"
    base.with_suffix(".md").write_text(table + "\n" + context + "\n", encoding="utf-8")
    report = {
        "input": str(input_dir), "master": config.spark.master, "processes": processes,
        "load_average_before": load_before,
        "config": task_settings(config), "summaries": summaries,
        "images_per_second": {k: images_per_second(v) if v else None for k, v in summaries.items()},
        "raw": {"pipeline": pipeline_raw, "reference": reference_raw},
    }
    base.with_suffix(".json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"Wrote {base}.md and {base}.json")
    if failure:
        print(f"error: the pipeline side did not finish: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

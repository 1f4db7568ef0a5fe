"""The same run twice in one Python process and one SparkSession: what a first, cold run
pays that a second, identical one does not (the JVM's JIT compiling Spark's code, Spark
generating and compiling its query code, first calls in the Python workers).

    python -m bench.warm_session INPUT [--config conf/x.toml] [--k 500] [--set k=v] [--runs 2]

Each run is bovw.pipeline.run.run_pipeline into a folder of its own under a temporary
folder (deleted at the end), after the session and its Python workers have started (the
first run's workers are warmed as `bovw run` warms them). Prints one line per run: its
stage times (summary.json's), their total and the run's wall time; and the Test accuracy
of each, which must not differ: the same inputs, configuration and seed give the same
metrics however warm the session is.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.config_args import add_config_arguments, config_from_args

__all__ = ["main", "warm_runs"]


def warm_runs(spark, config, input_path: str, output_root: str | Path, runs: int = 2
              ) -> list[dict]:
    """`runs` runs of the pipeline on `input_path` in the session `spark`, one after the
    other, each into output_root/run-N; returns, for each, {"run": N, "wall": seconds,
    "timings": stage -> seconds (the descriptors stage's include its listing, "ingest"),
    "stages": their total (the listing counted once), "accuracy": Test accuracy}."""
    from bovw.pipeline.run import run_pipeline

    results = []
    for run in range(1, runs + 1):
        started = time.perf_counter()
        result = run_pipeline(spark, config, input_path, str(Path(output_root) / f"run-{run}"),
                              log=lambda _line: None)
        results.append({"run": run, "wall": round(time.perf_counter() - started, 2),
                        "timings": dict(result.summary.timings),
                        "stages": round(result.summary.total_seconds, 2),
                        "accuracy": result.metrics["accuracy"]})
    return results


def format_runs(results: Sequence[dict]) -> str:
    """One line per run: its wall time, its stages' total and each stage's time."""
    lines = []
    for result in results:
        stages = ", ".join(f"{stage} {seconds:.1f}s"
                           for stage, seconds in result["timings"].items())
        lines.append(f"run {result['run']}: {result['wall']:.1f}s wall, stages "
                     f"{result['stages']:.1f}s ({stages}); accuracy "
                     f"{result['accuracy']:.4f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.warm_session",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="dataset folder (Training/<Class>/*.jpg, Test/...)")
    parser.add_argument("--runs", type=int, default=2, help="runs in the one session")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    config = config_from_args(args)

    from bovw.spark.session import build_session
    from bovw.spark.workers import warm_python_workers

    spark = build_session(config)
    try:
        warm_python_workers(spark)
        with tempfile.TemporaryDirectory(prefix="bovw-warm-") as folder:
            results = warm_runs(spark, config, args.input, folder, args.runs)
    finally:
        spark.stop()
    print(json.dumps(results, indent=2) if args.json else format_runs(results))
    if len({result["accuracy"] for result in results}) > 1:
        print("error: the runs' accuracies differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One timed run of the Spark pipeline, printed as JSON (the pipeline side of bench/compare.py).

    python -m bench.spark_run INPUT OUTPUT [--config conf/x.toml] [--k 500] [--set k=v] --json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Sequence

from bench.reference import add_config_arguments, config_from_args, task_settings
from bovw.config import Config, ConfigError


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


def run_spark(input_path: str, output_path: str, config: Config) -> dict:
    """Build a session, run the pipeline once; returns timings, metrics, counts and memory."""
    # Imported here so the reference and the table tests do not need the pipeline to exist.
    try:
        from bovw.pipeline.run import run_pipeline
        from bovw.spark.session import build_session
    except ModuleNotFoundError as error:
        raise RuntimeError(
            f"the Spark pipeline is not in this checkout ({error}); "
            "run bench.compare with --reference-only"
        ) from None

    start = time.perf_counter()
    spark = build_session(config)
    session_seconds = time.perf_counter() - start
    try:
        result = run_pipeline(spark, config, input_path, output_path)
        total = time.perf_counter() - start
        jvm_mb = driver_jvm_peak_mb(spark)
    finally:
        spark.stop()
    python_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "timings": {"session_start": round(session_seconds, 3), **dict(result.summary.timings)},
        "total_seconds": round(total, 3),
        "metrics": dict(result.metrics),
        "counts": result.summary.to_dict()["counts"],
        "output": str(result.output),
        "peak_memory_mb": {
            "python": round(python_mb, 1),
            "jvm": round(jvm_mb, 1),
            "total": round(python_mb + jvm_mb, 1),
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One timed run of the bovw Spark pipeline.")
    parser.add_argument("input_path")
    parser.add_argument("output_path")
    add_config_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        result = run_spark(args.input_path, args.output_path, config)
    except (ConfigError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result["config"] = task_settings(config)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Compare the Spark pipeline with the single-process reference on the same folder and config,
at one or more dataset sizes, and optionally with a deliberately naive Spark pipeline.

    python -m bench.compare DATA --config conf/x.toml --master 'local[2]'
    python -m bench.compare DATA --sizes 1,10 --master 'local[2]' [--naive]
    python -m bench.compare DATA --reference-only

For every size N in --sizes (1 = DATA itself; N > 1 = DATA with every image N times, hard
links built once under --workdir by bench/datasets.py) the reference runs, then the pipeline.
--naive adds one run of bench/naive.py on DATA (or on a seeded --naive-max-images sample,
with the pipeline run on the same sample for its ratio). Prints one Markdown table and
writes it, with every raw number, to bench/results/.

Each run has its own Python process, one after the other. ru_maxrss is a high-water mark
that never goes down, and RUSAGE_CHILDREN keeps every child that ever finished, so a run
sharing a process with another (or with this harness) would report the other's peak.
Running them one at a time also keeps them from competing for the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.config_args import add_config_arguments, config_arguments, config_from_args
from bench.datasets import (
    DEFAULT_WORKDIR,
    DatasetError,
    build_copies,
    build_subset,
    check_outside_repo,
)
from bench.reference import task_settings
from bench.table import (
    Column,
    markdown,
    ratio_column,
    table_rows,
    value_column,
)
from bovw.config import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = REPO_ROOT / "bench" / "results"
# The target: descriptor extraction within 1.2x of raw OpenCV on the same cores.
DESCRIPTOR_TARGET = 1.2
NAIVE_GRACE_SECONDS = 600


def processes_for_master(master: str, cpu_count: int) -> int:
    """Cores a Spark master URL uses locally: local -> 1, local[N] -> N, local[*] / other -> all."""
    if master == "local":
        return 1
    match = re.fullmatch(r"local\[(\d+)(?:,\s*\d+)?\]", master)
    return int(match.group(1)) if match else cpu_count


def parse_sizes(text: str) -> list[int]:
    """'1,10' -> [1, 10]: dataset sizes as multiples of the input (each >= 1, no repeats)."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--sizes must be comma-separated whole numbers, e.g. 1,10 (got {text!r})"
                          ) from None
    if not sizes or min(sizes) < 1 or len(set(sizes)) != len(sizes):
        raise ConfigError(f"--sizes must list distinct numbers >= 1, e.g. 1,10 (got {text!r})")
    return sizes


def reference_summary(raw: dict) -> dict:
    """The table's summary of a bench/reference.py --json result; its total is the whole
    process's wall time and CPU time (interpreter start, imports and pool included) when
    run_json measured them, as the pipeline's is."""
    memory = raw["peak_memory_mb"]
    process = raw.get("process", {})
    return {
        "timings": raw["timings"],
        "total_seconds": process.get("wall_seconds", raw["total_seconds"]),
        "cpu_seconds": process.get("cpu_seconds"),
        "images": raw["n_images"],
        "accuracy": raw["accuracy"],
        "macro_f1": raw["macro_f1"],
        "peak_python_mb": memory["self"],
        "peak_helper_mb": memory["children"],
        "peak_memory_mb": memory["total"],
    }


def pipeline_summary(raw: dict) -> dict:
    """The table's summary of a bench/spark_run.py --json result (a `bovw run` process)."""
    memory = raw["peak_memory_mb"]
    return {
        "timings": raw["timings"],
        "total_seconds": raw["total_seconds"],
        "cpu_seconds": raw.get("cpu_seconds"),
        "images": raw["counts"]["images"],
        "accuracy": raw["metrics"]["accuracy"],
        "macro_f1": raw["metrics"]["macro_f1"],
        "peak_python_mb": memory["python"],
        "peak_helper_mb": memory["jvm"],
        "peak_memory_mb": memory["total"],
    }


def naive_summary(raw: dict) -> dict:
    """The table's summary of a bench/naive.py --json result; a run stopped by its timeout
    shows the stopped stage's time so far and its total as lower bounds."""
    memory = raw["peak_memory_mb"]
    timings = dict(raw["timings"])
    bounds = {}
    if raw["status"] != "finished":
        stopped = raw["stopped_in"]
        timings[stopped] = raw.get("stopped_stage_seconds") or 0.0
        bounds = {f"stage:{stopped}": ">=", "total_seconds": ">=", "cpu_seconds": ">="}
    return {
        "timings": timings,
        "total_seconds": raw.get("process", {}).get("wall_seconds", raw["total_seconds"]),
        "cpu_seconds": raw.get("process", {}).get("cpu_seconds"),
        "images": raw["counts"].get("images"),
        "accuracy": raw["metrics"].get("accuracy"),
        "macro_f1": raw["metrics"].get("macro_f1"),
        "peak_python_mb": memory["python"],
        "peak_helper_mb": memory["jvm"],
        "peak_memory_mb": memory["total"],
        "bounds": bounds,
    }


def paired_walls(pairs: Sequence[tuple[dict | None, dict | None]]) -> dict | None:
    """The whole-process wall times of N (pipeline, reference) summaries run in turn, as
    medians, and the median, min and max of their pair-by-pair ratios; None when no pair
    has both sides. Pairing keeps the ratio meaningful while a shared machine's speed drifts."""
    walls = [(pipeline["total_seconds"], reference["total_seconds"])
             for pipeline, reference in pairs if pipeline and reference]
    if not walls:
        return None
    ratios = [pipeline / reference for pipeline, reference in walls]
    return {"pairs": len(walls),
            "pipeline_median": statistics.median(pipeline for pipeline, _ in walls),
            "reference_median": statistics.median(reference for _, reference in walls),
            "ratio_median": statistics.median(ratios), "ratio_min": min(ratios),
            "ratio_max": max(ratios)}


def paired_verdict(size: int, paired: dict | None) -> str:
    """One line under the table for a size measured in several pairs."""
    if paired is None:
        return f"x{size}: no pair finished on both sides"
    return (f"x{size}, {paired['pairs']} pairs run in turn: pipeline median "
            f"{paired['pipeline_median']:.2f} s, reference median "
            f"{paired['reference_median']:.2f} s; paired wall ratio median "
            f"{paired['ratio_median']:.2f}x (min {paired['ratio_min']:.2f}x, max "
            f"{paired['ratio_max']:.2f}x). The table's columns are the first pair.")


def comparison_columns(sizes: Sequence[int], runs: dict, naive: dict | None) -> list[Column]:
    """Per size: pipeline, reference, pipeline/reference; then the naive run's columns.

    `runs` maps each size to {"pipeline": summary or None, "reference": summary or None};
    `naive` is None or {"naive": summary, "pipeline": summary of the real pipeline on the
    same images, "label": where it ran, "same_as_size": a size whose pipeline column that
    is, or None}.
    """
    columns = []
    for size in sizes:
        pipeline, reference = runs[size]["pipeline"], runs[size]["reference"]
        columns += [
            value_column(f"pipeline x{size}", pipeline),
            value_column(f"reference x{size}", reference),
            ratio_column(f"pipeline/reference x{size}", pipeline, reference),
        ]
    if naive is not None:
        label = naive["label"]
        if naive.get("same_as_size") is None:
            columns.append(value_column(f"pipeline, {label}", naive["pipeline"]))
        columns += [
            value_column(f"naive, {label}", naive["naive"]),
            ratio_column("naive/pipeline (times slower)", naive["naive"], naive["pipeline"]),
        ]
    return columns


def descriptor_verdicts(sizes: Sequence[int], runs: dict, processes: int) -> list[str]:
    """One line per size: the pipeline's descriptors stage against raw OpenCV."""
    lines = []
    for size in sizes:
        pipeline, reference = runs[size]["pipeline"], runs[size]["reference"]
        spark_seconds = (pipeline or {}).get("timings", {}).get("descriptors")
        opencv_seconds = (reference or {}).get("timings", {}).get("descriptors")
        if not spark_seconds or not opencv_seconds:
            continue
        ratio = spark_seconds / opencv_seconds
        verdict = "met" if ratio <= DESCRIPTOR_TARGET else "missed"
        # The stage also lists the files; the reference's listing is its own ingest line.
        extraction = spark_seconds - pipeline["timings"].get("ingest", 0.0)
        lines.append(
            f"x{size}: descriptors stage {spark_seconds:.2f} s in Spark vs {opencv_seconds:.2f} s "
            f"raw OpenCV (decode + ORB, Pool of {processes}): {ratio:.2f}x, target "
            f"<= {DESCRIPTOR_TARGET:.1f}x {verdict}; without the listing {extraction:.2f} s, "
            f"{extraction / opencv_seconds:.2f}x."
        )
    return lines


def run_json(command: Sequence[str], timeout: float | None = None) -> dict:
    """Run a bench command in a fresh Python process; its last stdout line is its JSON result,
    to which "process" adds the process's wall time (start to exit) and CPU time (its own
    and that of the children it waited for).

    With `timeout`, the command (and every process it started, e.g. a JVM) is ended when
    that many seconds have passed, and RuntimeError is raised.
    """
    # stderr (Spark's log, warnings) goes straight to the terminal; stdout carries the result.
    cpu_before = _children_cpu_seconds()
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, _ = process.communicate(timeout=timeout)
        wall = time.perf_counter() - start
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)  # its own session: only what it started
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        raise RuntimeError(f"{' '.join(command)} still ran after {timeout:.0f} s and was "
                           "stopped") from None
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit code {process.returncode}")
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(command)} printed no JSON result")
    result = json.loads(lines[-1])
    result["process"] = {"wall_seconds": round(wall, 3),
                         "cpu_seconds": round(_children_cpu_seconds() - cpu_before, 3)}
    return result


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def warm_page_cache(input_dir: Path) -> int:
    """Read every file once so neither side pays for cold disk reads; returns files read."""
    count = 0
    for path in input_dir.rglob("*"):
        if path.is_file():
            path.read_bytes()
            count += 1
    return count


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Spark pipeline vs single-process reference.")
    parser.add_argument("input_dir", help="local folder holding Training/<Class>/, Test/<Class>/")
    add_config_arguments(parser)
    parser.add_argument("--master", help="Spark master URL, e.g. local[2] (spark.master)")
    parser.add_argument("--processes", type=int, help="reference pool size (default: as master)")
    parser.add_argument("--sizes", default="1",
                        help="dataset sizes as multiples of the input, e.g. 1,10 (default 1)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help=f"where larger sets, samples and pipeline outputs go (outside the "
                        f"repository; default {DEFAULT_WORKDIR})")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run reference and pipeline N times in turn at each size and "
                        "add their paired wall ratio under the table (default 1)")
    parser.add_argument("--reference-only", action="store_true", help="skip the Spark pipeline")
    parser.add_argument("--naive", action="store_true",
                        help="also run bench/naive.py once (on the x1 input or a sample)")
    parser.add_argument("--naive-max-images", type=int,
                        help="run the naive pipeline (and the real one, for its ratio) on a "
                        "seeded sample of at most N images")
    parser.add_argument("--naive-sample-classes", type=int,
                        help="with the naive run: sample only N seeded-chosen classes")
    parser.add_argument("--naive-timeout", type=float, default=3600.0,
                        help="seconds before the naive run stops and reports what it has "
                        "(default 3600)")
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    args = parser.parse_args(argv)
    args.command = "python -m bench.compare " + shlex.join(
        sys.argv[1:] if argv is None else list(argv))
    if args.master:
        args.set = [*args.set, f"spark.master={args.master}"]
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1 (got {args.repeat})")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return compare(parse_args(argv))
    except (ConfigError, DatasetError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def compare(args: argparse.Namespace) -> int:
    """Run every side at every size (and the naive run), print the table, write the results."""
    config = config_from_args(args)  # fail on a bad config before anything runs
    sizes = parse_sizes(args.sizes)
    input_dir = Path(args.input_dir).resolve()
    if not input_dir.is_dir():
        raise RuntimeError(f"{input_dir} is not a local folder: the reference reads local files")
    check_outside_repo(args.workdir)
    processes = args.processes or processes_for_master(config.spark.master, os.cpu_count() or 1)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    forwarded = config_arguments(args)
    outputs = args.workdir / "runs"
    failures: list[str] = []

    def attempt(what: str, command: list[str], timeout: float | None = None) -> dict | None:
        print(f"[compare] {what}", file=sys.stderr, flush=True)
        try:
            return run_json(command, timeout)
        except RuntimeError as error:  # keep what the other runs measured: still write the table
            failures.append(f"{what}: {error}")
            return None

    def pipeline_run(data: Path, name: str) -> dict | None:
        output = outputs / f"pipeline-{name}-{stamp}"
        # A repeat writes a new run folder beside the first (bovw refuses to overwrite).
        while output.exists():
            output = output.with_name(output.name + "-again")
        return attempt(f"pipeline on {data}", [
            sys.executable, "-m", "bench.spark_run", str(data), str(output), "--json",
            *forwarded,
        ])

    # The machine may be shared: a busy box explains slow numbers, so the load is recorded.
    loads: dict[str, float] = {}
    data_dirs: dict[int, Path] = {}
    raw: dict[str, dict] = {}
    for size in sizes:
        data = input_dir if size == 1 else build_copies(input_dir, args.workdir, size)
        data_dirs[size] = data
        warm_page_cache(data)
        loads[f"x{size}"] = os.getloadavg()[0]
        pairs = [{
            "reference": attempt(f"reference on {data}", [
                sys.executable, "bench/reference.py", str(data), "--json",
                "--processes", str(processes), *forwarded,
            ]),
            "pipeline": None if args.reference_only else pipeline_run(data, f"x{size}"),
        } for _ in range(args.repeat)]
        raw[f"x{size}"] = {**pairs[0], "repeats": pairs[1:]}

    naive_info = None
    if args.naive:
        naive_info = run_naive_side(args, config, input_dir, sizes, raw, forwarded, attempt,
                                    pipeline_run, loads)
        raw["naive"] = naive_info["raw"]

    runs = {size: {side: _summary(side, raw[f"x{size}"][side])
                   for side in ("pipeline", "reference")} for size in sizes}
    paired = {size: paired_walls([
        (_summary("pipeline", pair["pipeline"]), _summary("reference", pair["reference"]))
        for pair in [raw[f"x{size}"], *raw[f"x{size}"]["repeats"]]]) for size in sizes
    } if args.repeat > 1 else {}
    naive_columns = None
    if naive_info is not None:
        naive_columns = {
            "naive": _summary("naive", naive_info["raw"]["naive"]),
            "pipeline": _summary("pipeline", naive_info["raw"]["pipeline"]),
            "label": naive_info["label"], "same_as_size": naive_info["same_as_size"],
        }
    table = markdown(table_rows(comparison_columns(sizes, runs, naive_columns)))
    context = [
        f"Command: `{args.command}`",
        f"Input {input_dir}; " + "; ".join(f"x{size} = {data_dirs[size]}" for size in sizes)
        + ".",
        f"k = {config.vocabulary.k}, orb.sampling = {config.orb.sampling}, "
        f"pyramid levels {config.histograms.pyramid_levels}, master {config.spark.master}, "
        f"reference processes {processes}; load average before each run: "
        + ", ".join(f"{name} {load:.2f}" for name, load in loads.items()) + ".",
        "Ratios are pipeline/reference (naive/pipeline in the last column). The pipeline is "
        "one `bovw run` process: `start` is its interpreter, imports, JVM and session start "
        "and output lock, `summary_and_report` its printed summary and report.html; its "
        "descriptors stage includes its ingest (listing) and writing the descriptors Parquet. "
        "Total wall and CPU times are those of whole processes on both sides (start-up "
        "included; CPU of every process, the JVM and Python workers or the pool included).",
        *descriptor_verdicts(sizes, runs, processes),
        *[paired_verdict(size, paired[size]) for size in sizes if size in paired],
    ]
    if naive_info is not None:
        context.append(naive_info["note"])
    text = table + "\n" + "\n".join(context) + "\n"
    print(text)

    args.results_dir.mkdir(parents=True, exist_ok=True)
    base = args.results_dir / f"compare-{stamp}"
    base.with_suffix(".md").write_text(text, encoding="utf-8")
    report = {
        "command": args.command, "input": str(input_dir), "sizes": sizes,
        "data": {f"x{size}": str(path) for size, path in data_dirs.items()},
        "master": config.spark.master, "processes": processes, "load_average_before": loads,
        "config": task_settings(config),
        "summaries": {f"x{size}": runs[size] for size in sizes},
        "paired": {f"x{size}": paired[size] for size in paired},
        "naive_summaries": naive_columns, "failures": failures, "raw": raw,
    }
    base.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str),
                                         encoding="utf-8")
    print(f"Wrote {base}.md and {base}.json")
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _summary(side: str, raw: dict | None) -> dict | None:
    if raw is None:
        return None
    return {"pipeline": pipeline_summary, "reference": reference_summary,
            "naive": naive_summary}[side](raw)


def run_naive_side(args, config, input_dir: Path, sizes, raw, forwarded, attempt, pipeline_run,
                   loads) -> dict:
    """Run bench/naive.py once, and the real pipeline on the same images if not run already."""
    sampled = args.naive_max_images is not None or args.naive_sample_classes is not None
    if sampled:
        data = build_subset(input_dir, args.workdir, args.naive_max_images,
                            args.naive_sample_classes, config.seed)
        warm_page_cache(data)
        label = (f"sample of {args.naive_max_images or 'all'} images"
                 + (f", {args.naive_sample_classes} classes" if args.naive_sample_classes else ""))
        same_as_size = None
    else:
        data, label = input_dir, "x1"
        same_as_size = 1 if 1 in sizes and not args.reference_only else None
    if same_as_size is not None:
        pipeline_raw = raw["x1"]["pipeline"]
    else:
        loads["naive's pipeline"] = os.getloadavg()[0]
        pipeline_raw = pipeline_run(data, "naive-peer")
    loads["naive"] = os.getloadavg()[0]
    naive_raw = attempt(f"naive pipeline on {data}", [
        sys.executable, "-m", "bench.naive", str(data), "--json",
        "--timeout", str(args.naive_timeout), *forwarded,
    ], timeout=args.naive_timeout + NAIVE_GRACE_SECONDS)
    if naive_raw is None:
        note = "The naive run failed (see errors)."
    elif naive_raw["status"] == "finished":
        note = f"The naive run finished on {data}."
    else:
        note = (f"The naive run stopped after its {args.naive_timeout:.0f} s timeout during "
                f"{naive_raw['stopped_in']}: its values marked >= are lower bounds.")
    return {"raw": {"naive": naive_raw, "pipeline": pipeline_raw, "data": str(data)},
            "label": label, "same_as_size": same_as_size, "note": note}


if __name__ == "__main__":
    sys.exit(main())

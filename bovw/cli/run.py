"""The `bovw run` and `bovw demo` commands: the whole pipeline on a dataset folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bovw.cli.common import add_config_flags, overrides, report_under_lock, session
from bovw.config import load_config
from bovw.pipeline.inputs import check_local_dataset
from bovw.spark.progress import StageProgress
from bovw.summary import RunSummary

__all__ = ["DEMO_OVERRIDES", "HANDLERS", "add_commands", "format_summary"]

DEMO_OVERRIDES = {"vocabulary.k": 60, "pca.components": 30, "spark.driver_memory": "2g"}


def add_commands(commands) -> None:
    """Add the run and demo sub-commands to the `bovw` parser's sub-parsers."""
    run = commands.add_parser("run", help="run the whole pipeline on a dataset folder")
    run.add_argument("--input", required=True,
                     help="dataset folder: Training/<Class>/*.jpg and Test/<Class>/*.jpg")
    run.add_argument("--output", required=True, help="run folder to create (or resume)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    run.add_argument("--descriptors-from", help="reuse the descriptors Parquet of an earlier run")
    add_config_flags(run)

    demo = commands.add_parser(
        "demo", help="generate a small fruit-like image set and run the pipeline on it"
    )
    demo.add_argument("--workdir", default="runs",
                      help="where the generated images and the run folder go (default: runs)")
    demo.add_argument("--classes", type=int, default=6, help="number of generated classes")
    add_config_flags(demo)


def format_summary(summary: RunSummary, input_path: str) -> str:
    """The human-readable end-of-run summary of a run (`summary`) of `input_path`."""
    counts, keypoints, metrics = summary.counts, summary.keypoints, summary.metrics
    vocabulary = summary.vocabulary
    per_split = ", ".join(f"{split} {n}" for split, n in sorted(counts.per_split.items()))
    timings = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in summary.timings.items())
    lines = [
        "bovw run finished",
        f"  input            {input_path}",
        f"  images read      {counts.images} (rejected {counts.rejected}; {per_split}; "
        f"{counts.classes} classes)",
        f"  keypoints/image  mean {keypoints.mean}, median {keypoints.median}, "
        f"min {keypoints.min}, max {keypoints.max}; "
        f"{keypoints.images_without_keypoints} images without keypoints",
        f"  vocabulary       k={vocabulary.k} from {vocabulary.sample_descriptors} sampled "
        f"descriptors ({vocabulary.iterations} iterations)",
        f"  PCA              {summary.reduction.components_text()}, "
        f"{100 * summary.reduction.explained_variance_total:.1f}% of variance",
        f"  accuracy         {100 * metrics.accuracy:.2f}% on {metrics.test_images} Test "
        f"images   macro F1 {metrics.macro_f1:.4f}",
        f"  time per stage   {timings}; total {summary.total_seconds:.1f}s",
    ]
    if metrics.test_only_classes:
        lines.insert(-1, f"  not scored       {metrics.test_only_images} Test images of "
                         f"classes not in Training: {', '.join(metrics.test_only_classes)}")
    if counts.other_size_note():
        lines.insert(-1, f"  other sizes      {counts.other_size_note()}")
    if summary.resumed_stages:
        lines.append(f"  resumed          {', '.join(summary.resumed_stages)} reused from disk")
    lines.append(f"  output           {summary.output}")
    return "\n".join(lines)


def _run(args: argparse.Namespace, environ: dict) -> int:
    from bovw.cloud.s3a import normalise_s3_url
    from bovw.pipeline.run import run_pipeline

    config = load_config(args.config, overrides(args))
    input_path, output_path = normalise_s3_url(args.input), normalise_s3_url(args.output)
    descriptors_from = normalise_s3_url(args.descriptors_from) if args.descriptors_from else None
    check_local_dataset(input_path, config.ingest)
    spark = session(config, environ, input_path, output_path, descriptors_from,
                    verbose=args.verbose)
    result = run_pipeline(spark, config, input_path, output_path, overwrite=args.overwrite,
                          descriptors_from=descriptors_from,
                          progress=StageProgress(spark.sparkContext))
    print(format_summary(result.summary, input_path))
    print(f"  report           {_report(spark, result.output)}")
    return 0


def _demo(args: argparse.Namespace, environ: dict) -> int:
    from bovw.image.synthetic import generate_dataset
    from bovw.pipeline.run import run_pipeline

    config = load_config(args.config, overrides(args, DEMO_OVERRIDES))
    workdir = Path(args.workdir)
    data = workdir / f"demo-data-{args.classes}-classes"
    if not (data / "Training").is_dir():
        print(f"[bovw] generating a demo image set in {data}")
        generate_dataset(data, classes=args.classes, seed=config.seed)
    output = workdir / time.strftime("demo-%Y%m%d-%H%M%S")
    spark = session(config, environ, verbose=args.verbose)
    result = run_pipeline(spark, config, str(data.resolve()), str(output.resolve()),
                          progress=StageProgress(spark.sparkContext))
    print(format_summary(result.summary, str(data)))
    print(f"  report           {_report(spark, result.output)}")
    return 0


def _report(spark, run: str) -> str:
    """Draw report.html of the finished `run`, or say why not when another bovw command
    took the folder in the meantime (it may be replacing it: the numbers would not be
    this run's)."""
    from bovw.errors import OutputInUseError
    from bovw.report.pages import write_run_report

    try:
        return report_under_lock(spark, run, lambda: write_run_report(spark, run))
    except OutputInUseError as error:
        return f"not drawn: {error}"


HANDLERS = {"run": _run, "demo": _demo}

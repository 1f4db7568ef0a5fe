"""The `bovw run` and `bovw demo` commands: the whole pipeline on a dataset folder."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import time
from collections.abc import Callable, Collection
from pathlib import Path

from bovw.cli.common import (
    RUN_KEYS,
    add_config_flags,
    location,
    overrides,
    refuse_fraction_of_split_folders,
    refuse_ignored,
    refuse_unused,
    resolved,
    session,
    url,
)
from bovw.config import ConfigError, load_config
from bovw.errors import OutputError
from bovw.pipeline.inputs import check_local_dataset
from bovw.report import report_drawer
from bovw.spark.progress import StageProgress
from bovw.summary import RunSummary

__all__ = ["DEMO_OVERRIDES", "HANDLERS", "add_commands", "format_summary"]

RUN_WHY = "a run uses no [predict], [cnn] or [emr] settings"
LOCAL_RUN_KEYS = tuple(key for key in RUN_KEYS if key != "s3.")
DEMO_OVERRIDES = {"vocabulary.k": 60, "pca.components": 30, "spark.driver_memory": "2g"}


def add_commands(commands) -> None:
    """Add the run and demo sub-commands to the `bovw` parser's sub-parsers."""
    run = commands.add_parser("run", help="run the whole pipeline on a dataset folder")
    run.add_argument("--input", required=True,
                     help="dataset folder: Training/<Class>/*.jpg and Test/<Class>/*.jpg, "
                          "or <Class>/*.jpg alone (split by ingest.test_fraction)")
    run.add_argument("--output", required=True, help="run folder to create (or resume)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    run.add_argument("--descriptors-from", help="reuse the descriptors Parquet of an earlier run")
    add_config_flags(run)

    demo = commands.add_parser(
        "demo", help="generate a small fruit-like image set and run the pipeline on it"
    )
    demo.add_argument("--workdir", default="runs",
                      help="where the generated images and the run folder go (default: runs)")
    demo.add_argument("--classes", type=int, default=6,
                      help="number of generated classes, 2 to 10 (default: 6)")
    add_config_flags(demo)


def format_summary(summary: RunSummary, input_path: str) -> str:
    """The human-readable end-of-run summary of a run (`summary`) of `input_path`."""
    counts, keypoints, metrics = summary.counts, summary.keypoints, summary.metrics
    vocabulary = summary.vocabulary
    per_split = ", ".join(f"{split} {n}" for split, n in sorted(counts.per_split.items()))
    timings = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in summary.stage_seconds())
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
    if counts.rejected:
        # Counted in "images read", but why each was refused is in the rejects table.
        lines.insert(3, f"  rejects          {counts.rejected} images left out: each with its "
                        f"reason in {summary.output}/rejects/ (Parquet: path, label, split, "
                        "reason)")
    if metrics.test_only_classes:
        lines.insert(-1, f"  not scored       {metrics.test_only_images} Test images of "
                         f"classes not in Training: {', '.join(metrics.test_only_classes)}")
    if counts.other_size_note():
        lines.insert(-1, f"  other sizes      {counts.other_size_note()}")
    if summary.resumed_stages:
        lines.append(f"  resumed          {', '.join(summary.resumed_stages)} reused from disk")
    lines.append(f"  output           {summary.output}")
    return "\n".join(lines)


def _load_run_modules() -> None:
    """What a run loads besides Spark: the pipeline, and the report with its matplotlib;
    called while the driver JVM starts (bovw.cli.common.session's `meanwhile`)."""
    import bovw.pipeline.run  # noqa: F401
    import bovw.report.pages  # noqa: F401


def _run(args: argparse.Namespace, environ: dict) -> int:
    from bovw.cloud.s3a import uses_s3

    config = load_config(args.config, overrides(args))
    refuse_ignored(args, [config], RUN_KEYS, RUN_WHY)
    input_path, output_path = location(args.input), url(args.output)
    descriptors_from = url(args.descriptors_from) if args.descriptors_from else None
    if not uses_s3(input_path, output_path, descriptors_from):
        refuse_unused(args, LOCAL_RUN_KEYS, "no path of this run is on S3 (s3a://)")
    refuse_fraction_of_split_folders(args, check_local_dataset(input_path, config.ingest))
    spark = session(config, environ, input_path, output_path, descriptors_from,
                    verbose=args.verbose, warm_workers=True, meanwhile=_load_run_modules)
    output_path, descriptors_from = resolved(spark, output_path, descriptors_from)
    from bovw.pipeline.run import run_pipeline

    result = run_pipeline(spark, config, input_path, output_path, overwrite=args.overwrite,
                          descriptors_from=descriptors_from,
                          progress=StageProgress(spark.sparkContext), report=report_drawer(spark))
    print(format_summary(result.summary, input_path))
    print(f"  report           {_report_path(result.output)}")
    return 0


def _demo(args: argparse.Namespace, environ: dict) -> int:
    config = load_config(args.config, overrides(args, DEMO_OVERRIDES))
    refuse_ignored(args, [config], RUN_KEYS, RUN_WHY)
    refuse_unused(args, LOCAL_RUN_KEYS, "the demo reads and writes local folders")
    data = demo_dataset(Path(args.workdir), args.classes, config.seed)
    output = Path(args.workdir) / time.strftime("demo-%Y%m%d-%H%M%S")
    spark = session(config, environ, verbose=args.verbose, warm_workers=True,
                    meanwhile=_load_run_modules)
    from bovw.pipeline.run import run_pipeline

    result = run_pipeline(spark, config, str(data.resolve()), str(output.resolve()),
                          progress=StageProgress(spark.sparkContext), report=report_drawer(spark))
    print(format_summary(result.summary, str(data)))
    print(f"  report           {_report_path(result.output)}")
    return 0


# Written last into a generated demo image set: a folder without it is incomplete.
DEMO_MARKER = ".bovw-demo-complete"


def demo_dataset(workdir: Path, classes: int, seed: int,
                 log: Callable[[str], None] = print) -> Path:
    """The demo image set of `classes` classes under `workdir`: reused when complete,
    else generated into a hidden sibling and renamed into place once complete, so that
    an interrupted generation leaves no half image set behind (one that an older bovw
    left, recognised by its file names, is generated again). Raises ConfigError for a
    bad --classes or --workdir, OutputError when the folder cannot be written."""
    from bovw.image.synthetic import CLASS_NAMES, generate_dataset

    if not 2 <= classes <= len(CLASS_NAMES):
        raise ConfigError(f"--classes must be between 2 and {len(CLASS_NAMES)} (got {classes}): "
                          f"the generator draws {len(CLASS_NAMES)} kinds of fruit, and a "
                          "classifier needs two classes or more")
    if workdir.exists() and not workdir.is_dir():
        raise ConfigError(f"--workdir {workdir} is a file; fix: name a folder (it is created "
                          "when missing)")
    data = workdir / f"demo-data-{classes}-classes"
    if (data / DEMO_MARKER).is_file():
        return data
    if data.exists() and not _generated_by_bovw(data, CLASS_NAMES):
        raise OutputError(f"{data} exists but is not a demo image set bovw generated; fix: "
                          "move it away, or choose another --workdir")
    partial = workdir / f".{data.name}.partial-{os.getpid()}"
    try:
        for stale in workdir.glob(f".{data.name}.partial-*"):
            if not _alive(stale.name.rsplit("-", 1)[-1]):
                shutil.rmtree(stale, ignore_errors=True)
        if data.exists():
            log(f"[bovw] {data} is an incomplete demo image set: generating it again")
            shutil.rmtree(data)
        log(f"[bovw] generating a demo image set in {data}")
        generate_dataset(partial, classes=classes, seed=seed)
        (partial / DEMO_MARKER).write_text("complete\n")
        partial.rename(data)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        if (data / DEMO_MARKER).is_file():  # another bovw demo made it meanwhile
            return data
        raise OutputError(f"cannot write the demo image set in {workdir}: "
                          f"{error.strerror or error}; fix: choose a --workdir you may write "
                          "to") from None
    return data


def _generated_by_bovw(data: Path, class_names: Collection[str]) -> bool:
    """True when `data` holds only what the demo generator writes: Training/ and Test/ of
    generated class folders of <n>_<size>.jpg files (possibly not all of them)."""
    if not data.is_dir():
        return False
    for split in data.iterdir():
        if split.name not in ("Training", "Test") or not split.is_dir():
            return False
        for folder in split.iterdir():
            if folder.name not in class_names or not folder.is_dir():
                return False
            if not all(re.fullmatch(r"\d+_\d+\.jpg", file.name) for file in folder.iterdir()):
                return False
    return True


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _report_path(run: str) -> str:
    from bovw.report.pages import REPORT_NAME
    from bovw.spark import storage

    return storage.join(run, REPORT_NAME)


HANDLERS = {"run": _run, "demo": _demo}

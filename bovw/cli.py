"""The `bovw` command: parse arguments, build the session, call one library function."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from bovw.config import Config, ConfigError, load_config, parse_assignment
from bovw.errors import CloudError, InputError, OutputError, TrainingError, VocabularyError
from bovw.experiments_cli import EXPERIMENT_ERRORS
from bovw.experiments_cli import HANDLERS as EXPERIMENT_HANDLERS
from bovw.experiments_cli import add_commands as add_experiment_commands
from bovw.inputs import check_local_input
from bovw.predict_cli import PREDICT_ERRORS, PREDICT_HANDLERS, add_predict_commands
from bovw.progress import StageProgress
from bovw.session import JavaError, SparkStartError, build_session

USER_ERRORS = (ConfigError, InputError, OutputError, JavaError, VocabularyError, CloudError,
               SparkStartError, TrainingError, *PREDICT_ERRORS, *EXPERIMENT_ERRORS)

# Shortcut flags for the settings users change most; any other setting: --set key=value.
SHORTCUTS = {
    "k": ("vocabulary.k", int),
    "sample_size": ("vocabulary.sample_size", int),
    "pca_components": ("pca.components", int),
    "reg_param": ("classifier.reg_param", float),
    "master": ("spark.master", str),
    "seed": ("seed", int),
    "profile": ("s3.profile", str),
    "region": ("s3.region", str),
}

DEMO_OVERRIDES = {"vocabulary.k": 60, "pca.components": 30, "spark.driver_memory": "2g"}


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML file with the settings (default: built-in defaults)")
    parser.add_argument("--k", type=int, help="vocabulary size (vocabulary.k)")
    parser.add_argument("--sample-size", type=int, help="descriptors sampled for KMeans")
    parser.add_argument("--pca-components", type=int, help="PCA components (pca.components)")
    parser.add_argument("--reg-param", type=float, help="logistic regression regularisation")
    parser.add_argument("--master", help="Spark master URL, e.g. local[2] or spark://host:7077")
    parser.add_argument("--seed", type=int, help="seed for every random choice")
    parser.add_argument("--profile", help="AWS profile for s3a:// input/output (s3.profile)")
    parser.add_argument("--region", help="AWS region of the bucket (s3.region)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="any other setting, e.g. --set orb.nfeatures=300 (repeatable)")


def _overrides(args: argparse.Namespace, base: dict | None = None) -> dict:
    overrides = dict(base or {})
    for flag, (key, _type) in SHORTCUTS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    for assignment in args.set:
        key, value = parse_assignment(assignment)
        overrides[key] = value
    return overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bovw", description="Bag-of-visual-words image classification on Spark."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the whole pipeline on a dataset folder")
    run.add_argument("--input", required=True,
                     help="dataset folder: Training/<Class>/*.jpg and Test/<Class>/*.jpg")
    run.add_argument("--output", required=True, help="run folder to create (or resume)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    run.add_argument("--descriptors-from", help="reuse the descriptors Parquet of an earlier run")
    _add_config_flags(run)

    demo = commands.add_parser(
        "demo", help="generate a small fruit-like image set and run the pipeline on it"
    )
    demo.add_argument("--workdir", default="runs",
                      help="where the generated images and the run folder go (default: runs)")
    demo.add_argument("--classes", type=int, default=6, help="number of generated classes")
    _add_config_flags(demo)

    s3 = commands.add_parser("s3", help="put a dataset into S3 and look at it (boto3)")
    s3_commands = s3.add_subparsers(dest="s3_command", required=True)
    upload = s3_commands.add_parser("upload", help="upload a folder, skipping unchanged files")
    upload.add_argument("local_dir")
    upload.add_argument("s3_url", help="s3://bucket/prefix/")
    upload.add_argument("--no-progress", action="store_true", help="no progress bar")
    listing = s3_commands.add_parser("ls", help="list the objects under a prefix")
    listing.add_argument("s3_url", help="s3://bucket/prefix/")
    for sub in (upload, listing):
        _add_config_flags(sub)
        sub.add_argument("--endpoint", help="S3-compatible endpoint URL (s3.endpoint)")

    emr = commands.add_parser("emr", help="run the pipeline on Amazon EMR")
    emr_commands = emr.add_subparsers(dest="emr_command", required=True)
    submit = emr_commands.add_parser(
        "submit", help="add a pipeline step to a cluster, or create a cluster that runs it")
    submit.add_argument("--config-uri", required=True,
                        help="s3:// URI of the run's TOML config (shipped to the driver)")
    submit.add_argument("--input", required=True, help="s3:// or s3a:// dataset prefix")
    submit.add_argument("--output", required=True, help="s3:// or s3a:// run folder")
    submit.add_argument("--cluster-id", help="an existing cluster; without it one is created")
    submit.add_argument("--dry-run", action="store_true",
                        help="print the request instead of sending it")
    _add_config_flags(submit)

    add_predict_commands(commands, _add_config_flags)
    add_experiment_commands(commands, _add_config_flags)
    _add_verbose(parser)
    return parser


def _add_verbose(parser: argparse.ArgumentParser, top: bool = True) -> None:
    """--verbose on `parser` and on every sub-command below it, so that it may come before
    or after the sub-command. Below the top, an absent flag leaves the value alone
    (SUPPRESS): a sub-parser's default would otherwise reset a --verbose given before it."""
    parser.add_argument("--verbose", action="store_true",
                        default=False if top else argparse.SUPPRESS,
                        help="on an error, show its full trace (Python, Java, AWS) too")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in {id(sub): sub for sub in action.choices.values()}.values():
                _add_verbose(sub, top=False)


def _components(reduction: dict) -> str:
    kept, asked = reduction.get("components"), reduction.get("components_requested")
    capped = f" (pca.components={asked} capped: the Training features span only {kept} " \
        "dimensions)" if asked and kept and kept < asked else ""
    return f"{kept} components{capped}"


def format_summary(result, input_path: str) -> str:
    """The human-readable end-of-run summary."""
    counts, keypoints, metrics = result.counts, result.keypoints, result.metrics
    per_split = ", ".join(f"{split} {n}" for split, n in sorted(counts["per_split"].items()))
    timings = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in result.timings.items())
    variance = result.reduction.get("explained_variance_total", 0.0)
    lines = [
        "bovw run finished",
        f"  input            {input_path}",
        f"  images read      {counts['images']} (rejected {counts['rejected']}; {per_split}; "
        f"{counts['classes']} classes)",
        f"  keypoints/image  mean {keypoints['mean']}, median {keypoints['median']}, "
        f"min {keypoints['min']}, max {keypoints['max']}; "
        f"{keypoints['images_without_keypoints']} images without keypoints",
        f"  vocabulary       k={result.vocabulary['k']} from "
        f"{result.vocabulary['sample_descriptors']} sampled descriptors "
        f"({result.vocabulary['iterations']} iterations)",
        f"  PCA              {_components(result.reduction)}, "
        f"{100 * variance:.1f}% of variance",
        f"  accuracy         {100 * metrics['accuracy']:.2f}% on {metrics['test_images']} Test "
        f"images   macro F1 {metrics['macro_f1']:.4f}",
        f"  time per stage   {timings}; total {sum(result.timings.values()):.1f}s",
    ]
    if result.resumed_stages:
        lines.append(f"  resumed          {', '.join(result.resumed_stages)} reused from disk")
    lines.append(f"  output           {result.output}")
    return "\n".join(lines)


def _session(config: Config, environ: dict, *urls: str | None, verbose: bool = False):
    """The SparkSession, with s3a credentials and jars when any of `urls` is on S3;
    `verbose` leaves Spark's console as Spark makes it (bovw.session.build_session)."""
    from bovw.aws import resolve_credentials, spark_s3a_setup, uses_s3

    # Under spark-submit the JVM already runs with the submit flags, which then win.
    submitted = "PYSPARK_GATEWAY_PORT" in environ
    if not uses_s3(*urls):
        return build_session(config, java_home=environ.get("JAVA_HOME"), submitted=submitted,
                             verbose=verbose)
    credentials = resolve_credentials(config.s3.profile, region=config.s3.region)
    setup = spark_s3a_setup(config.s3, credentials)
    spark = build_session(config, java_home=environ.get("JAVA_HOME"),
                          extra=setup.spark_conf, submitted=submitted, verbose=verbose)
    from bovw import storage

    for url in urls:
        if uses_s3(url):
            # A missing connector, bucket or permission stops here, in one line.
            storage.exists(spark, url)
    return spark


def _run(args: argparse.Namespace, environ: dict) -> int:
    from bovw.aws import normalise_s3_url
    from bovw.pipeline import run_pipeline

    config = load_config(args.config, _overrides(args))
    input_path, output_path = normalise_s3_url(args.input), normalise_s3_url(args.output)
    check_local_input(input_path, config.ingest)
    spark = _session(config, environ, input_path, output_path, verbose=args.verbose)
    result = run_pipeline(spark, config, input_path, output_path, overwrite=args.overwrite,
                          descriptors_from=args.descriptors_from,
                          progress=StageProgress(spark.sparkContext))
    print(format_summary(result, input_path))
    from bovw.report import write_run_report

    print(f"  report           {write_run_report(spark, result.output)}")
    return 0


def _demo(args: argparse.Namespace, environ: dict) -> int:
    from bovw.pipeline import run_pipeline
    from bovw.synthetic import generate_dataset

    config = load_config(args.config, _overrides(args, DEMO_OVERRIDES))
    workdir = Path(args.workdir)
    data = workdir / f"demo-data-{args.classes}-classes"
    if not (data / "Training").is_dir():
        print(f"[bovw] generating a demo image set in {data}")
        generate_dataset(data, classes=args.classes, seed=config.seed)
    output = workdir / time.strftime("demo-%Y%m%d-%H%M%S")
    spark = _session(config, environ, verbose=args.verbose)
    result = run_pipeline(spark, config, str(data.resolve()), str(output.resolve()),
                          progress=StageProgress(spark.sparkContext))
    print(format_summary(result, str(data)))
    from bovw.report import write_run_report

    print(f"  report           {write_run_report(spark, result.output)}")
    return 0


def _s3(args: argparse.Namespace, environ: dict) -> int:
    from bovw.aws import boto3_session
    from bovw.s3 import list_objects, s3_client, upload

    overrides = _overrides(args)
    if args.endpoint:
        overrides["s3.endpoint"] = args.endpoint
    settings = load_config(args.config, overrides).s3
    client = s3_client(settings, boto3_session(settings.profile, settings.region))
    if args.s3_command == "ls":
        count = 0
        for item in list_objects(args.s3_url, client):
            print(f"{item.size:>12}  {item.key}")
            count += 1
        print(f"{count} objects", file=sys.stderr)
        return 0
    report = upload(args.local_dir, args.s3_url, client, progress=not args.no_progress,
                    concurrency=settings.upload_concurrency,
                    multipart_threshold=settings.multipart_threshold_bytes)
    print(report.summary())
    return 1 if report.failed else 0


def _emr(args: argparse.Namespace, environ: dict) -> int:
    import json

    from bovw.aws import boto3_session
    from bovw.emr import (
        build_step,
        cluster_request,
        create_cluster_with_step,
        emr_client,
        submit_step,
    )

    config = load_config(args.config, _overrides(args))
    # --profile and --region are the submitter's (its credentials, the EMR API's region);
    # every other override goes to the cluster, which reads the same config file.
    forwarded = _overrides(argparse.Namespace(**{**vars(args), "profile": None, "region": None}))
    step = build_step(config.emr, config_uri=args.config_uri, input_url=args.input,
                      output_url=args.output, overrides=forwarded, redactor=config.redactor())
    if args.dry_run:
        request = step if args.cluster_id else cluster_request(config.emr, step)
        print(json.dumps(request, indent=2))
        return 0
    settings = dataclasses.replace(config.emr, region=args.region or config.emr.region)
    client = emr_client(settings, boto3_session(config.s3.profile, settings.region))
    if args.cluster_id:
        print(f"step {submit_step(client, args.cluster_id, step)} added to {args.cluster_id}")
    else:
        print(f"cluster {create_cluster_with_step(client, config.emr, step)} created")
    return 0


def main(argv: Sequence[str] | None = None, environ: dict | None = None) -> int:
    """Entry point of `bovw` and of the jobs/ scripts. Returns the process exit code."""
    args = build_parser().parse_args(argv)
    environ = dict(os.environ if environ is None else environ)
    handlers = {"run": _run, "demo": _demo, "s3": _s3, "emr": _emr, **PREDICT_HANDLERS,
                **EXPERIMENT_HANDLERS}
    try:
        return handlers[args.command](args, environ)
    except ConfigError as error:
        return _fail("config error", error, args.verbose, 2)
    except USER_ERRORS as error:
        return _fail("error", error, args.verbose, 1)


def _fail(kind: str, error: Exception, verbose: bool, code: int) -> int:
    """Report a user error as one line (after its whole trace with --verbose)."""
    if verbose:
        traceback.print_exception(error, file=sys.stderr)
    print(f"bovw: {kind}: {' '.join(str(error).splitlines())}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())

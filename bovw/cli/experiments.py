"""The `bovw sweep`, `bovw compare` and `bovw report` commands (wired in by bovw.cli.command).

Like the CLI itself this module imports no Spark at load time: the handlers import what
they run.
"""

from __future__ import annotations

import argparse
import sys

from bovw.cli.common import (
    RUN_KEYS,
    SESSION_KEYS,
    add_config_flags,
    config_of,
    location,
    refuse_fraction_of_split_folders,
    refuse_ignored,
    refuse_unused,
    report_under_lock,
    resolved,
    session,
    url,
)
from bovw.config.differences import ignored_setting
from bovw.errors import ConfigError
from bovw.spark.progress import StageProgress

__all__ = ["HANDLERS", "VARIANTS", "add_commands"]

# bovw.experiments.compare.VARIANTS; repeated here so that the CLI starts without importing Spark.
VARIANTS = ("orb", "orb-colour", "cnn")


def add_commands(commands) -> None:
    """Add the sweep, compare and report sub-commands to the `bovw` parser."""
    # "resolve" lets --k be declared again, as a list, after the shared config flags.
    sweep = commands.add_parser(
        "sweep", conflict_handler="resolve",
        help="run the pipeline over several values of settings, descriptors extracted once")
    sweep.add_argument("--input", required=True, help="dataset folder")
    sweep.add_argument("--output", required=True, help="sweep folder to create (or resume)")
    sweep.add_argument("--overwrite", action="store_true", help="replace an existing sweep")
    sweep.add_argument("--descriptors-from",
                       help="reuse the descriptors Parquet of an earlier run (RUN/descriptors)")
    sweep.add_argument("--no-report", action="store_true", help="skip the report.html pages")
    add_config_flags(sweep)
    sweep.add_argument("--k", metavar="K1,K2,...",
                       help="vocabulary sizes to try: shorthand for --param vocabulary.k=...")
    sweep.add_argument("--param", action="append", default=[], metavar="SECTION.KEY=V1,V2",
                       help="a setting and its values, e.g. pca.components=20,50,100 "
                            "(repeatable: every combination is run); a list setting takes "
                            "bracketed lists: orb.dense_scales=[1.0],[1.0,2.0]")

    compare = commands.add_parser(
        "compare", help="visual words, visual words + colour and CNN features side by side")
    compare.add_argument("--input", required=True, help="dataset folder")
    compare.add_argument("--output", required=True, help="comparison folder (or resume)")
    compare.add_argument("--overwrite", action="store_true", help="replace an existing one")
    compare.add_argument("--variants", default=",".join(VARIANTS),
                         help=f"which to run, in order (default {','.join(VARIANTS)})")
    compare.add_argument("--cnn-features",
                         help="Parquet of CNN features made elsewhere (else: the built-in "
                              "extractor, which needs the [cnn] extra)")
    compare.add_argument("--path-col", help="path column of --cnn-features (cnn.path_column)")
    compare.add_argument("--label-col", help="label column (cnn.label_column)")
    compare.add_argument("--features-col", help="features column (cnn.features_column)")
    compare.add_argument("--backbone", help="built-in backbone (cnn.backbone): "
                                            "efficientnet-lite0, mobilenet_v2, resnet50")
    compare.add_argument("--descriptors-from",
                         help="descriptors of an earlier run for both ORB variants "
                              "(made with colour.enabled=true for orb-colour)")
    compare.add_argument("--no-report", action="store_true", help="skip the report.html pages")
    add_config_flags(compare)

    report = commands.add_parser(
        "report", help="(re)write report.html of a finished run, sweep or comparison folder")
    report.add_argument("folder", help="the run, sweep or comparison folder")
    add_config_flags(report)


def _sweep(args: argparse.Namespace, environ: dict) -> int:
    from bovw.experiments.sweep import parse_parameter, run_sweep, sweep_points
    from bovw.experiments.tables import sweep_markdown
    from bovw.pipeline.inputs import check_local_dataset

    parameters = [parse_parameter(text) for text in args.param]
    if args.k:
        parameters.insert(0, parse_parameter(f"vocabulary.k={args.k}"))
    args.k = None  # a list here, not the single value of the shared --k flag
    config = config_of(args)
    points = sweep_points(config, parameters)  # bad keys or values stop here, before Spark
    configs = [config.replace(**point.values) for point in points]
    refuse_ignored(args, configs, RUN_KEYS, "a sweep uses no [predict], [cnn] or [emr] settings")
    # A swept setting no point reads would give the same run under several names.
    ignored = ignored_setting([key for key, _values in parameters], configs)
    if ignored is not None:
        raise ConfigError(f"--param {ignored}: every point of this sweep would be the same "
                          "run; sweep it together with that setting, or drop it")
    input_path, output_path = location(args.input), url(args.output)
    descriptors_from = url(args.descriptors_from) if args.descriptors_from else None
    refuse_fraction_of_split_folders(args, check_local_dataset(input_path, config.ingest),
                                     [key for key, _values in parameters])
    spark = session(config, environ, input_path, output_path, descriptors_from,
                    verbose=args.verbose, warm_workers=True)
    output_path, descriptors_from = resolved(spark, output_path, descriptors_from)
    result = run_sweep(spark, config, input_path, output_path, parameters,
                       descriptors_from=descriptors_from, overwrite=args.overwrite,
                       report=not args.no_report, progress=StageProgress(spark.sparkContext))
    print(sweep_markdown(result.keys, result.rows))
    print(f"sweep table: {result.output}/sweep.csv"
          + ("" if args.no_report else f"; report: {result.output}/report.html"))
    if result.failed:
        # Every other point ran; the command still fails so that no script takes the
        # sweep for complete.
        failures = "; ".join(f"{name}: {reason}" for name, reason in result.failed)
        print(f"bovw: error: {len(result.failed)} of {len(result.rows)} sweep points failed "
              f"(see {result.output}/sweep.md): {failures}", file=sys.stderr)
        return 1
    return 0


def _compare(args: argparse.Namespace, environ: dict) -> int:
    from bovw.experiments.compare import compare, parse_variants
    from bovw.pipeline.inputs import check_local_dataset
    from bovw.spark import storage

    overrides = {key: value for key, value in (
        ("cnn.path_column", args.path_col), ("cnn.label_column", args.label_col),
        ("cnn.features_column", args.features_col), ("cnn.backbone", args.backbone))
        if value is not None}
    config = config_of(args, overrides)
    refuse_ignored(args, [config.replace(**{"colour.enabled": on}) for on in (False, True)],
                   (*RUN_KEYS, "cnn."), "a comparison uses no [predict] or [emr] settings")
    variants = parse_variants(args.variants)
    input_path, output_path = location(args.input), url(args.output)
    cnn_features, descriptors_from = (url(path) if path else None
                                      for path in (args.cnn_features, args.descriptors_from))
    refuse_fraction_of_split_folders(args, check_local_dataset(input_path, config.ingest))
    spark = session(config, environ, input_path, output_path, cnn_features, descriptors_from,
                    verbose=args.verbose, warm_workers=True)
    output_path, cnn_features, descriptors_from = resolved(spark, output_path, cnn_features,
                                                           descriptors_from)
    result = compare(spark, config, input_path, output_path, variants=variants,
                     cnn_features=cnn_features, descriptors_from=descriptors_from,
                     overwrite=args.overwrite, report=not args.no_report,
                     progress=StageProgress(spark.sparkContext))
    print(storage.read_text(spark, storage.join(result.output, "comparison.md")))
    print(f"comparison: {result.output}/comparison.csv"
          + ("" if args.no_report else f"; report: {result.output}/report.html"))
    return 0


def _report(args: argparse.Namespace, environ: dict) -> int:
    from bovw.cloud.s3a import normalise_s3_url
    from bovw.errors import OutputError
    from bovw.spark import storage

    config = config_of(args)
    refuse_unused(args, SESSION_KEYS, "bovw report draws the folder as it was made")
    given = normalise_s3_url(args.folder).rstrip("/") or "/"
    spark = session(config, environ, given, verbose=args.verbose)
    # Where Spark reads it, as the run, sweep or comparison was written there (a relative
    # folder is below the HDFS home on a cluster whose default filesystem is HDFS); "."
    # and ".." name their folder (and its lock) like any other.
    folder = storage.resolve(spark, given, keep_dots=False)
    kind = next((name for name in ("sweep", "compare", "summary")
                 if storage.exists(spark, storage.join(folder, f"{name}.json"))), None)
    if kind is None:
        if storage.exists(spark, storage.join(folder, "run.json")):
            raise OutputError(f"{folder} is a bovw run that has not finished (no "
                              "summary.json); fix: run the same bovw run command again, which "
                              "goes on where it stopped and draws the report")
        raise OutputError(f"{folder} not found" if not storage.exists(spark, folder) else
                          f"{folder} is not a finished bovw run, sweep or comparison folder")
    print(f"report: {report_under_lock(spark, folder, lambda: _draw(spark, folder, kind))}")
    return 0


def _draw(spark, folder: str, kind: str) -> str:
    """Write report.html of the `kind` ("sweep", "compare" or "summary": a run) folder."""
    if kind == "sweep":
        from bovw.experiments.sweep import collect_result, write_report

        result = collect_result(spark, folder)
        _say_unfinished(result.unfinished, len(result.rows), "sweep point", "bovw sweep")
        return write_report(spark, result)
    if kind == "compare":
        from bovw.experiments.compare import collect_result as collect_comparison
        from bovw.experiments.compare import write_outputs
        from bovw.spark import storage

        comparison = collect_comparison(spark, folder)
        _say_unfinished(comparison.unfinished, len(comparison.rows), "variant", "bovw compare")
        write_outputs(spark, comparison, report=True)
        return storage.join(folder, "report.html")
    from bovw.report.pages import write_run_report

    return write_run_report(spark, folder)


def _say_unfinished(names: list[str], total: int, noun: str, command: str) -> None:
    # Drawn all the same (a report of the progress), but never taken for the whole.
    if names:
        print(f"[bovw] warning: {len(names)} of {total} {noun}s not finished "
              f"({', '.join(names)}): the report marks them; the same {command} command "
              "runs them", file=sys.stderr)


HANDLERS = {"sweep": _sweep, "compare": _compare, "report": _report}

"""What the command modules share: the configuration flags, the overrides they give, the
SparkSession, and which settings each command uses.

Like bovw.cli.command, this module imports no Spark at load time.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection

from bovw.cli import interrupt
from bovw.config import Config, ConfigError, load_config, merge_overrides, parse_assignment
from bovw.config.differences import RUN_KEYS, SESSION_KEYS, ignored_setting, unused_setting
from bovw.spark.session import build_session
from bovw.spark.workers import warm_python_workers

__all__ = ["PREDICT_KEYS", "RUN_KEYS", "SESSION_KEYS", "SHORTCUTS", "add_config_flags",
           "config_of", "location", "overrides", "refuse_fraction_of_split_folders",
           "refuse_ignored", "refuse_unused", "resolved",
           "session", "url"]


def location(path: str) -> str:
    """An input path bovw reads itself, as given on the command line: an S3 URL in its
    s3a:// form, a plain path (read from the local disk) made absolute, which bovw records
    and prints (the same from any working directory)."""
    from bovw.spark.storage import absolute

    return absolute(url(path))


def url(path: str) -> str:
    """A path as given on the command line, an S3 URL in its s3a:// form."""
    from bovw.cloud.s3a import normalise_s3_url

    return normalise_s3_url(path)


def resolved(spark, *paths: str | None) -> list[str | None]:
    """Paths Spark reads or writes (outputs, reused descriptors) as it resolves them, a
    relative one made absolute on its filesystem (bovw.spark.storage.resolve); None stays
    None."""
    from bovw.spark import storage

    return [None if path is None else storage.resolve(spark, path) for path in paths]


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

# What `bovw predict` uses of the configuration besides the model: the session, its own
# settings, the listing of a folder; and what it compares with the model (the rest of the
# model's settings cannot be changed at prediction time).
PREDICT_KEYS = ("spark.", "s3.", "predict.", "ingest.extensions", "ingest.max_file_bytes",
                "orb.", "colour.", "tone.", "histograms.", "vocabulary.k", "vocabulary.space",
                "pca.components", "seed")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every command takes: --config, the shortcuts and --set."""
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
                        help="any other setting, e.g. --set orb.dense_step=4 (repeatable)")


def overrides(args: argparse.Namespace, base: dict | None = None) -> dict:
    """The dotted-key overrides the flags in `args` give, after those of `base`. Raises
    ConfigError for a setting the flags give twice with two values (merge_overrides)."""
    shortcuts = [(f"--{flag.replace('_', '-')}", key, getattr(args, flag))
                 for flag, (key, _type) in SHORTCUTS.items()
                 if getattr(args, flag, None) is not None]
    assignments = [("--set", *parse_assignment(text)) for text in args.set]
    return merge_overrides([*shortcuts, *assignments], base)


def refuse_fraction_of_split_folders(args: argparse.Namespace, split_by_folders: bool,
                                     swept: Collection[str] = ()) -> None:
    """ingest.test_fraction given on the command line (or `swept`) for a dataset its
    Training/Test folders split is a config error: every value gives the same run."""
    if split_by_folders and "ingest.test_fraction" in {*overrides(args), *swept}:
        raise ConfigError("ingest.test_fraction has no effect here: the input's Training/ "
                          "and Test/ folders give the split (it splits a <Class>/*.jpg "
                          "dataset); drop it")


def config_of(args: argparse.Namespace, extra: dict | None = None) -> Config:
    """The Config a command runs with: --config, then the flags' overrides, then `extra`."""
    return load_config(args.config, {**overrides(args), **(extra or {})})


def refuse_unused(args: argparse.Namespace, used: Collection[str], why: str) -> None:
    """A setting given on the command line that the command does not use (`used`: keys, or
    prefixes ending with ".") is a config error, not silently dropped; `why` says why."""
    unused = unused_setting(overrides(args), used)
    if unused is not None:
        raise ConfigError(f"{unused} has no effect here: {why}; drop it")


def refuse_ignored(args: argparse.Namespace, configs: Collection[Config],
                   used: Collection[str], why: str) -> None:
    """refuse_unused, and then refuse a setting given on the command line that every one
    of `configs` (what the command runs) leaves unused by another of its settings
    (bovw.config.differences.CONDITIONAL_SETTINGS: orb.nfeatures with dense sampling,
    ...), wherever that other setting came from: the config file, a flag, the default."""
    refuse_unused(args, used, why)
    ignored = ignored_setting(overrides(args), configs)
    if ignored is not None:
        raise ConfigError(f"{ignored.replace(' applies', ' has no effect here: it applies', 1)}"
                          "; drop it, or change that setting")


def session(config: Config, environ: dict, *urls: str | None, verbose: bool = False,
            warm_workers: bool = False, meanwhile: Callable[[], object] = lambda: None):
    """The SparkSession for `config` (environ: the process environment), with s3a
    credentials and jars when any of `urls` is on S3; `verbose` leaves Spark's console as
    Spark makes it (bovw.spark.session.build_session). `warm_workers`: the command runs
    the pipeline, whose Python workers a local session starts at once, in the background
    (bovw.spark.workers). `meanwhile` runs while the driver JVM starts: the command's
    imports (bovw.spark.session.build_session)."""
    from bovw.cloud.s3a import spark_s3a_setup, uses_s3

    # Under spark-submit the JVM already runs with the submit flags, which then win.
    submitted = "PYSPARK_GATEWAY_PORT" in environ
    extra = None
    if uses_s3(*urls):
        from bovw.cloud.credentials import boto3_session, credentials_from_session
        from bovw.cloud.s3 import check_reachable, s3_client

        # One boto3 session for both: a profile that assumes a role resolves once.
        aws = boto3_session(config.s3.profile, config.s3.region)
        extra = spark_s3a_setup(config.s3, credentials_from_session(aws)).spark_conf
        # Before Spark starts: its connector would report each as missing jars, or in Java.
        check_reachable([url for url in urls if url and uses_s3(url)],
                        s3_client(config.s3, aws))
    with interrupt.held():  # a Ctrl-C while Spark starts waits for bovw's handler
        spark = build_session(config, java_home=environ.get("JAVA_HOME"), extra=extra,
                              submitted=submitted, verbose=verbose, environ=environ,
                              meanwhile=meanwhile)
        interrupt.install(spark)  # Ctrl-C: one line (bovw.cli.interrupt)
    if warm_workers:
        # Before the checks below, which leave the task slots idle.
        warm_python_workers(spark)
    from bovw.spark import storage

    for url in urls:
        if uses_s3(url):
            # A missing connector, bucket or permission stops here, in one line.
            storage.exists(spark, url)
    return spark


def report_under_lock(spark, folder: str, draw: Callable[[], str]) -> str:
    """Call `draw` (which gathers `folder` and writes its report.html, returning its path)
    holding the folder's lock (bovw.spark.leases.holding), so that no bovw command replaces
    or resumes the folder between the gathering and the writing: a report never shows
    another run's numbers.

    Raises OutputInUseError (one line) while another bovw command holds the folder.
    """
    from bovw.spark import leases

    return leases.holding(spark, folder, "bovw report", draw, advice=(
        f"wait for it to end, then draw the report with: bovw report {folder}"))

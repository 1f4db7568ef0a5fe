"""The --config / --k / --set arguments of the bench command lines: the Config they name,
and the same arguments again for a child process.

It imports bovw.config alone, so that bench/spark_run.py, the process that times every
`bovw run`, loads neither OpenCV nor scikit-learn as bench/reference.py does.
"""

from __future__ import annotations

import argparse

from bovw.config import Config, load_config, merge_overrides, parse_assignment

__all__ = ["add_config_arguments", "config_arguments", "config_from_args"]


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --config FILE, --k K and the repeatable --set SECTION.KEY=VALUE to `parser`."""
    parser.add_argument("--config", help="TOML file (default: built-in defaults)")
    parser.add_argument("--k", type=int, help="vocabulary size (vocabulary.k)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override any setting, e.g. --set orb.upscale=2 (repeatable)",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """The Config named by --config / --k / --set, read as `bovw run` reads the same flags
    (bovw.cli.common.config_of), so that a bench's reference and its `bovw run` child work
    to the same settings: a setting given twice with two values (--k 30 with --set
    vocabulary.k=40) is a ConfigError, as bovw run refuses it."""
    given = [("--k", "vocabulary.k", args.k)] if args.k is not None else []
    given += [("--set", *parse_assignment(text)) for text in args.set]
    return load_config(args.config, merge_overrides(given))


def config_arguments(args: argparse.Namespace) -> list[str]:
    """The --config/--set/--k arguments that give a child process the same Config."""
    forwarded = ["--config", args.config] if args.config else []
    for assignment in args.set:
        forwarded += ["--set", assignment]
    if args.k is not None:
        forwarded += ["--k", str(args.k)]
    return forwarded

"""bench/config_args.py: the bench command lines' --config / --k / --set, and the same
settings handed on to a child process, read as `bovw run` reads them."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from bench.config_args import add_config_arguments, config_arguments, config_from_args
from bovw.cli.command import build_parser
from bovw.cli.common import config_of

REPO = Path(__file__).resolve().parents[1]


def parsed(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return parser.parse_args(argv)


def test_the_forwarded_arguments_give_bovw_run_the_same_config(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("[pca]\ncomponents = 12\n", encoding="utf-8")
    args = parsed(["--config", str(toml), "--set", "orb.dense_step=7",
                   "--set", "vocabulary.k=40", "--k", "40"])
    forwarded = config_arguments(args)
    assert forwarded == ["--config", str(toml), "--set", "orb.dense_step=7",
                         "--set", "vocabulary.k=40", "--k", "40"]
    config = config_from_args(args)
    assert (config.pca.components, config.orb.dense_step, config.vocabulary.k) == (12, 7, 40)
    child = build_parser().parse_args(["run", "--input", "in", "--output", "out", *forwarded])
    assert config_of(child) == config
    assert config_from_args(parsed(forwarded)) == config
    assert config_from_args(parsed(["--k", "30"])).vocabulary.k == 30


def test_a_setting_given_twice_with_two_values_is_refused_as_bovw_run_refuses_it():
    import pytest

    from bovw.config import ConfigError

    argv = ["--set", "vocabulary.k=40", "--k", "30"]
    with pytest.raises(ConfigError, match="^vocabulary.k is given twice with two values"):
        config_from_args(parsed(argv))
    with pytest.raises(ConfigError, match="^vocabulary.k is given twice with two values"):
        config_of(build_parser().parse_args(["run", "--input", "i", "--output", "o", *argv]))


def test_no_arguments_forward_nothing_and_give_the_defaults():
    args = parsed([])
    assert config_arguments(args) == []
    assert config_from_args(args).vocabulary.k == 1000


def test_the_process_that_times_bovw_run_loads_neither_opencv_nor_scikit_learn():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, bench.spark_run; "
         "print(sorted(m for m in ('cv2', 'sklearn') if m in sys.modules))"],
        capture_output=True, text=True, check=True, cwd=REPO).stdout.strip()
    assert loaded == "[]"

"""bench/config_args.py: the bench command lines' --config / --k / --set, and the same
settings handed on to a child process."""

from __future__ import annotations

import argparse
import subprocess
import sys

from bench.config_args import add_config_arguments, config_arguments, config_from_args


def parsed(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return parser.parse_args(argv)


def test_the_forwarded_arguments_give_the_child_the_same_config(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("[pca]\ncomponents = 12\n", encoding="utf-8")
    args = parsed(["--config", str(toml), "--set", "orb.dense_step=7",
                   "--set", "vocabulary.k=40", "--k", "30"])
    forwarded = config_arguments(args)
    assert forwarded == ["--config", str(toml), "--set", "orb.dense_step=7",
                         "--set", "vocabulary.k=40", "--k", "30"]
    config = config_from_args(args)
    # --k wins over a --set of the same setting, in the parent and in the child.
    assert (config.pca.components, config.orb.dense_step, config.vocabulary.k) == (12, 7, 30)
    assert config_from_args(parsed(forwarded)) == config


def test_no_arguments_forward_nothing_and_give_the_defaults():
    args = parsed([])
    assert config_arguments(args) == []
    assert config_from_args(args).vocabulary.k == 1000


def test_the_process_that_times_bovw_run_loads_neither_opencv_nor_scikit_learn():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, bench.spark_run; "
         "print(sorted(m for m in ('cv2', 'sklearn') if m in sys.modules))"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"

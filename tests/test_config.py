"""Configuration: TOML + overrides parsed once into a validated, frozen object."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bovw.config import Config, ConfigError, load_config, parse_assignment

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_valid_and_frozen():
    config = load_config()
    assert config.vocabulary.k == 1000
    assert (config.orb.sampling, config.orb.dense_step, config.orb.dense_scales) == (
        "dense", 5, (1.0,))
    assert (config.histograms.pyramid_levels, config.histograms.power,
            config.classifier.standardize) == (3, 0.5, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.vocabulary.k = 3  # type: ignore[misc]


@pytest.mark.parametrize("name", ["local.toml", "ec2-t3.2xlarge.toml"])
def test_shipped_config_files_load(name):
    config = load_config(ROOT / "conf" / name)
    assert isinstance(config, Config)
    # The shipped files compute what the defaults compute (they size Spark, not the features).
    assert config.histograms == load_config().histograms


def test_ec2_config_is_sized_for_eight_cores():
    config = load_config(ROOT / "conf" / "ec2-t3.2xlarge.toml")
    assert config.spark.master == "local[8]"
    assert config.spark.driver_memory == "20g"


def test_file_values_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('seed = 7\n[vocabulary]\nk = 50\n[orb]\ndense_scales = [1.0, 2.0]\n')
    config = load_config(path, {"vocabulary.k": "64", "histograms.tfidf": "false",
                                "spark.conf.spark.ui.enabled": "false"})
    assert config.seed == 7
    assert config.vocabulary.k == 64
    assert config.histograms.tfidf is False
    assert config.orb.dense_scales == (1.0, 2.0)
    assert config.spark.conf == {"spark.ui.enabled": "false"}


@pytest.mark.parametrize("text, scales", [
    ("1.0,1.5", (1.0, 1.5)), ("1.0, 1.5", (1.0, 1.5)), ("2", (2.0,)),
    # As written in the TOML file: this was split at its commas, "[1.0" failed.
    ("[1.0, 1.5]", (1.0, 1.5)), ("[2]", (2.0,)), ("[ 1.0,1.5, ]", (1.0, 1.5)),
])
def test_lists_on_the_command_line_as_plain_text_or_as_in_toml(text, scales):
    assert load_config(None, {"orb.dense_scales": text}).orb.dense_scales == scales


def test_a_list_of_strings_as_in_toml():
    config = load_config(None, {"ingest.extensions": '["png", "JPG"]'})
    assert config.ingest.extensions == ("png", "JPG")
    # Before, the TOML form was taken as one extension '["png"' and another ' "JPG"]'.
    assert load_config(None, {"ingest.extensions": "png,tif"}).ingest.extensions == (
        "png", "tif")


def test_seed_bounds_are_accepted():
    assert load_config(None, {"seed": 0}).seed == 0
    assert load_config(None, {"seed": str(2**63 - 1)}).seed == 2**63 - 1


def test_round_trip_through_dict():
    config = load_config(None, {"vocabulary.k": 12})
    assert load_config(None, {}).replace(**{"vocabulary.k": 12}) == config


@pytest.mark.parametrize("overrides, message", [
    ({"vocabulary.k": 1}, "vocabulary.k must be >= 2 (got 1)"),
    ({"vocabulary.sample_size": -5}, "vocabulary.sample_size must be >= 1 (got -5)"),
    ({"vocabulary.k": "many"}, "vocabulary.k must be an integer (got 'many')"),
    ({"ingest.test_fraction": 1.5}, "ingest.test_fraction must be between 0 and 1 (exclusive)"),
    ({"orb.sampling": "grid"}, "orb.sampling must be 'detect' or 'dense'"),
    ({"histograms.tfidf": "maybe"}, "histograms.tfidf must be true or false (got 'maybe')"),
    # inf and nan are numbers to float() and TOML, and settings of no meaning.
    ({"tone.weight": "inf"}, "tone.weight must be a finite number (got 'inf')"),
    ({"classifier.reg_param": "nan"}, "classifier.reg_param must be a finite number (got 'nan')"),
    ({"classifier.tol": float("-inf")}, "classifier.tol must be a finite number (got -inf)"),
    # Spark seeds are Java longs and numpy's generators take no negative seed.
    ({"seed": -1}, "seed must be between 0 and 9223372036854775807 (got -1)"),
    ({"seed": 2**63}, "seed must be between 0 and 9223372036854775807 (got 9223372036854775808)"),
    ({"orb.dense_scales": "[1.0"},
     "orb.dense_scales must be a list such as [1, 2] (got '[1.0': Unclosed array "
     "(at end of document))"),
    ({"orb.dense_scales": "[[1.0]]"},
     "orb.dense_scales must be a list of numbers, such as [1, 2] or 1,2 on the command line "
     "(got [1.0] in it)"),
    # Review 5: "must be a number" for a list written with ';'.
    ({"orb.dense_scales": "1.0;1.5"},
     "orb.dense_scales must be a list of numbers, such as [1, 2] or 1,2 on the command line "
     "(got '1.0;1.5' in it)"),
    ({"ingest.extensions": "[]"}, "ingest.extensions must list at least one extension"),
])
def test_invalid_values_give_one_line_errors(overrides, message):
    with pytest.raises(ConfigError) as error:
        load_config(None, overrides)
    assert str(error.value) == message


def test_unknown_keys_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'vocabulary.kk'"):
        load_config(None, {"vocabulary.kk": 3})
    path = tmp_path / "bad.toml"
    path.write_text("[vocabulary]\nsize = 10\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'vocabulary.size'; known keys"):
        load_config(path)
    path.write_text("[vocab]\nk = 10\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'vocab'"):
        load_config(path)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    path = tmp_path / "broken.toml"
    path.write_text("[vocabulary\nk=")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(path)


def test_a_config_file_not_in_utf8_is_one_line(tmp_path, capsys):
    from bovw.cli import main

    path = tmp_path / "c.toml"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"is not UTF-8 text \(byte 0xff at offset 0\); "
                                          "fix: save it as UTF-8"):
        load_config(path)
    assert main(["run", "--input", str(tmp_path), "--output", str(tmp_path / "out"),
                 "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"bovw: config error: config file {path} is not UTF-8 text (byte 0xff at " \
        "offset 0); fix: save it as UTF-8\n"


def test_a_config_folder_is_not_called_missing(tmp_path):
    with pytest.raises(ConfigError, match=f"config file {tmp_path} is a folder; fix: name a "
                                          "TOML file"):
        load_config(tmp_path)


def test_parse_assignment():
    assert parse_assignment("orb.nfeatures = 300") == ("orb.nfeatures", "300")
    with pytest.raises(ConfigError, match="--set expects section.key=value"):
        parse_assignment("orb.nfeatures")


@pytest.mark.parametrize("value", ["[1, 2]", '{ a = 1 }'])
def test_a_spark_conf_value_that_is_a_list_or_table_is_refused(tmp_path, value):
    # It reached Spark as its Python text, "[1, 2]" (review 3).
    path = tmp_path / "c.toml"
    path.write_text(f'[spark.conf]\n"spark.sql.shuffle.partitions" = {value}\n')
    with pytest.raises(ConfigError, match=r"^spark\.conf\.spark\.sql\.shuffle\.partitions must "
                                          r"be a string, a number or true/false \(got "):
        load_config(path)
    path.write_text('[spark.conf]\n"spark.sql.shuffle.partitions" = 4\n"spark.x" = true\n')
    assert dict(load_config(path).spark.conf) == {"spark.sql.shuffle.partitions": "4",
                                                  "spark.x": "True"}


@pytest.mark.parametrize("toml, message", [
    ('[vocabulary]\nk = "500"\n', "vocabulary.k must be an integer, not text (got '500')"),
    ('seed = "3"\n', "seed must be an integer, not text (got '3')"),
    ('[histograms]\ntfidf = "false"\n', "histograms.tfidf must be true or false, not text"),
    ('[orb]\ndense_scales = ["1.0", 2.0]\n', "orb.dense_scales must be a number, not text"),
    ('[orb]\ndense_scales = "1.0,2.0"\n', "orb.dense_scales must be a number, not text"),
])
def test_a_number_or_boolean_written_as_text_in_a_config_file_is_refused(tmp_path, toml,
                                                                        message):
    # Review 3: TOML values have types, and k = "500" was read as the number.
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value).startswith(message)
    assert str(raised.value).endswith("; fix: write it without quotes")


def test_text_settings_and_command_line_values_stay_text(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[spark]\ndriver_memory = "6g"\n[spark.conf]\n"spark.x" = "4"\n'
                    '[ingest]\nextensions = ["jpg"]\n')
    config = load_config(path, {"vocabulary.k": "64", "seed": "3"})
    assert (config.spark.driver_memory, config.spark.conf["spark.x"]) == ("6g", "4")
    assert (config.ingest.extensions, config.vocabulary.k, config.seed) == (("jpg",), 64, 3)

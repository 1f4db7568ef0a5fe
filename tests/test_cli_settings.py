"""A command refuses, in one line, a setting given on the command line that it does not
use: one of another command's sections, or one that another setting leaves unused (the
ORB detector's settings under dense sampling, ...), wherever that other setting came
from. A config file holding such settings stays accepted. And `bovw demo` checks its own
arguments and regenerates an incomplete image set.

Every case stops before Spark starts: an accepted setting reaches the dataset check,
which refuses the missing input folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bovw.cli import main
from bovw.cli.run import DEMO_MARKER, demo_dataset
from bovw.config import load_config
from bovw.config.differences import ignored_setting
from bovw.errors import ConfigError, OutputError

REPO = Path(__file__).resolve().parent.parent
DENSE_IGNORES = "has no effect here: it applies only with orb.sampling=detect (here " \
    "orb.sampling=dense); drop it, or change that setting"


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.rstrip("\n")


def _run(tmp_path: Path, *flags: str) -> list[str]:
    return ["run", "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "out"),
            *flags]


@pytest.mark.parametrize("key", ["orb.nfeatures=5", "orb.fast_threshold=200",
                                 "orb.scale_factor=2", "orb.n_levels=3"])
def test_run_refuses_detector_settings_under_the_default_dense_sampling(tmp_path, capsys, key):
    assert main(_run(tmp_path, "--set", key)) == 2
    assert _err(capsys) == f"bovw: config error: {key.split('=')[0]} {DENSE_IGNORES}"


def test_the_sampling_may_come_from_the_config_file(tmp_path, capsys):
    config = tmp_path / "detect.toml"
    config.write_text('[orb]\nsampling = "detect"\n')
    assert main(_run(tmp_path, "--config", str(config), "--set", "orb.dense_step=4")) == 2
    assert _err(capsys) == (
        "bovw: config error: orb.dense_step has no effect here: it applies only with "
        "orb.sampling=dense (here orb.sampling=detect); drop it, or change that setting")
    # ... and the detector's settings are then used
    assert main(_run(tmp_path, "--config", str(config), "--set", "orb.nfeatures=5")) == 1
    assert _err(capsys) == f"bovw: error: input folder not found: {tmp_path / 'missing'}"


def test_used_settings_and_a_config_file_holding_others_pass(tmp_path, capsys):
    # conf/local.toml holds orb.nfeatures ("detect" only) and [predict]: not refused.
    for flags in (["--config", str(REPO / "conf" / "local.toml")],
                  ["--set", "orb.sampling=detect", "--set", "orb.nfeatures=5"],
                  ["--set", "orb.dense_step=4", "--k", "30", "--set", "tone.bins=16"]):
        assert main(_run(tmp_path, *flags)) == 1
        assert str(tmp_path / "missing") in _err(capsys)


@pytest.mark.parametrize("key", ["predict.top=5", "cnn.batch_size=4", "emr.region=eu-west-1"])
def test_run_refuses_other_commands_settings(tmp_path, capsys, key):
    assert main(_run(tmp_path, "--set", key)) == 2
    assert _err(capsys) == (f"bovw: config error: {key.split('=')[0]} has no effect here: a "
                            "run uses no [predict], [cnn] or [emr] settings; drop it")


def test_s3_settings_need_an_s3_path(tmp_path, capsys):
    for flags in (["--profile", "dev"], ["--set", "s3.region=eu-west-1"]):
        assert main(_run(tmp_path, *flags)) == 2
        assert _err(capsys).endswith("has no effect here: no path of this run is on S3 "
                                     "(s3a://); drop it")
    assert main(["demo", "--workdir", str(tmp_path), "--region", "eu-west-1"]) == 2
    assert _err(capsys) == ("bovw: config error: s3.region has no effect here: the demo "
                            "reads and writes local folders; drop it")


def test_blocks_and_assignment_settings_need_their_switch(tmp_path, capsys):
    cases = {"tone.bins=16": ("--set", "tone.enabled=false"),
             "colour.weight=2": (),
             "histograms.soft_neighbours=4": (),
             "vocabulary.init_steps=3": (),
             # Review 3: accepted, recorded, and a sweep over it ran the same run twice.
             "vocabulary.mixture_max_iter=5": (),
             "vocabulary.mixture_tol=0.5": ()}
    for key, extra in cases.items():
        assert main(_run(tmp_path, *extra, "--set", key)) == 2
        assert f"{key.split('=')[0]} has no effect here: it applies only with" in _err(capsys)
    assert main(_run(tmp_path, "--set", "vocabulary.mixture_tol=0.5")) == 2
    assert ("vocabulary.mixture_tol has no effect here: it applies only with "
            "histograms.encoding=fisher (here histograms.encoding=words)") in _err(capsys)


def test_sweep_and_compare_refuse_them_too(tmp_path, capsys):
    sweep = ["sweep", "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o"),
             "--k", "5,6"]
    assert main([*sweep, "--set", "orb.nfeatures=5"]) == 2
    assert _err(capsys) == f"bovw: config error: orb.nfeatures {DENSE_IGNORES}"
    assert main([*sweep, "--set", "predict.top=2"]) == 2
    assert "predict.top has no effect here" in _err(capsys)
    # used by one point of the sweep: accepted
    assert main([*sweep, "--param", "orb.sampling=dense,detect",
                 "--set", "orb.nfeatures=5"]) == 1
    assert str(tmp_path / "missing") in _err(capsys)

    # Swept, a setting no point reads made several points of one run.
    assert main([*sweep, "--param", "orb.nfeatures=5,10"]) == 2
    assert _err(capsys) == (
        "bovw: config error: --param orb.nfeatures applies only with orb.sampling=detect "
        "(here orb.sampling=dense): every point of this sweep would be the same run; sweep "
        "it together with that setting, or drop it")
    assert main([*sweep, "--param", "orb.sampling=dense,detect",
                 "--param", "orb.nfeatures=5,10"]) == 1
    assert str(tmp_path / "missing") in _err(capsys)

    compare = ["compare", "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "c")]
    assert main([*compare, "--set", "orb.fast_threshold=9"]) == 2
    assert _err(capsys) == f"bovw: config error: orb.fast_threshold {DENSE_IGNORES}"
    # the colour block is the orb-colour variant's, the CNN settings the cnn variant's
    assert main([*compare, "--set", "colour.weight=2", "--set", "cnn.batch_size=4"]) == 1
    assert str(tmp_path / "missing") in _err(capsys)


def test_ignored_setting_is_pure():
    dense, detect = load_config(), load_config(None, {"orb.sampling": "detect"})
    assert ignored_setting(["orb.nfeatures"], [dense]).startswith("orb.nfeatures applies")
    assert ignored_setting(["orb.nfeatures"], [dense, detect]) is None
    assert ignored_setting(["orb.sampling", "orb.upscale", "orb.patch_size"], [dense]) is None


# --- bovw demo ------------------------------------------------------------------------------

@pytest.mark.parametrize("classes", ["0", "1", "99"])
def test_demo_refuses_a_class_count_it_cannot_make(tmp_path, capsys, classes):
    assert main(["demo", "--workdir", str(tmp_path), "--classes", classes]) == 2
    assert _err(capsys).startswith(f"bovw: config error: --classes must be between 2 and 10 "
                                   f"(got {classes})")
    assert list(tmp_path.iterdir()) == []


def test_demo_help_gives_the_class_counts_it_can_make(capsys):
    from bovw.image.synthetic import CLASS_NAMES

    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"number of generated classes, 2 to {len(CLASS_NAMES)} (default: 6)" in help_text


def test_demo_refuses_a_workdir_that_is_a_file(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["demo", "--workdir", str(afile)]) == 2
    assert _err(capsys) == (f"bovw: config error: --workdir {afile} is a file; fix: name a "
                            "folder (it is created when missing)")
    with pytest.raises(OutputError, match="cannot write the demo image set in .*Not a "
                                          "directory"):
        demo_dataset(afile / "below", 2, 0, log=lambda line: None)


def test_an_incomplete_demo_image_set_is_generated_again(tmp_path):
    data = demo_dataset(tmp_path, 2, 0, log=lambda line: None)
    assert (data / DEMO_MARKER).is_file() and sorted(p.name for p in data.iterdir()) == [
        DEMO_MARKER, "Test", "Training"]
    complete = sorted(str(p.relative_to(data)) for p in data.rglob("*"))
    # As a generation interrupted before Test/ (or an older bovw's) left it: regenerated.
    (data / DEMO_MARKER).unlink()
    for image in (data / "Test").rglob("*.jpg"):
        image.unlink()
    lines: list[str] = []
    assert demo_dataset(tmp_path, 2, 0, log=lines.append) == data
    assert "incomplete demo image set" in lines[0]
    assert sorted(str(p.relative_to(data)) for p in data.rglob("*")) == complete
    assert [p.name for p in tmp_path.iterdir()] == [data.name]  # no partial sibling left
    # a complete one is reused as it is
    assert demo_dataset(tmp_path, 2, 0, log=lines.append) == data and len(lines) == 2


def test_a_foreign_folder_under_the_demo_name_is_not_removed(tmp_path):
    data = tmp_path / "demo-data-2-classes"
    (data / "Training" / "Mine").mkdir(parents=True)
    with pytest.raises(OutputError, match="is not a demo image set bovw generated"):
        demo_dataset(tmp_path, 2, 0, log=lambda line: None)
    assert (data / "Training" / "Mine").is_dir()
    with pytest.raises(ConfigError):
        demo_dataset(tmp_path, 1, 0)


@pytest.mark.parametrize("flags, said", [
    (["--k", "61", "--set", "vocabulary.k=60"], "by --k and by --set"),
    (["--set", "vocabulary.k=60", "--k", "61"], "by --k and by --set"),
    (["--set", "seed=1", "--set", "seed=2"], "by --set and by --set"),
])
def test_a_setting_given_twice_with_two_values_is_refused(tmp_path, capsys, flags, said):
    # --set won over --k whatever their order (review 3); the last --set won over another.
    assert main(_run(tmp_path, *flags)) == 2
    key = "seed" if "seed=1" in flags else "vocabulary.k"
    assert _err(capsys) == (f"bovw: config error: {key} is given twice with two values, "
                            f"{said}; give it once")


def test_a_setting_given_twice_with_one_value_passes(tmp_path, capsys):
    main(_run(tmp_path, "--k", "60", "--set", "vocabulary.k=60"))
    assert "given twice" not in capsys.readouterr().err


def test_a_test_fraction_for_a_dataset_split_by_its_folders_is_refused(tmp_path, capsys):
    # Review 3: accepted and recorded; a sweep over it described the images twice and ran
    # the same run twice.
    from bovw.image.synthetic import generate_dataset

    data = tmp_path / "fruits"
    generate_dataset(data, classes=2, train_per_class=1, test_per_class=1, seed=0)
    refusal = ("bovw: config error: ingest.test_fraction has no effect here: the input's "
               "Training/ and Test/ folders give the split (it splits a <Class>/*.jpg "
               "dataset); drop it")
    out = tmp_path / "out"
    assert main(["run", "--input", str(data), "--output", str(out), "--set",
                 "ingest.test_fraction=0.5"]) == 2
    assert _err(capsys) == refusal
    assert main(["sweep", "--input", str(data), "--output", str(out), "--param",
                 "ingest.test_fraction=0.2,0.5"]) == 2
    assert _err(capsys) == refusal
    assert not out.exists()
    # A flat <Class>/*.jpg dataset is split by it: no refusal there.
    from bovw.cli.command import build_parser
    from bovw.cli.common import refuse_fraction_of_split_folders

    args = build_parser().parse_args(["run", "--input", "x", "--output", "y", "--set",
                                      "ingest.test_fraction=0.5"])
    refuse_fraction_of_split_folders(args, False)


@pytest.mark.parametrize("argv, message", [
    # Review 5: each of these printed the command's 7-line usage block above argparse's line.
    (["run", "--input", "x", "--output", "y", "--k", "10,20"],
     "argument --k: invalid int value: '10,20'; several values are a sweep: bovw sweep "
     "takes the same flags; fix: see bovw run --help"),
    (["run", "--output", "y"],
     "the following arguments are required: --input; fix: see bovw run --help"),
    ([], "the following arguments are required: COMMAND; fix: see bovw --help"),
    (["s3"], "the following arguments are required: ls|upload; fix: see bovw s3 --help"),
    (["sweep", "--input", "x"],
     "the following arguments are required: --output; fix: see bovw sweep --help"),
])
def test_a_mistake_on_the_command_line_is_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"bovw: config error: {message}\n"

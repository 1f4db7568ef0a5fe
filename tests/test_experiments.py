"""Sweeps, the CNN-features comparison and the HTML reports, end to end on generated images.

One sweep (k = 8 and 12, colour block on, and k = 100000, which fails) is interrupted inside
its second point and started again; the comparison then reuses its descriptors, so the
module costs one full pipeline run and two without the descriptors stage.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

import bovw.experiments.sweep
from bovw.cli import main
from bovw.config import ConfigError
from bovw.errors import CompareError, OutputError, TrainingError
from bovw.experiments.compare import compare
from bovw.experiments.external import normalised_path
from bovw.experiments.sweep import changes_descriptors, parse_parameter, run_sweep, sweep_points
from bovw.image.synthetic import generate_dataset
from bovw.report.pages import SweepPointResult, sweep_plots
from bovw.spark import storage
from tests.conftest import TEST_SPARK

RUN_SECTIONS = ("Metrics", "Per class (Test)", "Confusion matrix", "Sample Test images",
                "PCA projection", "Explained variance per component", "Keypoints per image")
CLASSES = ["Apple Red 1", "Banana", "Orange"]
# 30 Training images of 370 descriptors: no vocabulary of 100000 words.
TOO_MANY_WORDS = ("vocabulary.k=100000", "only 8670 Training descriptors for "
                  "vocabulary.k=100000; lower k or add Training images")


class Interrupted(Exception):
    """Stands for a crash or Ctrl-C in the middle of a sweep."""


def section_titles(page: str) -> list[str]:
    return re.findall(r"<h[23]>([^<]+)</h[23]>", page)


@pytest.fixture(scope="module")
def config(test_config):
    return test_config.replace(**{"pca.components": 5, "colour.enabled": True})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("fruits")
    generate_dataset(root, classes=3, train_per_class=10, test_per_class=4, seed=0)
    return root


@pytest.fixture(scope="module")
def sweep(spark, config, dataset, tmp_path_factory):
    """A sweep over k = 8, 12, 100000 stopped inside the second point, then run again.

    200 PCA components are asked for: more than the histograms' length (k x 5 pyramid
    cells + 512 colour bins) and than the 30 Training images' rank, the chance-level
    points of issue 12.
    """
    config = config.replace(**{"pca.components": 200})
    output = tmp_path_factory.mktemp("sweeps") / "k"
    first_log: list[str] = []

    def crash_in_second_point(line: str) -> None:
        first_log.append(line)
        if "vocabulary.k=12: running" in "".join(first_log) and "vocabulary: running" in line:
            raise Interrupted

    parameters = [("vocabulary.k", ["8", "12", "100000"])]
    with pytest.raises(Interrupted):
        run_sweep(spark, config, str(dataset), str(output), parameters,
                  log=crash_in_second_point)
    second_log: list[str] = []
    result = run_sweep(spark, config, str(dataset), str(output), parameters,
                       log=second_log.append)
    return output, result, first_log, second_log


# ---------------------------------------------------------------- sweep: pure parts

def test_parameters_parse_into_a_grid(test_config):
    assert parse_parameter("vocabulary.k=50, 100,200") == ("vocabulary.k", ["50", "100", "200"])
    points = sweep_points(test_config, [("vocabulary.k", ["8", "12"]),
                                        ("histograms.tfidf", ["true", "false"])])
    assert [p.name for p in points] == [
        "vocabulary.k=8__histograms.tfidf=true", "vocabulary.k=8__histograms.tfidf=false",
        "vocabulary.k=12__histograms.tfidf=true", "vocabulary.k=12__histograms.tfidf=false"]
    assert points[1].values == {"vocabulary.k": "8", "histograms.tfidf": "false"}
    assert not changes_descriptors(test_config, points[0])
    orb = sweep_points(test_config, [("orb.edge_threshold", ["4", "16"])])
    assert changes_descriptors(test_config, orb[0])
    colour = test_config.replace(**{"colour.enabled": True})
    assert changes_descriptors(colour, sweep_points(colour, [("colour.hue_bins", ["4"])])[0])
    assert not changes_descriptors(colour, sweep_points(colour, [("colour.weight", ["2"])])[0])


def test_bad_sweep_parameters_are_one_line_errors(test_config):
    with pytest.raises(ConfigError, match=r"--param vocabulary.k needs at least one value"):
        parse_parameter("vocabulary.k=")
    with pytest.raises(ConfigError, match=r"--param vocabulary.k lists a value twice: 8,8"):
        parse_parameter("vocabulary.k=8,8")
    # The flag the user typed, not --set: `bovw sweep --param vocabulary.k` said
    # "--set expects section.key=value".
    with pytest.raises(ConfigError) as error:
        parse_parameter("vocabulary.k")
    assert str(error.value) == "--param expects section.key=v1,v2 (got 'vocabulary.k')"
    with pytest.raises(ConfigError, match=r"vocabulary.k must be >= 2 \(got 1\)"):
        sweep_points(test_config, [("vocabulary.k", ["8", "1"])])
    with pytest.raises(ConfigError, match=r"unknown config key 'pca.size'"):
        sweep_points(test_config, [("pca.size", ["8"])])


@pytest.mark.parametrize(("key", "values", "shown"), [
    ("vocabulary.k", ["10", "010"], "10 and 010"),
    ("histograms.tfidf", ["true", "True"], "true and True"),
    ("orb.dense_scales", ["1.0", "1"], "1.0 and 1"),
])
def test_a_value_swept_twice_after_parsing_is_refused(test_config, key, values, shown):
    with pytest.raises(ConfigError, match=rf"^--param {key} gives the same value twice "
                                          rf"\({shown}\); list each value once$"):
        sweep_points(test_config, [(key, values)])


@pytest.mark.parametrize("key", ["spark.driver_memory", "spark.shuffle_partitions",
                                 "spark.arrow_batch_size", "spark.conf.spark.task.cpus",
                                 "s3.region"])
def test_session_settings_cannot_be_swept(dataset, tmp_path, capsys, key):
    value = {"spark.driver_memory": "1g,3g", "s3.region": "eu-west-1,us-east-1"}.get(key, "1,2")
    code = main(["sweep", "--input", str(dataset), "--output", str(tmp_path / "s"),
                 "--param", f"{key}={value}"])
    assert code == 2
    assert capsys.readouterr().err == (
        f"bovw: config error: --param {key}: a sweep runs every point in one Spark session, "
        "set once for the whole sweep; fix: give it once, with --set, --master or the "
        "config\n")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("key", ["cnn.batch_size", "predict.top"])
def test_settings_a_run_does_not_use_cannot_be_swept(test_config, key):
    with pytest.raises(ConfigError, match=rf"^--param {key}: the points of a sweep are bovw "
                                          "runs, which do not use it; drop it$"):
        sweep_points(test_config, [(key, ["1", "2"])])


def test_a_variant_named_twice_is_refused(spark, config, dataset, tmp_path):
    from bovw.experiments.compare import parse_variants

    with pytest.raises(ConfigError, match=r"^--variants lists orb twice \(orb,cnn,orb\); name "
                                          "each variant once$"):
        parse_variants("orb,cnn,orb")
    with pytest.raises(ConfigError, match="lists orb twice"):
        compare(spark, config, str(dataset), str(tmp_path / "out"), variants=("orb", "orb"),
                log=lambda _line: None)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- sweep: end to end

def test_sweep_table_has_one_row_per_k(sweep):
    output, result, _first, _second = sweep
    rows = list(csv.DictReader((output / "sweep.csv").open()))
    assert [row["vocabulary.k"] for row in rows] == ["8", "12", "100000"]
    assert [row["descriptors"] for row in rows[:2]] == ["extracted", "reused"]
    for row in rows[:2]:
        assert 0.8 <= float(row["accuracy"]) <= 1.0  # chance is 1/3
        assert float(row["macro_f1"]) > 0 and int(row["test_images"]) == 12
        assert float(row["seconds_vocabulary"]) > 0 and int(row["vocabulary_iterations"]) >= 1
        assert float(row["keypoints_mean"]) > 0 and int(row["classifier_iterations"]) > 2
        # PCA capped at the rank of the 30 Training images (at most 29), not 200.
        assert 3 <= int(row["pca_components"]) <= 29
        assert (row["status"], row["failure"]) == ("ok", "")
    assert rows[1]["seconds_ingest"] == ""  # the second point listed nothing
    markdown = (output / "sweep.md").read_text().splitlines()
    assert markdown[0].startswith("| vocabulary.k | accuracy | macro f1 |") and len(markdown) == 5
    # The listing's seconds are part of the descriptors stage's, which the total counts.
    assert "| s ingest (in descriptors) | s descriptors |" in markdown[0]
    assert [row["point"] for row in result.rows] == [
        "vocabulary.k=8", "vocabulary.k=12", "vocabulary.k=100000"]


def test_the_predictor_agrees_with_spark_on_a_capped_pca(spark, sweep, tmp_path):
    # The k=8 point kept fewer PCA axes than the 200 asked: the exported model holds
    # exactly those, and predicts like Spark.
    from bovw.predict.export import export_model
    from bovw.predict.predictor import Predictor

    run = sweep[0] / "points" / "vocabulary.k=8"
    kept = json.loads((run / "summary.json").read_text())["reduction"]["components"]
    _model, written = export_model(spark, str(run), str(tmp_path / "model.npz"))
    predictor = Predictor.load(written)
    # 8 words x 21 pyramid cells (3 levels), then the tone and colour blocks.
    assert predictor.model.pc.shape == (8 * 21 + 32 + 512, kept) and kept < 200
    rows = storage.read_parquet(spark, str(run / "features")).filter("split = 'Test'").collect()
    assert len(rows) == 12
    for row in rows:
        data = Path(row["path"].removeprefix("file:")).read_bytes()
        assert predictor.predict(data).label == row["prediction"]
        assert np.abs(predictor.probabilities(data) - row["probability"].toArray()).max() < 1e-9


def test_a_failed_point_has_its_reason_and_no_numbers(sweep):
    output, result, _first, second_log = sweep
    row = list(csv.DictReader((output / "sweep.csv").open()))[2]
    assert (row["status"], row["failure"]) == ("failed", TOO_MANY_WORDS[1])
    assert {row[c] for c in ("accuracy", "macro_f1", "test_images", "seconds_total",
                             "classifier_iterations", "pca_components")} == {""}
    assert (output / "sweep.md").read_text().splitlines()[-1].endswith(
        f"| failed | {TOO_MANY_WORDS[1]} |")
    assert result.failed == [TOO_MANY_WORDS]
    assert f"[bovw] sweep point 3/3 vocabulary.k=100000: failed: {TOO_MANY_WORDS[1]}" \
        in second_log
    point = output / "points" / "vocabulary.k=100000"
    assert json.loads((point / "failed.json").read_text()) == {
        "error": "VocabularyError", "reason": TOO_MANY_WORDS[1]}
    assert not (point / "summary.json").exists() and not (point / "report.html").exists()


def test_a_resumed_sweep_runs_a_failed_point_again(spark, config, dataset, sweep):
    output = sweep[0]
    log: list[str] = []
    result = run_sweep(spark, config.replace(**{"pca.components": 200}), str(dataset),
                       str(output), [("vocabulary.k", ["8", "12", "100000"])], report=False,
                       log=log.append)
    assert result.skipped == ["vocabulary.k=8", "vocabulary.k=12"]
    assert "[bovw] sweep point 3/3 vocabulary.k=100000: running (it failed before)" in log
    assert result.failed == [TOO_MANY_WORDS]


def test_failed_points_are_left_out_of_the_curves():
    parameters = [("vocabulary.k", ["8", "12"])]
    failed = SweepPointResult({"vocabulary.k": "8"}, failed=True)
    assert sweep_plots(parameters, [failed]) == {}


def test_sweep_command_fails_at_the_end_naming_the_failed_points(dataset, tmp_path, monkeypatch,
                                                                 capsys):
    reason = "the classifier did not train: LBFGS stopped after 2 of 200 iterations"
    attempts: list[str] = []

    def did_not_train(spark, config, input_path, output, **kwargs):
        attempts.append(output.rsplit("/", 1)[1])
        raise TrainingError(reason)

    monkeypatch.setattr(bovw.experiments.sweep, "run_pipeline", did_not_train)
    flags = [flag for key, value in TEST_SPARK.items() for flag in ("--set", f"{key}={value}")]
    command = ["sweep", "--input", str(dataset), "--output", str(tmp_path / "s"),
               "--k", "8,12", "--no-report", *flags]
    assert main(command) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"bovw: error: 2 of 2 sweep points failed (see {tmp_path / 's'}/sweep.md): "
                   f"vocabulary.k=8: {reason}; vocabulary.k=12: {reason}")
    rows = list(csv.DictReader((tmp_path / "s" / "sweep.csv").open()))
    assert [(row["status"], row["failure"], row["accuracy"]) for row in rows] == [
        ("failed", reason, "")] * 2
    # Started again, the failed points are run again, never taken as finished.
    assert main(command) == 1
    assert attempts == ["vocabulary.k=8", "vocabulary.k=12"] * 2


def test_interrupted_sweep_resumes_at_the_first_unfinished_point(sweep):
    output, result, first_log, second_log = sweep
    assert "[bovw] sweep point 2/3 vocabulary.k=12: running" in first_log
    assert "[bovw] sweep point 1/3 vocabulary.k=8: finished, skipped" in second_log
    assert result.skipped == ["vocabulary.k=8"]
    # Inside the point, the finished descriptors stage is reused, the rest runs.
    assert "[bovw] descriptors: already finished, reusing its outputs" in second_log
    assert "[bovw] vocabulary: running" in second_log
    summary = json.loads((output / "points" / "vocabulary.k=12" / "summary.json").read_text())
    assert summary["resumed_stages"] == ["descriptors"]
    spec = json.loads((output / "points" / "vocabulary.k=12" / "run.json").read_text())
    assert spec["descriptors_from"] == str(output / "points" / "vocabulary.k=8" / "descriptors")


def test_a_sweep_folder_is_not_reused_for_another_grid(spark, config, dataset, sweep):
    output = sweep[0]
    with pytest.raises(OutputError) as error:
        run_sweep(spark, config, str(dataset), str(output), [("vocabulary.k", ["8", "16"])])
    # The grids as --param takes them (they read "vocabulary.k,8,12,100000").
    assert str(error.value) == (
        f"output {output} holds a sweep of another input, grid or configuration (parameters "
        "vocabulary.k=8,12,100000 there, vocabulary.k=8,16 here); use the same ones to "
        "resume it, another --output, or --overwrite")


def test_a_grid_is_written_as_param_takes_it():
    from bovw.experiments.grids import grid_text

    grid = [["vocabulary.k", ["8", "12"]], ["orb.dense_scales", ["1.0", "1.0,1.5"]]]
    assert grid_text(grid) == "vocabulary.k=8,12; orb.dense_scales=[1.0],[1.0,1.5]"
    assert [parse_parameter(text) for text in grid_text(grid).split("; ")] == [
        tuple(pair) for pair in grid]
    # A key an older bovw swept and this one does not know is written as recorded.
    assert grid_text([["orb.retired", ["1", "2"]]]) == "orb.retired=1,2"


def test_a_sweep_given_more_values_keeps_its_finished_points(spark, config, dataset,
                                                              tmp_path):
    # A k added to a finished sweep was refused, and --overwrite ran every point again.
    output = tmp_path / "grows"
    run_sweep(spark, config, str(dataset), str(output), [("vocabulary.k", ["8", "12"])],
              report=False, log=lambda _line: None)
    log: list[str] = []
    result = run_sweep(spark, config, str(dataset), str(output),
                       [("vocabulary.k", ["6", "8", "12"])], report=False, log=log.append)
    assert log[0] == (f"[bovw] {output}: the sweep grows by vocabulary.k 6; what it finished "
                      "is reused")
    assert result.skipped == ["vocabulary.k=8", "vocabulary.k=12"]
    assert [row["point"] for row in result.rows] == [
        "vocabulary.k=6", "vocabulary.k=8", "vocabulary.k=12"]
    assert json.loads((output / "sweep.json").read_text())["parameters"] == [
        ["vocabulary.k", ["6", "8", "12"]]]
    # The new first point reads the descriptors k=8 extracted, rather than extracting its own.
    spec = json.loads((output / "points" / "vocabulary.k=6" / "run.json").read_text())
    assert spec["descriptors_from"] == str(output / "points" / "vocabulary.k=8" / "descriptors")
    assert not (output / "points" / "vocabulary.k=6" / "descriptors").exists()
    assert (f"[bovw] descriptors: reading those of {output}/points/vocabulary.k=8/descriptors, "
            "not extracting them") in log
    # The grid it grew from, asked again, is all there: said, with where to see it.
    with pytest.raises(OutputError) as error:
        run_sweep(spark, config, str(dataset), str(output), [("vocabulary.k", ["8", "12"])],
                  report=False)
    assert str(error.value) == (
        f"output {output} holds a sweep of another input, grid or configuration (parameters "
        "vocabulary.k=6,8,12 there, vocabulary.k=8,12 here); it holds all this asks for and "
        f"more (vocabulary.k 6): bovw report {output} shows it; use the same ones to resume "
        "it, another --output, or --overwrite")
    # A grid that drops a value, or another setting, is still another sweep.
    for parameters, changed in (([("vocabulary.k", ["6", "8"])], config),
                                ([("vocabulary.k", ["6", "8", "12", "16"])],
                                 config.replace(**{"pca.components": 4}))):
        with pytest.raises(OutputError, match="holds a sweep of another input, grid or "):
            run_sweep(spark, changed, str(dataset), str(output), parameters, report=False)


def test_a_sweep_grown_after_stopping_in_its_extractor_runs_the_extractor_first(
        spark, config, dataset, tmp_path):
    # Stopped inside k=8's descriptors stage, then grown by k=6 put first: k=6 is to read
    # the descriptors k=8 started, which are not there yet.
    output = tmp_path / "grows"

    def stop_in_descriptors(line: str) -> None:
        if line == "[bovw] descriptors: running":
            raise Interrupted

    with pytest.raises(Interrupted):
        run_sweep(spark, config, str(dataset), str(output), [("vocabulary.k", ["8", "12"])],
                  report=False, log=stop_in_descriptors)
    log: list[str] = []
    result = run_sweep(spark, config, str(dataset), str(output),
                       [("vocabulary.k", ["6", "8", "12"])], report=False, log=log.append)
    started = [line for line in log if line.startswith("[bovw] sweep point")]
    assert started == ["[bovw] sweep point 2/3 vocabulary.k=8: running",
                       "[bovw] sweep point 1/3 vocabulary.k=6: running",
                       "[bovw] sweep point 3/3 vocabulary.k=12: running"]
    # One extraction, by k=8, read by the two others; the table in the grid's order.
    assert [row["descriptors"] for row in result.rows] == ["reused", "extracted", "reused"]
    assert [row["point"] for row in result.rows] == [
        "vocabulary.k=6", "vocabulary.k=8", "vocabulary.k=12"]
    table = list(csv.DictReader((output / "sweep.csv").open()))
    assert [row["point"] for row in table] == [row["point"] for row in result.rows]
    assert not (output / "points" / "vocabulary.k=6" / "descriptors").exists()


def test_sweep_headings_keep_the_swept_keys_as_given():
    from bovw.experiments.tables import sweep_title

    keys = ["orb.dense_step", "vocabulary.k"]
    assert [sweep_title(c, keys) for c in ("orb.dense_step", "macro_f1", "seconds_ingest",
                                           "seconds_total")] == [
        "orb.dense_step", "macro f1", "s ingest (in descriptors)", "s total"]


def test_added_values_says_what_a_grid_adds_only_when_it_only_adds():
    from bovw.experiments.grids import added_values

    old = [["vocabulary.k", ["8", "12"]], ["histograms.power", ["0.5"]]]
    assert added_values(old, [["vocabulary.k", ["4", "8", "12", "16"]],
                              ["histograms.power", ["0.5", "1.0"]]]) == (
        "vocabulary.k 4, 16; histograms.power 1.0")
    assert added_values(old, old) is None
    assert added_values(old, [["vocabulary.k", ["8"]], ["histograms.power", ["0.5"]]]) is None
    assert added_values(old, [["histograms.power", ["0.5"]], ["vocabulary.k", ["8", "12"]]]
                        ) is None
    assert added_values(old, [["vocabulary.k", ["8", "12", "16"]]]) is None
    assert added_values(None, old) is None


def test_reports_have_every_section_and_embed_their_images(sweep):
    output = sweep[0]
    point = (output / "points" / "vocabulary.k=8" / "report.html").read_text()
    titles = section_titles(point)
    for title in RUN_SECTIONS:
        assert title in titles, title
    for name in CLASSES:
        assert name in point
    # Confusion matrix, PCA, variance: three plots, plus 12 thumbnails (all Test); every
    # generated image has the same number of dense descriptors, said in one sentence.
    assert point.count("data:image/png;base64,") == 3 + 12
    assert "Every one of the 42 images has " in point
    assert not re.search(r'src="(?!data:)', point)  # self-contained: nothing fetched
    page = (output / "report.html").read_text()
    titles = section_titles(page)
    assert titles[:3] == ["Sweep table", "Curves", "Best point: vocabulary.k=8"]
    assert TOO_MANY_WORDS[1] in page  # the failed point's reason, in the table
    for title in RUN_SECTIONS:
        assert title in titles, title
    assert (output / "sweep_quality.png").read_bytes()[:4] == b"\x89PNG"
    assert (output / "sweep_time.png").read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------- comparison

def external_features(spark, dataset, path, leave_out=(), extra=(), style="file", values=None,
                      labels=None):
    """A CNN-features Parquet made 'elsewhere': a one-hot class code plus noise per image.

    `leave_out` names files (0_100.jpg) or class folders (Training/Orange) without
    features. `values` and `labels` map a relative image path (Training/Banana/0_100.jpg)
    to the features or label written instead."""
    rng = np.random.default_rng(0)
    rows = []
    for image in sorted(dataset.rglob("*.jpg")):
        if image.name in leave_out or image.parent.relative_to(dataset).as_posix() in leave_out:
            continue
        label = image.parent.name
        code = [float(v) for v in
                np.eye(len(CLASSES))[CLASSES.index(label)] * 3 + rng.normal(0, 0.1, 3)]
        name = str(image.relative_to(dataset))
        written = f"file:{image}" if style == "file" else str(image)
        rows.append((written, (labels or {}).get(name, label), (values or {}).get(name, code)))
    rows.extend(extra)
    spark.createDataFrame(rows, "path string, label string, features array<float>"
                          ).coalesce(1).write.mode("overwrite").parquet(str(path))
    return str(path)


@pytest.fixture(scope="module")
def comparison(spark, config, dataset, sweep, tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    missing = ("0_100.jpg",)  # the first image of each class and split has no features
    features = external_features(spark, dataset, folder / "cnn.parquet", leave_out=missing,
                                 style="plain")
    descriptors = str(sweep[0] / "points" / "vocabulary.k=8" / "descriptors")
    # "orb" is the same pipeline with the colour block off: left out to keep the suite short.
    result = compare(spark, config.replace(**{"vocabulary.k": 8}), str(dataset),
                     str(folder / "out"), variants=("orb-colour", "cnn"), cnn_features=features,
                     descriptors_from=descriptors, log=lambda _line: None)
    return folder / "out", result


def test_comparison_table_has_orb_colour_and_cnn_side_by_side(comparison):
    output, result = comparison
    rows = {row["variant"]: row for row in csv.DictReader((output / "comparison.csv").open())}
    assert list(rows) == ["orb-colour", "cnn"]
    assert rows["orb-colour"]["dimension"] == str(8 * (1 + 4 + 16) + 32 + 512)  # 3 levels
    assert rows["cnn"]["dimension"] == "3"
    assert rows["cnn"]["features"].startswith("external CNN features")
    # 3 classes x 2 splits: the left-out first images of every folder.
    assert rows["cnn"]["missing_images"] == "6" and rows["cnn"]["images"] == str(42 - 6)
    assert rows["cnn"]["accuracy"] == "1.0" and rows["cnn"]["test_images"] == "9"
    assert rows["orb-colour"]["test_images"] == "12"
    per_class = list(csv.reader((output / "comparison_per_class.csv").open()))
    assert per_class[0] == ["class", "orb-colour", "cnn"]
    assert [row[0] for row in per_class[1:]] == CLASSES
    markdown = (output / "comparison.md").read_text()
    assert ("| orb-colour | ORB visual words, k=8, 3 pyramid levels, power 0.5 + grey tone "
            "(32 bins) + HSV colour (512 bins) |" in markdown)
    assert "F1 per class (Test):" in markdown


def test_missing_images_are_listed_with_their_reason(spark, comparison):
    output = comparison[0]
    rejects = storage.read_parquet(spark, str(output / "variants" / "cnn" / "rejects")).collect()
    assert sorted(row["path"].rsplit("/", 1)[1] for row in rejects) == ["0_100.jpg"] * 6
    assert {row["reason"] for row in rejects} == {
        f"no CNN features in {output.parent / 'cnn.parquet'}"}


def test_comparison_report_has_every_section(comparison):
    page = (comparison[0] / "report.html").read_text()
    titles = section_titles(page)
    assert titles[:4] == ["Side by side", "Accuracy and macro F1", "F1 per class",
                          "Confusion matrices and PCA projections"]
    assert titles[4:] == ["orb-colour", "cnn"]
    assert not re.search(r'src="(?!data:)', page)
    cnn_page = (comparison[0] / "variants" / "cnn" / "report.html").read_text()
    assert "Keypoints per image" not in section_titles(cnn_page)
    assert "Sample Test images" in section_titles(cnn_page)


def test_features_of_other_images_are_refused(spark, config, dataset, tmp_path):
    strangers = [(f"/elsewhere/{i}.jpg", "Banana", [1.0, 0.0, 0.0]) for i in range(5)]
    features = external_features(spark, dataset, tmp_path / "cnn.parquet", extra=strangers)
    with pytest.raises(CompareError) as error:
        compare(spark, config, str(dataset), str(tmp_path / "out"), variants=("cnn",),
                cnn_features=features, log=lambda _line: None)
    assert str(error.value) == (
        f"5 of 47 rows of {features} match no image under {dataset} (e.g. /elsewhere/0.jpg, "
        "/elsewhere/1.jpg, /elsewhere/2.jpg); the features must come from these images: "
        "check the path column (--path-col) and the input folder")


@pytest.mark.parametrize("setting, name, flag", [
    ("cnn.features_column", "embedding", "--features-col"),
    # A label column named but absent meant "no labels", silently.
    ("cnn.label_column", "fruit", "--label-col"),
])
def test_a_features_file_without_a_named_column_is_refused(spark, config, dataset, tmp_path,
                                                           setting, name, flag):
    features = external_features(spark, dataset, tmp_path / "cnn.parquet")
    with pytest.raises(CompareError, match=rf"has no column '{name}' \(its columns: path, "
                                           rf"label, features\); name the right one with "
                                           rf"{flag}"):
        compare(spark, config.replace(**{setting: name}), str(dataset),
                str(tmp_path / "out"), variants=("cnn",), cnn_features=features,
                log=lambda _line: None)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None])
def test_non_finite_features_are_refused_before_the_output_is_made(spark, config, dataset,
                                                                    tmp_path, bad):
    poisoned = {"Test/Banana/1_100.jpg": [1.0, bad, 0.0],
                "Training/Orange/2_100.jpg": [bad, 0.0, 0.0]}
    features = external_features(spark, dataset, tmp_path / "cnn.parquet", values=poisoned)
    with pytest.raises(CompareError) as error:
        compare(spark, config, str(dataset), str(tmp_path / "out"), variants=("orb", "cnn"),
                cnn_features=features, log=lambda _line: None)
    assert str(error.value) == (
        f"2 of 42 feature vectors in {features} hold NaN, infinite or missing values (e.g. "
        f"{dataset}/Test/Banana/1_100.jpg); fix the features file: every value must be a "
        "finite number")
    assert not (tmp_path / "out").exists()


def test_labels_that_disagree_with_the_folders_are_said_and_the_variant_not_exported(
        spark, config, dataset, tmp_path):
    from bovw.errors import ExportError
    from bovw.predict.export import export_model

    relabelled = {"Training/Banana/0_100.jpg": "Orange", "Test/Orange/1_100.jpg": "Banana"}
    features = external_features(spark, dataset, tmp_path / "cnn.parquet", labels=relabelled)
    log: list[str] = []
    compare(spark, config, str(dataset), str(tmp_path / "out"), variants=("cnn",),
            cnn_features=features, report=False, log=log.append)
    assert (f"[bovw] compare cnn: 2 images are labelled otherwise in {features} than by "
            "their class folder; the folder labels are used") in log
    variant = tmp_path / "out" / "variants" / "cnn"
    with pytest.raises(ExportError, match=r"is the cnn variant of a comparison: its features "
                                          "come from a CNN, which a bovw model file does not "
                                          "hold; export an ORB variant"):
        export_model(spark, str(variant), str(tmp_path / "model.npz"), {})


def test_a_cnn_only_comparison_warns_of_test_only_classes(spark, config, dataset, tmp_path):
    # With no ORB variant, nothing said that Orange's Test images could not be scored.
    features = external_features(spark, dataset, tmp_path / "cnn.parquet",
                                 leave_out=("Training/Orange",))
    log: list[str] = []
    compare(spark, config, str(dataset), str(tmp_path / "out"), variants=("cnn",),
            cnn_features=features, report=False, log=log.append)
    assert ("[bovw] compare cnn: warning: Test images of classes without Training images: "
            "Orange; the model cannot predict these classes, so their images are left out of "
            "accuracy and F1 and reported apart (metrics.json: test_only_classes)") in log
    variant = tmp_path / "out" / "variants" / "cnn"
    counts = json.loads((variant / "summary.json").read_text())["counts"]
    assert (counts["classes"], counts["test_only_classes"], counts["missing_features"]) == (
        3, ["Orange"], 10)
    metrics = json.loads((variant / "metrics.json").read_text())
    assert (metrics["test_images"], metrics["test_only_images"]) == (8, 4)


def test_a_backbone_that_cannot_load_stops_before_the_output_is_made(spark, config, dataset,
                                                                      tmp_path):
    pytest.importorskip("torch")
    from bovw.errors import CnnError

    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"hello world, not a state dict")
    with pytest.raises(CnnError) as error:
        compare(spark, config.replace(**{"cnn.weights_path": str(weights)}), str(dataset),
                str(tmp_path / "out"), variants=("orb", "cnn"), log=lambda _line: None)
    assert str(error.value) == (f"cannot read CNN weights from {weights}: it is not a PyTorch "
                                "state-dict file (torch.save of a model's state_dict())")
    assert not (tmp_path / "out").exists()


def test_paths_from_different_writers_agree(spark):
    rows = [("file:/data/a b.jpg",), ("file:///data/a b.jpg",), ("/data/a b.jpg",),
            ("s3a://bucket/x.jpg",), ("s3://bucket/x.jpg",)]
    frame = spark.createDataFrame(rows, "path string")
    keys = [row[0] for row in frame.select(normalised_path(frame["path"])).collect()]
    assert keys == ["/data/a b.jpg"] * 3 + ["s3://bucket/x.jpg"] * 2


def test_sweep_and_comparison_folders_hold_only_what_bovw_writes(spark, sweep, comparison):
    # --overwrite refuses a bovw folder holding anything else: bovw's own files must pass.
    from bovw.spark.outputs import foreign_names, inspect

    for folder, kind in ((sweep[0], "sweep"), (sweep[0] / "points" / "vocabulary.k=8", "run"),
                         (comparison[0], "comparison"),
                         (comparison[0] / "variants" / "cnn", "run")):
        found = inspect(spark, str(folder))
        assert (found.state, found.kind, foreign_names(found)) == ("bovw", kind, []), folder
        # Every output folder starts with its marker, the cnn variant's (no run.py) too.
        assert json.loads((folder / "_bovw.json").read_text())["kind"] == kind, folder


def test_a_comparison_row_gives_the_vlad_and_bits_dimensions():
    from bovw.config import load_config
    from bovw.experiments.tables import comparison_row
    from bovw.summary import HeadlineMetrics, ImageCounts, Reduction, RunSummary, VocabularyFit

    def row(**settings):
        config = load_config(None, settings).to_dict()
        summary = RunSummary(output="run", counts=ImageCounts(), reduction=Reduction(),
                             metrics=HeadlineMetrics(), config=config,
                             vocabulary=VocabularyFit(k=int(settings["vocabulary.k"])))
        return comparison_row("orb", summary, orb_colour=False)

    vlad = row(**{"vocabulary.k": "16", "vocabulary.space": "bits", "tone.enabled": "false",
                  "histograms.encoding": "vlad", "histograms.tfidf": "false",
                  "histograms.pyramid_levels": "2"})
    assert vlad["dimension"] == 16 * 256 * 5
    assert vlad["features"] == "ORB VLAD, k=16 (bits), 2 pyramid levels, power 0.5"
    fisher = row(**{"vocabulary.k": "16", "vocabulary.space": "bits", "tone.enabled": "false",
                    "histograms.encoding": "fisher", "histograms.tfidf": "false",
                    "histograms.pyramid_levels": "2"})
    assert fisher["dimension"] == 16 * 256 * 5
    assert fisher["features"] == "ORB Fisher vectors, k=16 (bits), 2 pyramid levels, power 0.5"
    words = row(**{"vocabulary.k": "16", "histograms.pyramid_levels": "1",
                   "histograms.power": "1.0"})
    assert words["dimension"] == 16 + 32  # + the tone block
    assert words["features"] == "ORB visual words, k=16 + grey tone (32 bins)"


def test_the_cnn_variant_counts_as_extracted_only_the_images_that_got_features(
        spark, config, tmp_path):
    # A truncated JPEG's row (no features, its reason) was counted: 411 "extracted" of 410.
    pytest.importorskip("torch")
    from bovw.experiments.cnn_variant import _extract
    from bovw.pipeline.ingest import labelled_images
    from bovw.pipeline.layout import RunLayout

    data = tmp_path / "fruits"
    generate_dataset(data, classes=2, train_per_class=2, test_per_class=1, seed=3)
    (data / "Test" / "Banana" / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    images = labelled_images(spark, str(data), config.ingest, 1)
    matched, missing, counts = _extract(spark, config, str(data), images,
                                        RunLayout(str(tmp_path / "variant")))
    assert counts == {"extracted": 6} == {"extracted": matched.count()}
    assert [row["path"].rsplit("/", 1)[1] for row in missing.collect()] == ["cut.jpg"]


def test_a_report_of_an_unfinished_sweep_or_comparison_marks_what_is_missing(
        sweep, comparison, tmp_path, capsys):
    # `bovw report` drew a stopped sweep as if its grid held only its finished points
    # ("Best point" among them, the others never named), and dropped an unfinished
    # comparison variant's row (review 3).
    import shutil

    stopped = tmp_path / "sweep"
    shutil.copytree(sweep[0], stopped)
    shutil.rmtree(stopped / "points" / "vocabulary.k=12")
    assert main(["report", str(stopped)]) == 0
    err = capsys.readouterr().err
    assert err == ("[bovw] warning: 1 of 3 sweep points not finished (vocabulary.k=12): the "
                   "report marks them; the same bovw sweep command runs them\n")
    page = (stopped / "report.html").read_text()
    # Its table row says so and holds no number; no section, curve point or best point.
    table = re.search(r"<table.*?</table>", page, re.S).group(0)  # the sweep table
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", row)
            for row in re.findall(r"<tr>.*?</tr>", table, re.S)]
    assert [cells[0] for cells in rows if cells] == ["8", "12", "100000"]
    [cells] = [cells for cells in rows if cells and cells[0] == "12"]
    assert "not finished" in cells and not [
        cell for cell in cells[1:] if re.fullmatch(r"[\d.]+%?", cell)], cells
    assert not [title for title in section_titles(page) if "vocabulary.k=12" in title]

    partial = tmp_path / "compare"
    shutil.copytree(comparison[0], partial)
    shutil.rmtree(partial / "variants" / "cnn")
    assert main(["report", str(partial)]) == 0
    assert "1 of 2 variants not finished (cnn)" in capsys.readouterr().err
    rows = {row["variant"]: row for row in csv.DictReader((partial / "comparison.csv").open())}
    assert list(rows) == ["orb-colour", "cnn"]
    assert (rows["cnn"]["features"], rows["cnn"]["accuracy"]) == ("(not finished)", "")


def test_export_of_a_sweep_folder_or_a_missing_one_says_what_to_export(sweep, tmp_path,
                                                                       capsys):
    # Both said "is not a bovw run folder (no run.json)" (review 3).
    assert main(["export", str(sweep[0])]) == 1
    assert capsys.readouterr().err == (
        f"bovw: error: {sweep[0]} is a sweep folder, not a run folder; export one of its "
        f"runs: bovw export {sweep[0]}/points/<point>\n")
    assert main(["export", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err == f"bovw: error: {tmp_path / 'nowhere'} not found\n"


def test_a_point_folder_holding_a_run_of_other_settings_is_not_the_point(spark, config,
                                                                          dataset, sweep,
                                                                          tmp_path):
    # Review 5: `bovw run --overwrite --k 12` into points/vocabulary.k=8 was skipped as
    # that point, finished, and the sweep's report showed its numbers on the k=8 row.
    import shutil

    from bovw.experiments.sweep import collect_result

    output = tmp_path / "k"
    shutil.copytree(sweep[0], output)
    for record in output.rglob("*.json"):  # moved, as a sweep's swap moves its records
        record.write_text(record.read_text().replace(str(sweep[0]), str(output)))
    point = output / "points" / "vocabulary.k=8"
    spec = json.loads((point / "run.json").read_text())
    spec["config"]["vocabulary"]["k"] = 12
    (point / "run.json").write_text(json.dumps(spec))
    reason = (f"{point} holds a finished run of other settings (vocabulary.k 12 there, 8 "
              "here), not this sweep's point; move it away (the sweep then runs the point) "
              "or pass --overwrite")
    rows = {row["point"]: row for row in collect_result(spark, str(output)).rows}
    assert rows["vocabulary.k=8"] == {"point": "vocabulary.k=8", "vocabulary.k": "8",
                                      "status": "failed", "failure": reason}
    assert rows["vocabulary.k=12"]["status"] == "ok"
    log: list[str] = []
    result = run_sweep(spark, config.replace(**{"pca.components": 200}), str(dataset),
                       str(output), [("vocabulary.k", ["8", "12", "100000"])], report=False,
                       log=log.append)
    assert f"[bovw] sweep point 1/3 vocabulary.k=8: failed: {reason}" in log
    assert "[bovw] sweep point 2/3 vocabulary.k=12: finished, skipped" in log
    assert [row["status"] for row in result.rows] == ["failed", "ok", "failed"]

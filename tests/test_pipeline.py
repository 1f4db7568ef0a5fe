"""End to end on generated images, bad files included: outputs, rejects, accuracy, determinism."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil

import numpy as np
import pytest
from pyspark.ml.classification import LogisticRegressionModel
from pyspark.ml.clustering import KMeansModel
from pyspark.ml.feature import PCAModel

from bovw.cli import main
from bovw.errors import InputError, OutputError
from bovw.image.synthetic import encode_jpeg, generate_dataset, render_fruit
from bovw.pipeline import run as run_module
from bovw.pipeline.run import run_pipeline
from bovw.spark import storage
from tests import imagefiles
from tests.conftest import TEST_SPARK

MAX_FILE_BYTES = 1_000_000
BAD_FILES = {
    "zero.jpg": (b"", "empty file"),
    "text.jpg": (b"just some text, not a JPEG", "not an image (unrecognised format)"),
    "truncated.jpg": (imagefiles.truncated_jpeg(),
                      "corrupt or truncated JPEG image: image file is truncated"),
    "bomb.png": (imagefiles.bomb_png(), "image too large: 40000x40000 pixels"),
    "oversized.jpg": (b"\xff" * (MAX_FILE_BYTES + 1), "file too large: 1000001 bytes"),
}
ODD_BUT_READABLE = {
    "grey.png": imagefiles.grey_png(),
    "rgba.png": imagefiles.rgba_png(),
    "sixteen.png": imagefiles.png16(),
    "cmyk.jpg": imagefiles.cmyk_jpeg(),
    "tiny.jpg": imagefiles.jpeg(size=5),
    "huge.JPG": imagefiles.jpeg(size=6000),
}
RUN_FLAGS = ["--k", "20", "--pca-components", "10", "--set", "vocabulary.partitions=2",
             "--set", f"ingest.max_file_bytes={MAX_FILE_BYTES}"]


def spark_flags():
    return [flag for key, value in TEST_SPARK.items()
            for flag in ("--set", f"{key}={value}")]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """3 generated classes, bad and odd files in Training/Banana, and one Test image of a
    class without Training images (Test/Kiwi)."""
    root = tmp_path_factory.mktemp("fruits")
    generate_dataset(root, classes=3, train_per_class=12, test_per_class=5, seed=0)
    (root / "Test" / "Kiwi").mkdir()
    (root / "Test" / "Kiwi" / "kiwi_0.jpg").write_bytes(
        encode_jpeg(render_fruit("Kiwi", np.random.default_rng(0))))
    odd_folder = root / "Training" / "Banana"
    for name, (data, _reason) in BAD_FILES.items():
        (odd_folder / name).write_bytes(data)
    for name, data in ODD_BUT_READABLE.items():
        (odd_folder / name).write_bytes(data)
    return root


@pytest.fixture(scope="module")
def first_run(spark, dataset, tmp_path_factory):
    """The run folder of `bovw run` on `dataset`; what it printed is in console.txt beside."""
    output = tmp_path_factory.mktemp("runs") / "first"
    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        code = main(["run", "--input", str(dataset), "--output", str(output),
                     *RUN_FLAGS, *spark_flags()])
    assert code == 0
    (output.parent / "console.txt").write_text(console.getvalue())
    return output


def test_summary_and_metrics(first_run):
    summary = json.loads((first_run / "summary.json").read_text())
    total = 3 * (12 + 5) + 1 + len(BAD_FILES) + len(ODD_BUT_READABLE)
    assert summary["counts"]["images"] == total
    assert summary["counts"]["rejected"] == len(BAD_FILES)
    assert summary["counts"]["per_split"] == {"Training": 36 + len(ODD_BUT_READABLE), "Test": 16}
    assert summary["counts"]["classes"] == 4
    assert summary["counts"]["test_only_classes"] == ["Kiwi"]
    assert summary["keypoints"]["images_without_keypoints"] >= 1  # tiny.jpg
    assert summary["vocabulary"]["k"] == 20
    assert set(summary["timings_seconds"]) >= {
        "ingest", "descriptors", "vocabulary", "histograms", "reduction", "classifier"}
    metrics = json.loads((first_run / "metrics.json").read_text())
    assert metrics["test_images"] == 15
    assert metrics["accuracy"] >= 0.8  # chance is 1/3
    assert metrics["classes"] == ["Apple Red 1", "Banana", "Orange"]
    assert sum(map(sum, metrics["confusion_matrix"])) == 15
    # The classifier's check of its own fit, on the 42 accepted Training images.
    check = metrics["classifier"]
    assert check["training_images"] == 36 + len(ODD_BUT_READABLE)
    assert check["training_accuracy"] >= 0.9 and check["classes_predicted"] == 3
    assert check["loss_end"] < 0.5 * check["loss_start"]
    assert check["iterations"] == metrics["classifier_iterations"] > 2
    assert summary["metrics"]["classifier_iterations"] == check["iterations"]
    assert summary["reduction"]["components_requested"] == 10


def test_images_of_other_sizes_are_counted_and_named_in_the_summary(first_run):
    """The run describes every image as it is; `bovw predict` frames a photo of another
    size to the Training size first, so on such Test images the two can answer
    differently: the summary says how many there are."""
    import dataclasses

    from bovw.cli.run import format_summary
    from bovw.summary import RunSummary

    text = (first_run / "summary.json").read_text()
    counts = json.loads(text)["counts"]
    # The run's rejects are counted in "images read", and said where their reasons are.
    lines = format_summary(RunSummary.from_json(text), "in").splitlines()
    assert lines[2].startswith(f"  images read      {counts['images']} (rejected "
                               f"{counts['rejected']}; ")
    assert counts["rejected"] > 0 and lines[3] == (
        f"  rejects          {counts['rejected']} images left out: each with its reason in "
        f"{json.loads(text)['output']}/rejects/ (Parquet: path, label, split, reason)")
    # tiny.jpg and huge.JPG make the Training sizes vary; every Test image is 100x100.
    assert (counts["other_size_test"], counts["training_size"]) == (0, [100, 100])
    summary = RunSummary.from_json(text)
    assert "other sizes" not in format_summary(summary, "in")
    mixed = dataclasses.replace(summary, counts=dataclasses.replace(
        summary.counts, other_size_test=2, training_size=(100, 100)))
    lines = format_summary(mixed, "in").splitlines()
    assert lines[lines.index(next(line for line in lines if "time per stage" in line)) - 1] \
        == ("  other sizes      2 Test images are not 100x100 (the Training median): described "
            "here as they are, framed to 100x100 by bovw predict (predict.fit), so its answers "
            "on them can differ")
    # The report says it too, and a capped PCA, which it left out.
    from bovw.report.pages import metrics_rows

    capped = dataclasses.replace(mixed, reduction=dataclasses.replace(
        summary.reduction, components=7, components_requested=10))
    rows = dict(metrics_rows(capped, json.loads((first_run / "metrics.json").read_text())))
    assert rows["other sizes"] == (
        "2 Test images are not 100x100 (the Training median): described here as they are, "
        "framed to 100x100 by bovw predict (predict.fit), so its answers on them can differ")
    assert rows["PCA"].startswith("7 components (pca.components=10 capped: the Training "
                                  "features span only 7 dimensions), ")
    assert "other sizes" not in dict(metrics_rows(summary, {}))


def test_a_class_only_in_test_is_warned_about_and_reported_apart(first_run):
    # Issue 16.7: it was scored silently (support 1, F1 0), pulling macro F1 down.
    metrics = json.loads((first_run / "metrics.json").read_text())
    assert metrics["test_only_classes"] == ["Kiwi"] and metrics["test_only_images"] == 1
    assert sum(metrics["test_only_predictions"]["Kiwi"].values()) == 1
    assert set(metrics["test_only_predictions"]["Kiwi"]) <= set(metrics["classes"])
    assert "Kiwi" not in metrics["per_class"] and metrics["test_images"] == 15
    summary = json.loads((first_run / "summary.json").read_text())
    assert summary["metrics"]["test_only_classes"] == ["Kiwi"]
    console = (first_run.parent / "console.txt").read_text().splitlines()
    warnings = [line for line in console if "Kiwi" in line]
    assert warnings[0] == (
        "[bovw] warning: Test images of classes without Training images: Kiwi; the model "
        "cannot predict these classes, so their images are left out of accuracy and F1 and "
        "reported apart (metrics.json: test_only_classes)")
    assert warnings[1:] == ["  not scored       1 Test images of classes not in Training: Kiwi"]
    report = (first_run / "report.html").read_text()
    assert "Classes only in Test (not scored)" in report
    assert "<td>Kiwi</td>" in report and "kiwi_0.jpg" not in report


def test_rejects_table_names_each_bad_file(spark, first_run):
    rejects = {row["path"].rsplit("/", 1)[1]: row["reason"]
               for row in storage.read_parquet(spark, str(first_run / "rejects")).collect()}
    assert set(rejects) == set(BAD_FILES)
    for name, (_data, reason) in BAD_FILES.items():
        assert rejects[name].startswith(reason), (name, rejects[name])


def test_features_parquet_has_one_row_per_accepted_image(spark, first_run):
    features = storage.read_parquet(spark, str(first_run / "features"))
    assert features.columns == ["path", "label", "split", "n_keypoints",
                                "pca_features", "prediction", "probability"]
    rows = features.collect()
    assert len(rows) == 3 * 17 + 1 + len(ODD_BUT_READABLE)
    assert len({row["path"] for row in rows}) == len(rows)
    other = next(row for row in rows if row["n_keypoints"] > 0)
    assert len(other["pca_features"]) == 10


def test_histograms_parquet_has_one_raw_histogram_per_accepted_image(spark, first_run):
    rows = storage.read_parquet(spark, str(first_run / "histograms")).collect()
    assert len(rows) == 3 * 17 + 1 + len(ODD_BUT_READABLE)
    tiny = next(row for row in rows if row["path"].endswith("tiny.jpg"))
    assert tiny["n_keypoints"] == 0 and tiny["histogram"].toArray().sum() == 0
    other = next(row for row in rows if row["n_keypoints"] > 0)
    # Each descriptor counts once per pyramid level (default: 3 levels).
    assert other["histogram"].toArray().sum() == 3 * other["n_keypoints"]


def test_projections_parquet_holds_what_the_features_parquet_classified(spark, first_run):
    projections = storage.read_parquet(spark, str(first_run / "projections"))
    assert projections.columns == ["path", "label", "split", "n_keypoints", "pca_features"]
    projected = {row["path"]: row["pca_features"].toArray() for row in projections.collect()}
    classified = {row["path"]: row["pca_features"].toArray() for row in
                  storage.read_parquet(spark, str(first_run / "features")).collect()}
    assert projected.keys() == classified.keys()
    for path, values in projected.items():
        assert np.array_equal(values, classified[path]), path
    # The projection is the saved PCA's: pc^T x of the weighted vector.
    pca = PCAModel.load(str(first_run / "models" / "pca"))
    assert pca.pc.numRows > 0 and pca.getK() == len(next(iter(projected.values())))


def _without_classifier_stage(finished, folder):
    """A copy of the run `finished` stopped after its reduction stage."""
    shutil.copytree(finished, folder)
    for name in ("features", "models/labels", "models/classifier"):
        shutil.rmtree(folder / name)
    for name in ("_stages/classifier.json", "metrics.json", "summary.json", "report.html"):
        (folder / name).unlink()
    return folder


@pytest.mark.parametrize("reduction_of", ["this bovw", "a bovw without projections"])
def test_a_run_stopped_after_its_reduction_ends_like_an_uninterrupted_one(
        spark, dataset, first_run, tmp_path, reduction_of, capsys, monkeypatch):
    stopped = _without_classifier_stage(first_run, tmp_path / "stopped")
    if reduction_of == "this bovw":
        # The classifier stage reads the projections; it weights no image again.
        monkeypatch.setattr(run_module, "feature_rows",
                            lambda *args, **kwargs: pytest.fail("weighted again"))
    else:
        # Its reduction stage wrote no projections: the classifier stage makes them.
        shutil.rmtree(stopped / "projections")
        marker = stopped / "_stages" / "reduction.json"
        record = json.loads(marker.read_text())
        del record["projections_path"]
        marker.write_text(json.dumps(record))
    assert main(["run", "--input", str(dataset), "--output", str(stopped),
                 *RUN_FLAGS, *spark_flags()]) == 0
    assert "reduction: already finished, reusing its outputs" in capsys.readouterr().out
    resumed, original = (json.loads((folder / "metrics.json").read_text())
                         for folder in (stopped, first_run))
    for key in ("accuracy", "macro_f1", "confusion_matrix", "classes"):
        assert resumed[key] == original[key], key
    features = {folder: {row["path"]: row["probability"].toArray() for row in
                         storage.read_parquet(spark, str(folder / "features")).collect()}
                for folder in (stopped, first_run)}
    for path, probability in features[first_run].items():
        np.testing.assert_allclose(features[stopped][path], probability, rtol=0, atol=1e-12)


def test_descriptors_set_aside_a_vocabulary_sample_for_training_images(spark, first_run):
    rows = storage.read_parquet(spark, str(first_run / "descriptors")).collect()
    for row in rows:
        expected = min(row["n_keypoints"], 16) if row["split"] == "Training" else 0
        assert len(row["sample"] or b"") == 32 * expected, row["path"]
    assert any(row["split"] == "Training" and row["n_keypoints"] > 16 for row in rows)


def test_descriptors_are_written_uncompressed_and_the_other_tables_with_snappy(first_run):
    # ORB's binary descriptors compress little (bovw.pipeline.descriptors.PARQUET_COMPRESSION).
    from tests.parquet_files import parquet_codecs

    assert parquet_codecs(first_run / "descriptors") == {"UNCOMPRESSED"}
    for table in ("histograms", "features"):
        assert parquet_codecs(first_run / table) == {"SNAPPY"}, table


def test_descriptors_carry_the_record_of_what_made_them(spark, test_config, dataset, first_run):
    from bovw.pipeline.provenance import RECORD_NAME, DescriptorProvenance, DescriptorSettings

    record = DescriptorProvenance.from_json(
        (first_run / "descriptors" / RECORD_NAME).read_text(), RECORD_NAME)
    config = test_config.replace(**{"ingest.max_file_bytes": MAX_FILE_BYTES})
    assert record.input == str(dataset)
    assert record.settings == DescriptorSettings.of(config)
    assert storage.read_parquet(spark, str(first_run / "descriptors")).count() == 3 * 17 + 1 + 11


def test_models_are_saved_and_loadable(first_run):
    assert storage.load_model(KMeansModel, str(first_run / "models" / "vocabulary")).getK() == 20
    assert storage.load_model(PCAModel, str(first_run / "models" / "pca")).getK() == 10
    classifier = storage.load_model(
        LogisticRegressionModel, str(first_run / "models" / "classifier"))
    assert classifier.numClasses == 3


def test_same_seed_gives_same_vocabulary_and_metrics(spark, test_config, dataset, first_run,
                                                     tmp_path, monkeypatch):
    config = test_config.replace(**{"ingest.max_file_bytes": MAX_FILE_BYTES})
    # The models this run fits are used as they are, not read back from its folder.
    from bovw.pipeline import run as pipeline_run

    for model_class in ("KMeansModel", "IDFModel", "PCAModel"):
        monkeypatch.setattr(getattr(pipeline_run, model_class), "load", _not_read_back)
    second = run_pipeline(spark, config, str(dataset), str(tmp_path / "second"), log=lambda _: None)
    monkeypatch.undo()
    first_centers = storage.load_model(
        KMeansModel, str(first_run / "models" / "vocabulary")).clusterCenters()
    second_centers = storage.load_model(
        KMeansModel, str(tmp_path / "second" / "models" / "vocabulary")).clusterCenters()
    assert np.array_equal(np.array(first_centers), np.array(second_centers))
    first_metrics = json.loads((first_run / "metrics.json").read_text())
    assert second.metrics == first_metrics


def _not_read_back(path):
    raise AssertionError(f"a model fitted by this run was read back from {path}")


def test_a_finished_run_is_never_overwritten_silently(dataset, first_run, capsys):
    code = main(["run", "--input", str(dataset), "--output", str(first_run), *RUN_FLAGS,
                 *spark_flags()])
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        f"bovw: error: output {first_run} already holds a finished run; "
        "choose another --output or pass --overwrite to replace it"
    )


def test_unfinished_run_resumes_only_with_the_same_spec(spark, tmp_path):
    from bovw.pipeline.layout import RunLayout, prepare_output

    layout = RunLayout(str(tmp_path / "run"))
    with prepare_output(spark, layout, {"input": "x", "k": 1}, overwrite=False) as output:
        assert output.work == layout.root
    with prepare_output(spark, layout, {"input": "x", "k": 1}, overwrite=False):  # resumes
        pass
    with pytest.raises(OutputError, match="holds an unfinished run with a different input"):
        prepare_output(spark, layout, {"input": "x", "k": 2}, overwrite=False)
    with prepare_output(spark, layout, {"input": "x", "k": 2}, overwrite=True,
                        log=lambda _line: None):
        pass
    # The input is recorded as the folder it names from here.
    assert json.loads((tmp_path / "run" / "run.json").read_text()) == {
        "input": os.path.abspath("x"), "k": 2}
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="exists and is not a bovw run folder"):
        prepare_output(spark, RunLayout(str(tmp_path / "other")), {}, overwrite=False)


def test_config_errors_stop_before_spark(dataset, capsys):
    assert main(["run", "--input", str(dataset), "--output", "/tmp/never", "--k", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "bovw: config error: vocabulary.k must be >= 2 (got 1)"


@pytest.mark.parametrize("layout", ["empty Test folder", "no Test folder"])
def test_an_input_without_test_images_is_refused_before_spark(tmp_path, capsys, layout):
    # Issue 16.6: it finished with exit 0 and "accuracy 0.00% on 0 Test images".
    (tmp_path / "data" / "Training" / "Kiwi").mkdir(parents=True)
    (tmp_path / "data" / "Training" / "Kiwi" / "k.jpg").write_bytes(imagefiles.jpeg())
    if layout == "empty Test folder":
        (tmp_path / "data" / "Test" / "Kiwi").mkdir(parents=True)
    code = main(["run", "--input", str(tmp_path / "data"), "--output", str(tmp_path / "o")])
    assert code == 1
    assert capsys.readouterr().err == (
        f"bovw: error: input {tmp_path}/data has no Test images: put the Test images in "
        "Test/<Class>/ beside Training/, or move the class folders out of Training/ so that "
        "bovw splits them itself (ingest.test_fraction=0.25)\n")
    assert not (tmp_path / "o").exists()


def test_test_images_that_are_all_unreadable_stop_the_run_after_the_descriptors(
        spark, test_config, tmp_path):
    generate_dataset(tmp_path / "data", classes=2, train_per_class=3, test_per_class=1, seed=0)
    for image in (tmp_path / "data" / "Test").glob("*/*.jpg"):
        image.write_bytes(b"not a jpeg")
    output = tmp_path / "run"
    with pytest.raises(InputError) as error:
        run_pipeline(spark, test_config, str(tmp_path / "data"), str(output),
                     log=lambda _: None)
    assert str(error.value) == (
        f"input {tmp_path}/data has no Test images (or none of them could be read: see "
        f"{output}/rejects): put the Test images in Test/<Class>/ beside Training/, or move "
        "the class folders out of Training/ so that bovw splits them itself "
        "(ingest.test_fraction=0.25)")
    assert not (output / "_stages" / "descriptors.json").exists()  # described again once fixed
    assert (output / "rejects").is_dir()


def test_an_input_whose_images_are_all_hidden_stops_with_one_line(spark, test_config, tmp_path):
    # The walk lists nothing to read: an empty listing, which must still reach the
    # descriptors stage's verdict rather than fail in Spark.
    for split in ("Training", "Test"):
        (tmp_path / "data" / split / "Kiwi").mkdir(parents=True)
        (tmp_path / "data" / split / "Kiwi" / "._a.jpg").write_bytes(b"AppleDouble")
    output = tmp_path / "run"
    logged: list[str] = []
    with pytest.raises(InputError) as error:
        run_pipeline(spark, test_config, str(tmp_path / "data"), str(output), log=logged.append)
    assert str(error.value) == f"no readable image under {tmp_path}/data; see {output}/rejects"
    # The ingest's lines go where the run's own go (they were printed whatever `log` was).
    assert ("[bovw] ingest: leaving out 2 hidden image file(s) (a name starting with '.' on "
            f"their path), such as '{tmp_path}/data/Test/Kiwi/._a.jpg'") in logged
    assert not (output / "_stages" / "descriptors.json").exists()


@pytest.mark.parametrize("case", ["one Training class", "no Test class in Training"])
def test_classes_that_cannot_give_a_score_stop_the_run_after_the_descriptors(
        spark, test_config, tmp_path, case):
    # They finished with exit 0: "accuracy 100.00%" for one class (nothing learnt), and
    # "accuracy 0.00% on 0 Test images" when no Test class had Training images.
    generate_dataset(tmp_path / "data", classes=3, train_per_class=3, test_per_class=1, seed=0)
    classes = sorted(folder.name for folder in (tmp_path / "data" / "Training").iterdir())
    if case == "one Training class":
        for name in classes[1:]:
            shutil.rmtree(tmp_path / "data" / "Training" / name)
        expected = (f"input {tmp_path}/data has Training images of one class only "
                    f"({classes[0]}): a classifier needs two or more; add the images of at "
                    "least one other class")
    else:
        shutil.rmtree(tmp_path / "data" / "Training" / classes[0])
        for name in classes[1:]:
            shutil.rmtree(tmp_path / "data" / "Test" / name)
        expected = (f"none of the 1 Test images of input {tmp_path}/data is of a class with "
                    f"Training images (Test: {classes[0]}; Training: {', '.join(classes[1:])}"
                    "), so none could be scored: Test/<Class>/ and Training/<Class>/ folders "
                    "must use the same class names")
    output = tmp_path / "run"
    with pytest.raises(InputError) as error:
        run_pipeline(spark, test_config, str(tmp_path / "data"), str(output),
                     log=lambda _: None)
    assert str(error.value) == expected
    assert not (output / "_stages" / "descriptors.json").exists()  # described again once fixed
    assert not (output / "metrics.json").exists()


def test_a_quoted_home_folder_is_the_home_folder(tmp_path, capsys):
    # `--output '~/runs'` (quoted: the shell left the ~) made a folder named ~ here.
    (tmp_path / "data").mkdir()
    code = main(["run", "--input", "~/data/nowhere", "--output", "~/out"],
                environ={"HOME": str(tmp_path)})
    assert code == 1
    assert capsys.readouterr().err == (
        f"bovw: error: input folder not found: {tmp_path}/data/nowhere\n")
    assert not (tmp_path / "out").exists() and not os.path.exists("~")


def test_missing_input_is_a_one_line_error(tmp_path, capsys):
    assert main(["run", "--input", str(tmp_path / "none"), "--output", str(tmp_path / "o")]) == 1
    error = capsys.readouterr().err.strip()
    assert error == f"bovw: error: input folder not found: {tmp_path}/none"
    assert not (tmp_path / "o").exists()


def test_the_same_images_elsewhere_give_the_same_model_and_metrics(spark, dataset, tmp_path):
    # The vocabulary sample and the classifier's row layout follow each image's class folder
    # and file name, not the folders above: a copy on another disk (or S3) is the same run.

    copy = tmp_path / "elsewhere" / "copy of fruits"
    shutil.copytree(dataset, copy)
    flags = [*RUN_FLAGS, "--set", "classifier.rows_per_partition=10", *spark_flags()]
    results = []
    for source, name in ((dataset, "here"), (copy, "there")):
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["run", "--input", str(source), "--output", str(tmp_path / name),
                         *flags]) == 0
        rows = {(row["split"], row["path"].rsplit("/", 2)[-2:][0],
                 row["path"].rsplit("/", 1)[1]): (row["pca_features"].toArray().tolist(),
                                                  row["probability"].toArray().tolist())
                for row in storage.read_parquet(spark, str(tmp_path / name / "features")).collect()}
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        results.append((rows, metrics))
    (here, here_metrics), (there, there_metrics) = results
    assert len(here) > 40 and here.keys() == there.keys()
    assert here_metrics == there_metrics
    # Bit for bit on pyspark 4.3; pyspark 4.0 sums some partitions in another order.
    for key, (features, probabilities) in here.items():
        assert np.allclose(features, there[key][0], rtol=0, atol=1e-9)
        assert np.allclose(probabilities, there[key][1], rtol=0, atol=1e-9)

"""Reused outputs never contradict the configuration: each setting family is either honoured
or refused with one line before any Spark job (bovw.pipeline.provenance and its callers).

The comparisons are pure and tested without Spark. The end-to-end refusals of `bovw run
--descriptors-from`, sweeps, comparisons and `bovw predict` on a folder then reuse the
folder of a grey-only run (what a reuse reads of it before any work) and are each checked
to start no Spark job.
"""

from __future__ import annotations

import json
import shutil
import uuid
from contextlib import contextmanager

import numpy as np
import pytest

from bovw.cli import main
from bovw.config import HistogramSettings, OrbSettings, ToneSettings, load_config
from bovw.config.differences import Difference
from bovw.errors import ReuseError
from bovw.experiments.compare import compare
from bovw.experiments.sweep import changes_descriptors, descriptor_sources, run_sweep, sweep_points
from bovw.image.synthetic import generate_dataset
from bovw.pipeline.provenance import (
    RECORD_NAME,
    DescriptorProvenance,
    DescriptorSettings,
    check_reuse,
    first_difference,
    refusal,
    write_record,
)
from bovw.pipeline.run import run_pipeline
from bovw.predict.contradiction import model_contradiction
from bovw.predict.model_file import ExportedModel, model_to_bytes
from bovw.report.gather import RunData
from bovw.report.pages import run_sections
from bovw.summary import HeadlineMetrics, ImageCounts, KeypointStats, Reduction, RunSummary
from tests.conftest import TEST_SPARK

BASE = load_config(None, {})
# One override per setting family, the key it changes, and its value before and after.
FAMILIES = {
    "orb": ("orb.dense_step=4", "orb.dense_step", 5, 4),
    "colour": ("colour.enabled=true", "colour.enabled", False, True),
    "ingest": ("ingest.max_file_bytes=1000000", "ingest.max_file_bytes", 64 * 1024 * 1024,
               1000000),
    "seed": ("seed=7", "seed", 42, 7),
    "sample_per_image": ("vocabulary.sample_per_image=8", "vocabulary.sample_per_image", 16, 8),
}


def provenance(config=BASE, input_path="/data/fruits") -> DescriptorProvenance:
    return DescriptorProvenance.of(config, input_path)


def changed(assignment: str):
    key, _sep, value = assignment.partition("=")
    return BASE.replace(**{key: value})


def spark_flags() -> list[str]:
    return [flag for key, value in TEST_SPARK.items() for flag in ("--set", f"{key}={value}")]


@contextmanager
def no_spark_job(spark):
    """Fails when a Spark job runs inside the block (the job group stays empty)."""
    context = spark.sparkContext
    group = f"must-stay-empty-{uuid.uuid4().hex}"
    context.setJobGroup(group, "a refusal must come before any Spark job")
    try:
        yield
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
        context.setLocalProperty("spark.job.description", None)
    assert list(context.statusTracker().getJobIdsForGroup(group)) == []


# ---------------------------------------------------------------- pure: the comparison

@pytest.mark.parametrize("family", FAMILIES)
def test_each_setting_family_is_compared(family):
    assignment, key, made, asked = FAMILIES[family]
    difference = first_difference(provenance(), provenance(changed(assignment)))
    assert difference == Difference(key, made, asked)
    assert first_difference(provenance(changed(assignment)), provenance(changed(assignment))
                            ) is None


@pytest.mark.parametrize("assignment", [
    "orb.sampling=detect", "orb.dense_scales=1.0,1.5", "orb.max_side=512", "orb.patch_size=16",
    "ingest.extensions=jpg", "ingest.test_fraction=0.3",
])
def test_every_orb_and_ingest_setting_counts(assignment):
    key = assignment.partition("=")[0]
    assert first_difference(provenance(), provenance(changed(assignment))).key == key


def test_orb_settings_the_sampling_does_not_use_do_not_count():
    # Dense descriptors made with nfeatures=200 were refused to a run asking for 300,
    # a setting dense sampling never reads (tests/test_features.py).
    for assignment in ("orb.nfeatures=300", "orb.fast_threshold=5", "orb.n_levels=2",
                       "orb.scale_factor=1.5"):
        assert first_difference(provenance(), provenance(changed(assignment))) is None
    detect = BASE.replace(**{"orb.sampling": "detect"})
    assert first_difference(provenance(detect), provenance(
        detect.replace(**{"orb.dense_step": 3}))) is None
    assert first_difference(provenance(detect), provenance(
        detect.replace(**{"orb.nfeatures": 300}))).key == "orb.nfeatures"


def test_colour_settings_count_only_when_the_block_is_asked_for():
    on = BASE.replace(**{"colour.enabled": True})
    for assignment in ("colour.hue_bins=4", "colour.background_saturation=0.2",
                       "colour.background_value=0.8"):
        key, _sep, value = assignment.partition("=")
        other = on.replace(**{key: value})
        assert first_difference(provenance(on), provenance(other)).key == key
        # Off on both sides: the bins play no part.
        assert first_difference(provenance(), provenance(changed(assignment))) is None
    # The weight is applied after the descriptors; a block that is there but not asked
    # for is ignored.
    assert first_difference(provenance(on), provenance(on.replace(**{"colour.weight": 2}))
                            ) is None
    assert first_difference(provenance(on), provenance()) is None


def test_tone_settings_count_only_when_the_block_is_asked_for():
    on, off = (BASE.replace(**{"tone.enabled": enabled}) for enabled in (True, False))
    for assignment in ("tone.bins=16", "tone.background_value=0.8"):
        key, _sep, value = assignment.partition("=")
        assert first_difference(provenance(on), provenance(on.replace(**{key: value}))).key == key
        assert first_difference(provenance(off), provenance(off.replace(**{key: value}))) is None
    assert first_difference(provenance(on), provenance(on.replace(**{"tone.weight": 2}))) is None
    # Descriptors with the block serve a run without it, not the other way round.
    assert first_difference(provenance(on), provenance(off)) is None
    difference = first_difference(provenance(off), provenance(on))
    assert difference == Difference("tone.enabled", False, True)
    assert str(refusal("R", difference)) == (
        "--descriptors-from R was made with tone.enabled=false, this run asks for true: give "
        "descriptors made with tone.enabled=true (they serve runs with and without the block), "
        "or drop --descriptors-from")


def test_records_and_run_specs_from_before_the_tone_block_have_it_off():
    on = BASE.replace(**{"tone.enabled": True})
    record = json.loads(provenance(on).to_json())
    assert record["settings"]["tone"] == {"enabled": True, "bins": 32,
                                          "background_value": 0.9, "weight": 0.5}
    del record["settings"]["tone"]
    older = DescriptorProvenance.from_json(json.dumps(record), "R")
    assert older.settings.tone.enabled is False
    assert first_difference(older, provenance(on)) == Difference("tone.enabled", False, True)
    tables = on.to_dict()
    del tables["tone"]
    spec = json.dumps({"input": "/data/fruits", "descriptors_from": None, "config": tables})
    assert DescriptorProvenance.from_run_spec(spec, "R").settings.tone.enabled is False


def test_the_input_folder_is_compared_in_one_spelling(tmp_path, monkeypatch):
    made = provenance(input_path=str(tmp_path / "fruits"))
    for same in (f"file:{tmp_path}/fruits", f"file://{tmp_path}/fruits/",
                 f"{tmp_path}/x/../fruits"):
        assert first_difference(made, provenance(input_path=same)) is None
    monkeypatch.chdir(tmp_path)
    assert first_difference(made, provenance(input_path="fruits")) is None
    other = provenance(input_path=str(tmp_path / "vegetables"))
    assert first_difference(made, other) == Difference(
        "input", str(tmp_path / "fruits"), str(tmp_path / "vegetables"))
    s3 = provenance(input_path="s3a://bucket/fruits/")
    assert s3.input == "s3://bucket/fruits"
    assert first_difference(s3, provenance(input_path="s3://bucket/fruits")) is None
    assert str(refusal("R/descriptors", first_difference(made, other))) == (
        f"--descriptors-from R/descriptors was made from the images under {tmp_path}/fruits, "
        f"this run reads {tmp_path}/vegetables: drop --descriptors-from or give the same --input")


def test_descriptors_of_another_extraction_version_are_refused():
    import dataclasses

    older = dataclasses.replace(provenance(), extraction=0)
    difference = first_difference(older, provenance())
    assert difference == Difference("extraction", 0, 2)
    assert str(refusal("R", difference)) == (
        "--descriptors-from R was made by another version of the descriptor extraction (0; "
        "this bovw makes 2): drop --descriptors-from to extract them again")
    read = DescriptorProvenance.from_json(older.to_json(), "R")
    assert read.extraction == 0


def test_extension_order_and_case_do_not_count():
    assert first_difference(provenance(), provenance(changed("ingest.extensions=PNG,jpeg,JPG"))
                            ) is None


def test_refusal_names_the_setting_both_values_and_the_fix():
    difference = first_difference(provenance(), provenance(changed("orb.dense_step=4")))
    assert str(refusal("RUN/descriptors", difference)) == (
        "--descriptors-from RUN/descriptors was made with orb.dense_step=5, this run asks for "
        "4: drop --descriptors-from or use the same setting")
    difference = first_difference(provenance(), provenance(changed("orb.dense_scales=1,3")))
    assert "orb.dense_scales=1.0, this run asks for 1.0,3.0" in str(
        refusal("R", difference))


def test_record_round_trip_and_unusable_records():
    made = provenance(BASE.replace(**{"colour.enabled": True, "orb.dense_step": 3}))
    read = DescriptorProvenance.from_json(made.to_json(), "R/" + RECORD_NAME)
    assert read.settings == made.settings and read.input == made.input
    assert read.origin == "R/" + RECORD_NAME
    record = json.loads(made.to_json())
    assert record["format"] == "bovw-descriptors" and record["format_version"] == 1
    assert record["settings"]["vocabulary"] == {"sample_per_image": 16}
    for change, message in (
            ({"format": "other"}, "not a bovw-descriptors record"),
            ({"format_version": 2}, "format_version 2 (this bovw reads 1; upgrade bovw)"),
            ({"settings": {"orb": {"grid": 3}}}, "unknown config key 'orb.grid'"),
            ({"extraction": None}, "no extraction version")):
        with pytest.raises(ReuseError) as error:
            DescriptorProvenance.from_json(json.dumps({**record, **change}), "R")
        assert str(error.value).startswith("R is not a usable descriptors record: " + message)
        assert "\n" not in str(error.value)


def test_a_run_spec_of_bovw_0_2_0_gives_the_record():
    config = BASE.replace(**{"orb.dense_step": 3})
    spec = json.dumps({"input": "/data/fruits", "descriptors_from": None,
                       "config": config.to_dict()})
    read = DescriptorProvenance.from_run_spec(spec, "RUN/run.json")
    assert read.settings == DescriptorSettings.of(config) and read.input == "/data/fruits"


def test_a_run_spec_of_bovw_0_2_0_with_two_dense_scales_is_refused():
    # bovw 0.2.0 described its 2.0 grid with 8 px patches: those descriptors are not this
    # bovw's, whatever the settings say.
    tables = BASE.replace(**{"orb.dense_scales": "1.0,2.0"}).to_dict()
    del tables["orb"]["descriptor_scheme"]
    spec = json.dumps({"input": "/data/fruits", "descriptors_from": None, "config": tables})
    with pytest.raises(ReuseError) as error:
        DescriptorProvenance.from_run_spec(spec, "RUN/run.json")
    assert str(error.value).startswith("RUN/run.json: its descriptors come from a bovw before "
                                       "descriptor scheme 2")
    assert str(error.value).endswith("extract the descriptors again with this bovw (leave out "
                                     "--descriptors-from)")
    # Old runs on one scale made the same descriptors as today: still reusable.
    del tables["orb"]["dense_scales"]
    tables["orb"]["dense_scales"] = [1.0]
    spec = json.dumps({"input": "/data/fruits", "descriptors_from": None, "config": tables})
    assert DescriptorProvenance.from_run_spec(spec, "R").settings.orb.dense_scales == (1.0,)


# ---------------------------------------------------------------- pure: sweep sharing

def test_sweep_points_share_descriptors_only_with_the_same_settings(tmp_path):
    config = BASE
    sample = sweep_points(config, [("vocabulary.sample_per_image", ["8", "16"])])
    assert [changes_descriptors(config, point) for point in sample] == [True, False]
    # Both extract their own: their `sample` columns differ.
    assert descriptor_sources(config, sample, "/data", "/out") == [None, None]
    grid = sweep_points(config, [("vocabulary.k", ["8", "12"]), ("colour.weight", ["1", "2"])])
    first = "/out/points/vocabulary.k=8__colour.weight=1/descriptors"
    assert descriptor_sources(config, grid, "/data", "/out") == [None, first, first, first]
    # Bins of a colour block that is off change nothing; once on, they do.
    bins = sweep_points(config, [("colour.hue_bins", ["4", "32"])])
    assert not any(changes_descriptors(config, point) for point in bins)
    on = config.replace(**{"colour.enabled": True})
    assert changes_descriptors(on, bins[0]) and not changes_descriptors(on, bins[1])


def test_sweep_reads_reused_descriptors_where_they_match_and_extracts_elsewhere():
    points = sweep_points(BASE, [("colour.enabled", ["false", "true"]),
                                 ("vocabulary.k", ["8", "12"])])
    sources = descriptor_sources(BASE, points, "/data", "/out", "R/descriptors",
                                 provenance(input_path="/data"))
    own = "/out/points/colour.enabled=true__vocabulary.k=8/descriptors"
    assert sources == ["R/descriptors", "R/descriptors", None, own]


def test_sweep_refuses_reused_descriptors_that_serve_no_point():
    grey = provenance(input_path="/data")
    colour = BASE.replace(**{"colour.enabled": True})
    points = sweep_points(colour, [("vocabulary.k", ["8", "12"])])
    with pytest.raises(ReuseError) as error:
        descriptor_sources(colour, points, "/data", "/out", "R/descriptors", grey)
    assert str(error.value).startswith("--descriptors-from R/descriptors was made with "
                                       "colour.enabled=false, this sweep asks for true: ")
    steps = sweep_points(BASE, [("orb.dense_step", ["4", "6"])])
    with pytest.raises(ReuseError, match=r"made with orb.dense_step=5, sweep point "
                                         r"orb.dense_step=4 asks for 4: drop"):
        descriptor_sources(BASE, steps, "/data", "/out", "R/descriptors", grey)


# ---------------------------------------------------------------- pure: predict

def tiny_model(**changes) -> ExportedModel:
    values = dict(classes=("Banana", "Orange"),
                  centers=np.array([[0] * 32, [128] * 32, [255] * 32], dtype=np.float32),
                  idf=None, pc=np.eye(3), coefficients=np.array([[1.0, 0, 0], [0, 0, 1.0]]),
                  intercepts=np.zeros(2), orb=OrbSettings(),
                  histograms=HistogramSettings(tfidf=False, pyramid_levels=1),
                  training_size=(100, 100))
    values.update(changes)
    return ExportedModel(**values)


def test_predict_settings_that_contradict_the_model_are_found():
    model = tiny_model()

    def asked(**settings):
        config = BASE.replace(**{"histograms.pyramid_levels": 1, "histograms.tfidf": False,
                                 "vocabulary.k": 3, **settings})
        return model_contradiction(model, config, settings)

    assert asked(**{"orb.dense_step": 4}) == Difference("orb.dense_step", 5, 4)
    assert asked(**{"orb.dense_step": 5, "spark.master": "local[1]"}) is None
    assert asked(**{"colour.enabled": True}) == Difference("colour.enabled", False, True)
    assert asked(**{"colour.hue_bins": 4}) is None  # a block neither has nor is asked for
    assert asked(**{"tone.enabled": True}) == Difference("tone.enabled", False, True)
    # The tone block is on by default: its settings ask for a block this model lacks.
    assert asked(**{"tone.bins": 16}) == Difference("tone.enabled", False, True)
    assert asked(**{"tone.enabled": False, "tone.bins": 16}) is None
    toned = tiny_model(tone=ToneSettings(enabled=True, bins=2), pc=np.eye(5),
                       coefficients=np.zeros((2, 5)), feature_blocks=("words", "tone"))
    toned_config = BASE.replace(**{"histograms.pyramid_levels": 1, "histograms.tfidf": False,
                                   "tone.enabled": True, "tone.bins": 16})
    assert model_contradiction(toned, toned_config, ["tone.bins"]) == Difference(
        "tone.bins", 2, 16)
    assert model_contradiction(toned, toned_config, ["tone.enabled"]) is None
    assert asked(**{"histograms.assignment": "soft"}) == Difference(
        "histograms.assignment", "hard", "soft")
    assert asked(**{"histograms.pyramid_levels": 2}) == Difference(
        "histograms.pyramid_levels", 1, 2)
    assert asked(**{"vocabulary.k": 500}) == Difference("vocabulary.k", 3, 500)
    assert asked(**{"pca.components": 100}) == Difference("pca.components", 3, 100)
    seeded = tiny_model(source={"seed": 42})
    assert model_contradiction(seeded, BASE.replace(seed=7), ["seed"]) == Difference(
        "seed", 42, 7)
    assert model_contradiction(seeded, BASE, ["seed"]) is None
    # Not asked: the model's own settings are used, whatever the config's defaults say.
    assert model_contradiction(model, BASE, {}) is None


# ---------------------------------------------------------------- pure: the report

def report_body(counts, sampling="dense") -> str:
    summary = RunSummary("/run", ImageCounts(), Reduction(), HeadlineMetrics(),
                         config={"orb": {"sampling": sampling, "dense_step": 5,
                                         "dense_scales": [1.0, 2.0]}},
                         keypoints=KeypointStats(mean=370.0))
    sections = run_sections(RunData("/run", summary, {}, keypoint_counts=counts))
    (section,) = [s for s in sections if s.title == "Keypoints per image"]
    return section.body


def test_report_replaces_a_one_bar_keypoint_plot_by_a_sentence():
    body = report_body([(370, 42)])
    assert "<img" not in body
    assert body == ('<p class="note">Every one of the 42 images has 370 descriptors (orb.sampling '
                    '= dense: a grid every 5 px at scales 1.0, 2.0, so the count depends only on '
                    'the image size).</p>')
    assert "<img" in report_body([(370, 40), (120, 2)])  # images of another size
    assert "<img" in report_body([(80, 3), (95, 5), (101, 1)], sampling="detect")


# ---------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def base_run(test_config, tmp_path_factory):
    """The folder of a finished grey-only run (colour block off), as far as a reuse reads
    it before any work: its descriptors' record, run.json and the descriptors marker.
    (tests/test_pipeline.py checks that a real run writes that record.) Its input holds one
    image per folder: a local input must hold some, and no image is read."""
    config = test_config.replace(**{"vocabulary.k": 8, "pca.components": 5})
    work = tmp_path_factory.mktemp("reuse")
    dataset, output = work / "fruits", work / "grey"
    generate_dataset(dataset, classes=3, train_per_class=1, test_per_class=1, seed=0)
    (output / "descriptors").mkdir(parents=True)
    (output / "_stages").mkdir()
    (output / "descriptors" / RECORD_NAME).write_text(
        DescriptorProvenance.of(config, str(dataset)).to_json())
    (output / "run.json").write_text(json.dumps(
        {"input": str(dataset), "descriptors_from": None, "config": config.to_dict()}))
    (output / "_stages" / "descriptors.json").write_text(json.dumps(
        {"descriptors_path": str(output / "descriptors")}))
    (output / "summary.json").write_text("{}")
    return config, output, dataset


@pytest.fixture
def dataset(base_run):
    return base_run[2]


@pytest.mark.parametrize("family", [*FAMILIES, "input"])
def test_run_refuses_reused_descriptors_before_any_spark_job(spark, dataset, base_run,
                                                             tmp_path, capsys, family):
    source = base_run[1] / "descriptors"
    data = dataset
    if family == "input":
        data = tmp_path / "other"
        generate_dataset(data, classes=2, train_per_class=1, test_per_class=1, seed=1)
        flags, line = [], (f"was made from the images under {dataset}, this run reads {data}: "
                           "drop --descriptors-from or give the same --input")
    else:
        assignment, key, made, asked = FAMILIES[family]
        flags = ["--set", assignment]
        line = f"was made with {key}={str(made).lower()}, this run asks for {str(asked).lower()}"
    output = tmp_path / "out"
    with no_spark_job(spark):
        code = main(["run", "--input", str(data), "--output", str(output),
                     "--descriptors-from", str(source), *flags, *spark_flags()])
    error = capsys.readouterr().err
    assert code == 1 and error.count("\n") == 1
    assert error.startswith(f"bovw: error: --descriptors-from {source} {line}")
    assert not output.exists()


def test_descriptors_of_bovw_0_2_0_are_read_from_their_run_json(spark, dataset, base_run,
                                                                tmp_path, capsys):
    old_run = tmp_path / "old"
    shutil.copytree(base_run[1], old_run)
    (old_run / "descriptors" / RECORD_NAME).unlink()
    with no_spark_job(spark):
        code = main(["run", "--input", str(dataset), "--output", str(tmp_path / "out"),
                     "--descriptors-from", str(old_run / "descriptors"),
                     "--set", "colour.enabled=true", *spark_flags()])
    assert code == 1
    # Its run.json gives its extraction (bovw 0.2.0's, 1), older than this one's.
    assert capsys.readouterr().err == (
        f"bovw: error: --descriptors-from {old_run}/descriptors was made by another version "
        "of the descriptor extraction (1; this bovw makes 2): drop --descriptors-from to "
        "extract them again\n")
    # Moved out of its run folder, nothing says what made it.
    alone = tmp_path / "alone"
    shutil.copytree(old_run / "descriptors", alone)
    with no_spark_job(spark):
        code = main(["run", "--input", str(dataset), "--output", str(tmp_path / "out"),
                     "--descriptors-from", str(alone), *spark_flags()])
    assert code == 1
    assert capsys.readouterr().err == (
        f"bovw: error: --descriptors-from {alone} has no record of the settings that made it "
        f"({RECORD_NAME}) and is not the descriptors folder of a finished bovw run: give "
        "RUN/descriptors of a run made with these settings, or drop --descriptors-from\n")
    assert not (tmp_path / "out").exists()


def test_overwrite_never_deletes_the_descriptors_it_reuses(spark, dataset, base_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(base_run[1], copy)
    # Named straight, or through a symbolic link to the run (which was let through: the
    # new run ended without the descriptors it had read, its run.json naming them).
    link = tmp_path / "link"
    link.symlink_to(copy)
    for source in (copy / "descriptors", link / "descriptors"):
        with no_spark_job(spark), pytest.raises(ReuseError) as error:
            run_pipeline(spark, base_run[0], str(dataset), str(copy), overwrite=True,
                         descriptors_from=str(source))
        assert str(error.value) == (
            f"--descriptors-from {source} lies inside --output {copy}, which --overwrite "
            "replaces, deleting them once the new run is complete: choose another --output, "
            "or copy the descriptors out first")
    assert (copy / "descriptors" / RECORD_NAME).exists()


def test_sweep_refuses_reused_descriptors_before_any_point(spark, dataset, base_run, tmp_path):
    config, output, _dataset = base_run
    with no_spark_job(spark), pytest.raises(ReuseError, match=(
            r"made with colour.enabled=false, this sweep asks for true")):
        run_sweep(spark, config.replace(**{"colour.enabled": True}), str(dataset),
                  str(tmp_path / "sweep"), [("vocabulary.k", ["8", "12"])],
                  descriptors_from=str(output / "descriptors"), log=lambda _line: None)
    assert not (tmp_path / "sweep").exists()


def _recorded_input(spark, config, tmp_path, classes: int, train_per_class: int):
    """A generated image folder and a descriptors folder holding only the record of
    descriptors extracted from it now (its listing's digest included)."""
    from bovw.pipeline.ingest import input_digest

    photos = tmp_path / "fruits"
    generate_dataset(photos, classes=classes, train_per_class=train_per_class,
                     test_per_class=1, seed=0)
    source = tmp_path / "descriptors"
    source.mkdir()
    write_record(spark, str(source), DescriptorProvenance.of(
        config, str(photos), input_digest(spark, str(photos), config.ingest)))
    return photos, source


def test_sweep_and_compare_refuse_descriptors_of_a_changed_input_before_any_point(
        spark, test_config, tmp_path):
    # Refused only as their first point read them, after the sweep's or comparison's folder
    # was made: the same command without --descriptors-from was then refused into it.
    config = test_config.replace(**{"vocabulary.k": 8, "pca.components": 5})
    photos, source = _recorded_input(spark, config, tmp_path, classes=3, train_per_class=1)
    next(photos.glob("Test/*/*.jpg")).unlink()
    changed = (f"--descriptors-from {source}: the images under {photos} have changed since "
               "these descriptors were extracted from them")
    with no_spark_job(spark), pytest.raises(ReuseError) as error:
        run_sweep(spark, config, str(photos), str(tmp_path / "sweep"),
                  [("vocabulary.k", ["8", "12"])], descriptors_from=str(source),
                  log=lambda _line: None)
    assert str(error.value).startswith(changed)
    assert not (tmp_path / "sweep").exists()
    with no_spark_job(spark), pytest.raises(ReuseError) as error:
        compare(spark, config, str(photos), str(tmp_path / "cmp"), variants=("orb",),
                descriptors_from=str(source), report=False, log=lambda _line: None)
    assert str(error.value).startswith(changed)
    assert not (tmp_path / "cmp").exists()


def test_compare_refuses_descriptors_a_variant_contradicts(spark, dataset, base_run, tmp_path):
    config, output, _dataset = base_run
    source = str(output / "descriptors")
    with no_spark_job(spark), pytest.raises(ReuseError) as error:
        compare(spark, config, str(dataset), str(tmp_path / "cmp"), variants=("orb", "orb-colour"),
                descriptors_from=source, report=False, log=lambda _line: None)
    assert str(error.value).startswith(f"--descriptors-from {source} was made with "
                                       "colour.enabled=false, variant orb-colour asks for true")
    # The cnn variant takes its images from them: the split (seed) must be the same.
    with no_spark_job(spark), pytest.raises(ReuseError, match=(
            r"was made with seed=42, variant cnn asks for 7")):
        compare(spark, config.replace(seed=7), str(dataset), str(tmp_path / "cmp"),
                variants=("cnn",), cnn_features=str(tmp_path / "features.parquet"),
                descriptors_from=source, report=False, log=lambda _line: None)
    assert not (tmp_path / "cmp").exists()


def test_predict_on_a_folder_refuses_settings_the_model_contradicts(spark, dataset, tmp_path,
                                                                   capsys):
    model = tmp_path / "model.npz"
    model.write_bytes(model_to_bytes(tiny_model()))
    output = tmp_path / "predictions"
    for assignment, line in (
            ("orb.dense_step=4", "orb.dense_step=5, this prediction asks for 4"),
            ("colour.enabled=true", "colour.enabled=false, this prediction asks for true"),
            ("vocabulary.space=bits", "vocabulary.space=bytes, this prediction asks for bits")):
        with no_spark_job(spark):
            code = main(["predict", "--model", str(model), "--output", str(output),
                         str(dataset / "Test"), "--set", assignment, *spark_flags()])
        assert code == 1
        key = assignment.partition("=")[0]
        assert capsys.readouterr().err == (
            f"bovw: error: the model {model} was trained with {line}: a model describes photos "
            f"with its own settings; drop the {key} setting or train a model with it\n")
    assert not output.exists()


@pytest.mark.parametrize(("command", "line"), [
    (["predict", "--model", "MODEL", "photo.jpg"],
     "bovw predict describes photos with the model's settings"),
    (["export", "RUN"], "bovw export writes the model of the run as it was trained"),
    (["report", "RUN"], "bovw report draws the folder as it was made"),
])
def test_settings_a_command_does_not_use_are_refused_before_spark(base_run, tmp_path, capsys,
                                                                  command, line):
    model = tmp_path / "model.npz"
    model.write_bytes(model_to_bytes(tiny_model()))
    argv = [str(model) if arg == "MODEL" else str(base_run[1]) if arg == "RUN" else arg
            for arg in command]
    assert main([*argv, "--set", "classifier.reg_param=0.1", "--set", "spark.master=local[1]"]
                ) == 2
    assert capsys.readouterr().err == (
        f"bovw: config error: classifier.reg_param has no effect here: {line}; drop it\n")


def test_no_spark_job_sees_a_job(spark):
    with pytest.raises(AssertionError), no_spark_job(spark):
        spark.range(3).count()


def test_reused_descriptors_of_a_folder_that_changed_since_are_refused(spark, test_config,
                                                                         tmp_path):
    # A grown sweep and --descriptors-from read the descriptors of the folder as it was:
    # images added since were missing from every new point, deleted ones still scored
    # (review 5). The record keeps what the folder held (names, sizes, times).
    from bovw.pipeline.ingest import input_digest

    photos, source = _recorded_input(spark, test_config, tmp_path, classes=2,
                                     train_per_class=2)
    assert check_reuse(spark, str(source), test_config, str(photos)).listing is not None
    changes = [
        lambda: shutil.copy(next(photos.glob("Training/*/*.jpg")), photos / "Test" / "x.jpg"),
        lambda: (photos / "Test" / "x.jpg").unlink(),  # back as it was: reused again
        lambda: next(photos.glob("Test/*/*.jpg")).unlink(),
    ]
    for change, refused in zip(changes, [True, False, True], strict=True):
        change()
        if not refused:
            check_reuse(spark, str(source), test_config, str(photos))
            continue
        with pytest.raises(ReuseError) as error:
            check_reuse(spark, str(source), test_config, str(photos))
        assert str(error.value) == (
            f"--descriptors-from {source}: the images under {photos} have changed since these "
            "descriptors were extracted from them (files added, removed or rewritten), and a "
            "run on them would score images the folder no longer holds; fix: drop "
            "--descriptors-from to extract them again (a sweep: run it into a new --output)")
    # A file that is no image the run reads changes nothing.
    (photos / "Test" / "notes.txt").write_text("mine")
    write_record(spark, str(source), DescriptorProvenance.of(
        test_config, str(photos), input_digest(spark, str(photos), test_config.ingest)))
    (photos / "Test" / "more-notes.txt").write_text("mine")
    check_reuse(spark, str(source), test_config, str(photos))


def test_reused_descriptors_of_an_input_spark_lists_are_compared_too(spark, test_config,
                                                                      tmp_path, monkeypatch):
    # An input on S3 or HDFS was not compared: its digest is now that of Spark's listing
    # (a local folder listed by Spark stands in for one here).
    from bovw.pipeline import ingest

    monkeypatch.setattr(ingest, "is_local_path", lambda path: False)
    photos = tmp_path / "fruits"
    generate_dataset(photos, classes=2, train_per_class=2, test_per_class=1, seed=0)
    source = tmp_path / "descriptors"
    source.mkdir()
    digest = ingest.input_digest(spark, str(photos), test_config.ingest)
    assert digest.startswith("listing:6:")
    write_record(spark, str(source), DescriptorProvenance.of(test_config, str(photos), digest))
    check_reuse(spark, str(source), test_config, str(photos))
    next(photos.glob("Test/*/*.jpg")).unlink()
    with pytest.raises(ReuseError, match="have changed since these descriptors were"):
        check_reuse(spark, str(source), test_config, str(photos))


def test_a_run_resumed_on_a_folder_that_changed_since_its_descriptors_is_refused(
        spark, test_config, tmp_path, monkeypatch):
    from bovw.errors import InputError
    from bovw.pipeline import run as run_module

    photos = tmp_path / "fruits"
    generate_dataset(photos, classes=2, train_per_class=4, test_per_class=2, seed=0)
    output = tmp_path / "run"

    def stopped(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "_vocabulary_stage", stopped)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(spark, test_config, str(photos), str(output), log=lambda _line: None)
    monkeypatch.undo()
    assert (output / "_stages" / "descriptors.json").is_file()
    shutil.copy(next(photos.glob("Training/*/*.jpg")), photos / "Training" / "x.jpg")
    with pytest.raises(InputError) as error:
        run_pipeline(spark, test_config, str(photos), str(output), log=lambda _line: None)
    assert str(error.value) == (
        f"the images under {photos} have changed since this run extracted their descriptors "
        f"into {output}/descriptors (files added, removed or rewritten): resumed, it would "
        "score images the folder no longer holds; fix: run again with --overwrite, or into a "
        "new --output")
    assert not (output / "_stages" / "vocabulary.json").exists()

"""summary.json as typed data (bovw.summary): one writer, one reader, bovw 0.2.0's files read."""

import json

import pytest

from bovw import summary as typed
from bovw.experiments.tables import (
    comparison_cell,
    comparison_columns,
    comparison_row,
    csv_table,
    sweep_row,
)

# A run's summary.json as bovw 0.2.0 wrote it: no descriptors_reused, no test_only_*.
SUMMARY_0_2_0 = {
    "output": "/runs/a",
    "counts": {"images": 12, "accepted": 11, "rejected": 1,
               "per_split": {"Training": 8, "Test": 3}, "classes": 2},
    "keypoints": {"mean": 88.5, "min": 0, "median": 90, "max": 120,
                  "images_without_keypoints": 1, "total": 973},
    "vocabulary": {"k": 20, "sample_descriptors": 900, "iterations": 3,
                   "training_cost": 12.5},
    "reduction": {"components": 4, "explained_variance_total": 0.75,
                  "explained_variance": [0.5, 0.15, 0.06, 0.04]},
    "metrics": {"test_images": 3, "accuracy": 0.666667, "macro_f1": 0.6,
                "weighted_precision": 0.7, "weighted_recall": 0.666667, "weighted_f1": 0.65},
    "timings_seconds": {"ingest": 0.5, "descriptors": 2.0, "vocabulary": 1.0,
                        "histograms": 1.0, "reduction": 0.5, "classifier": 1.5},
    "resumed_stages": [],
    "config": {"seed": 42, "orb": {"sampling": "dense"}},
}


def run_summary(**changes) -> typed.RunSummary:
    values = dict(
        output="/runs/b",
        counts=typed.ImageCounts(12, 11, 1, {"Training": 8, "Test": 3}, 2, test_only_classes=()),
        reduction=typed.Reduction(4, 10, None, 0.75, (0.5, 0.15, 0.06, 0.04)),
        metrics=typed.HeadlineMetrics(3, 0.666667, 0.6, 0.7, 0.666667, 0.65, 57, (), 0),
        timings={"descriptors": 2.0, "vocabulary": 1.0},
        config={"seed": 42},
        keypoints=typed.KeypointStats(88.5, 0, 90, 120, 1, 973, 700, 128),
        vocabulary=typed.VocabularyFit(20, 900, 3, 12.5),
        resumed_stages=("descriptors",),
        descriptors_reused=True,
    )
    values.update(changes)
    return typed.RunSummary(**values)


def test_a_summary_survives_its_json():
    summary = run_summary()
    assert typed.RunSummary.from_json(summary.to_json()) == summary


def test_a_run_summary_keeps_the_keys_and_order_bovw_0_2_0_wrote():
    data = json.loads(run_summary().to_json())
    assert list(data) == ["output", "counts", "keypoints", "vocabulary", "reduction", "metrics",
                          "timings_seconds", "resumed_stages", "descriptors_reused", "config"]
    assert list(data["counts"]) == ["images", "accepted", "rejected", "per_split", "classes",
                                    "test_only_classes"]
    assert data["counts"]["test_only_classes"] == []
    assert data["reduction"] == {"components": 4, "components_requested": 10,
                                 "explained_variance_total": 0.75,
                                 "explained_variance": [0.5, 0.15, 0.06, 0.04]}
    assert data["resumed_stages"] == ["descriptors"] and data["descriptors_reused"] is True


def test_a_cnn_variant_has_features_and_no_keypoints_or_vocabulary():
    summary = run_summary(keypoints=None, vocabulary=None, resumed_stages=None,
                          descriptors_reused=None, features="external CNN features (f.parquet)",
                          counts=typed.ImageCounts(12, 10, 2, {"Training": 7, "Test": 3}, 2,
                                             missing_features=2, feature_rows=11,
                                             unmatched_feature_rows=0, label_mismatches=0))
    data = json.loads(summary.to_json())
    assert list(data) == ["output", "counts", "keypoints", "vocabulary", "features",
                          "reduction", "metrics", "timings_seconds", "config"]
    assert data["keypoints"] == {} and data["vocabulary"] == {}
    assert data["counts"]["missing_features"] == 2 and "test_only_classes" not in data["counts"]
    assert typed.RunSummary.from_json(summary.to_json()) == summary


def test_a_summary_written_by_bovw_0_2_0_is_read():
    summary = typed.RunSummary.from_json(json.dumps(SUMMARY_0_2_0))

    assert summary.counts == typed.ImageCounts(12, 11, 1, {"Training": 8, "Test": 3}, 2)
    assert summary.counts.test_only_classes is None
    assert summary.keypoints.total == 973 and summary.keypoints.training is None
    assert summary.vocabulary == typed.VocabularyFit(20, 900, 3, 12.5)
    assert summary.reduction.explained_variance == (0.5, 0.15, 0.06, 0.04)
    assert summary.reduction.components_requested is None
    assert summary.metrics.accuracy == 0.666667 and summary.metrics.classifier_iterations is None
    # The descriptors stage's 2.0 s include its 0.5 s of listing.
    assert summary.total_seconds == pytest.approx(6.0)
    assert summary.resumed_stages == () and summary.descriptors_reused is None


def test_reuse_is_read_from_the_record_and_guessed_only_for_old_summaries():
    old = dict(SUMMARY_0_2_0)  # it timed its ingest: it extracted its own descriptors
    assert typed.RunSummary.from_json(json.dumps(old)).reused_descriptors is False
    old["timings_seconds"] = {k: v for k, v in old["timings_seconds"].items() if k != "ingest"}
    assert typed.RunSummary.from_json(json.dumps(old)).reused_descriptors is True
    # A recorded answer wins over the timings, whichever they hold.
    assert run_summary(timings={}, descriptors_reused=False).reused_descriptors is False
    assert run_summary(timings={"ingest": 1.0}, descriptors_reused=True).reused_descriptors


def test_keys_a_newer_bovw_adds_are_ignored():
    data = json.loads(run_summary().to_json())
    data["counts"]["future_count"] = 3
    data["future_section"] = {"x": 1}
    assert typed.RunSummary.from_json(json.dumps(data)) == run_summary()


def test_a_summary_that_is_not_an_object_is_refused():
    with pytest.raises(ValueError, match="does not hold a JSON object"):
        typed.RunSummary.from_json("[1, 2]")


def test_the_sweep_row_says_reused_from_the_summary():
    reused = sweep_row("vocabulary.k=20", {"vocabulary.k": "20"}, run_summary())
    extracted = sweep_row("vocabulary.k=20", {"vocabulary.k": "20"},
                          run_summary(descriptors_reused=False, timings={}))
    assert reused["descriptors"] == "reused" and extracted["descriptors"] == "extracted"
    assert reused["accuracy"] == 0.666667 and reused["keypoints_total"] == 973
    # It listed nothing: its listing's seconds are left empty, not 0.
    assert reused["seconds_descriptors"] == 2.0 and reused["seconds_ingest"] is None
    assert reused["seconds_total"] == 3.0


def test_the_comparison_row_of_a_cnn_variant():
    summary = run_summary(keypoints=None, vocabulary=None, features="EfficientNet-Lite0",
                          reduction=typed.Reduction(4, None, 1280, 0.75, (0.5, 0.15, 0.06, 0.04)),
                          counts=typed.ImageCounts(12, 10, 2, {"Training": 7, "Test": 3}, 2,
                                             missing_features=2),
                          timings={"cnn_features": 5.0, "reduction": 1.0, "classifier": 4.0})
    row = comparison_row("cnn", summary, None)
    assert (row["features"], row["dimension"], row["missing_images"]) == (
        "EfficientNet-Lite0", 1280, 2)
    assert (row["seconds_features"], row["seconds_total"]) == (5.0, 10.0)
    assert row["images_per_second_features"] == 2.0
    # The stages a CNN variant has not are empty cells, not 0 seconds.
    assert (row["seconds_vocabulary"], row["seconds_histograms"]) == (None, None)
    text = csv_table(comparison_columns(), [row])
    cells = dict(zip(*[line.split(",") for line in text.splitlines()], strict=True))
    assert (cells["seconds_vocabulary"], cells["seconds_reduction"]) == ("", "1.0")
    assert [comparison_cell(c, row[c]) for c in ("seconds_histograms", "seconds_total")] == [
        "", "10.0"]


def test_the_comparison_row_keeps_the_seconds_summary_json_holds():
    # 3 decimals in every seconds column, as summary.json and sweep.csv hold them.
    summary = run_summary(timings={"ingest": 0.25, "descriptors": 4.1234, "vocabulary": 2.004,
                                   "histograms": 1.5, "reduction": 0.75, "classifier": 0.125})
    row = comparison_row("orb", summary, False)
    assert (row["seconds_features"], row["seconds_vocabulary"], row["seconds_total"]) == (
        4.123, 2.004, 8.502)


def test_the_comparison_row_counts_the_listing_once():
    # The descriptors stage's seconds include its listing ("ingest"), as in total_seconds.
    summary = run_summary(timings={"ingest": 1.0, "descriptors": 4.0, "vocabulary": 2.0})
    row = comparison_row("orb", summary, False)
    assert (row["seconds_features"], row["seconds_total"]) == (4.0, 6.0)


def _older_record() -> dict:
    # The config tables of a bovw before the spatial pyramid, the power, the bits space,
    # the VLAD/Fisher encodings and the tone block: it computed k plain word counts.
    from bovw.config import Config

    tables = Config().replace(**{"vocabulary.k": 20}).to_dict()
    del tables["tone"], tables["vocabulary"]["space"]
    for key in ("pyramid_levels", "power", "encoding"):
        del tables["histograms"][key]
    return tables


def test_the_feature_settings_a_summary_records():
    from bovw.config import Config

    config = Config().replace(**{"histograms.pyramid_levels": 2, "vocabulary.space": "bits",
                                 "orb.dense_scales": "[1.0, 2.0]"})
    assert typed.FeatureSettings.of(config.to_dict()) == typed.FeatureSettings(
        space="bits", pyramid_levels=2, power=0.5, encoding="words", tone_bins=32,
        colour_bins=32 * 4 * 4, sampling="dense", dense_step=5, dense_scales=(1.0, 2.0))


def test_an_older_record_reads_as_what_its_bovw_computed():
    # Not today's defaults (3 levels, power 0.5, the tone block on): what that bovw did.
    recorded = typed.FeatureSettings.of(_older_record())
    assert (recorded.pyramid_levels, recorded.power, recorded.space, recorded.encoding,
            recorded.tone_bins) == (1, 1.0, "bytes", "words", 0)
    row = comparison_row("orb", run_summary(config=_older_record()), False)
    assert (row["features"], row["dimension"]) == ("ORB visual words, k=20", 20)
    # A table that is not one, or a value of another type, reads as missing rather than
    # failing the comparison or the report.
    assert typed.FeatureSettings.of({"histograms": None, "orb": "dense"}) == (
        typed.FeatureSettings())
    assert typed.FeatureSettings.of({
        "histograms": {"power": "0.5", "pyramid_levels": True, "encoding": 3},
        "colour": {"hue_bins": None, "saturation_bins": 4, "value_bins": 4},
        "tone": {"enabled": True, "bins": "32"},
        "orb": {"sampling": "dense", "dense_step": 5.5, "dense_scales": [1.0, "2"]},
    }) == typed.FeatureSettings(sampling="dense")


def test_stage_seconds_name_the_listing_as_part_of_the_stage_after_it():
    # The stages' seconds did not add up to the total: the listing is inside the
    # descriptors stage's time, which the total counts once.
    import dataclasses

    summary = typed.RunSummary.from_json(json.dumps(SUMMARY_0_2_0))
    names = [stage for stage, _seconds in summary.stage_seconds()]
    assert names[:2] == ["ingest (in descriptors)", "descriptors"]
    listed = sum(seconds for stage, seconds in summary.stage_seconds()
                 if not stage.startswith("ingest"))
    assert listed == pytest.approx(summary.total_seconds)
    cnn = dataclasses.replace(summary, timings={"ingest": 0.5, "cnn_features": 4.0})
    assert [stage for stage, _ in cnn.stage_seconds()] == ["ingest (in cnn_features)",
                                                          "cnn_features"]

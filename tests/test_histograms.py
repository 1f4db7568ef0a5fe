"""Word assignment, groupBy + pivot histograms and their weighting, on hand-checkable data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bovw.columns import DESCRIPTOR_SCHEMA
from bovw.config import HistogramSettings
from bovw.image.orb import pack
from bovw.image.words import histogram_length, nearest_words, pyramid_bins
from bovw.pipeline.histograms import fit_idf, weight, word_histograms

CENTERS = np.array([[0] * 32, [100] * 32, [200] * 32], dtype=np.float32)


def rows_of(value: int, count: int) -> np.ndarray:
    return np.full((count, 32), value, dtype=np.uint8)


def descriptor_row(path, split, descriptors, reason=None, positions=None):
    if positions is None:
        positions = np.zeros((len(descriptors), 2), np.uint8)
    return (path, "fruit", split, len(descriptors), pack(descriptors), reason, 100, 100,
            pack(np.asarray(positions, np.uint8)), [], [], b"")


@pytest.fixture(scope="module")
def descriptors(spark):
    rows = [
        # a: two descriptors near word 0, one near word 1.
        # Positions: top-left, top-right and bottom-left quarters of the image.
        descriptor_row("a.jpg", "Training", np.vstack([rows_of(1, 1), rows_of(2, 1),
                                                       rows_of(99, 1)]),
                       positions=[(10, 10), (200, 10), (10, 200)]),
        # b: one descriptor near word 2.
        descriptor_row("b.jpg", "Training", rows_of(210, 1)),
        # c: no keypoints: an empty histogram, not a missing row.
        descriptor_row("c.jpg", "Test", rows_of(0, 0)),
        # d: rejected: no histogram at all.
        descriptor_row("d.jpg", "Test", rows_of(0, 0), reason="empty file"),
    ]
    return spark.createDataFrame(rows, DESCRIPTOR_SCHEMA)


def test_nearest_words_exact():
    points = np.vstack([rows_of(1, 1), rows_of(60, 1), rows_of(149, 1), rows_of(255, 1)])
    assert nearest_words(points, CENTERS).tolist() == [0, 1, 1, 2]
    assert nearest_words(rows_of(0, 0), CENTERS).shape == (0,)


def test_one_histogram_per_accepted_image(descriptors):
    histograms = {row["path"]: row["histogram"].toArray().tolist()
                  for row in word_histograms(descriptors, CENTERS).collect()}
    assert histograms == {
        "a.jpg": [2.0, 1.0, 0.0],
        "b.jpg": [0.0, 0.0, 1.0],
        "c.jpg": [0.0, 0.0, 0.0],
    }


def test_soft_assignment_shares_each_descriptor_in_spark(spark):
    # 50 is halfway between words 0 and 100, 150 between 100 and 200: each is shared
    # equally whatever the variance, and word 1 gets a half from both.
    frame = spark.createDataFrame([descriptor_row("e.jpg", "Training", np.vstack(
        [rows_of(50, 1), rows_of(150, 1)]))], DESCRIPTOR_SCHEMA)
    (row,) = word_histograms(frame, CENTERS, neighbours=2, variance=100.0).collect()
    assert row["histogram"].toArray().tolist() == [0.5, 1.0, 0.5]


def test_pyramid_bins_exact():
    words = np.array([0, 0, 1])
    positions = np.array([(10, 10), (200, 10), (10, 200)], np.uint8)
    # Level 1 cells (row-major 2x2): 0, 1, 2; bins = 3 + cell * 3 + word.
    assert pyramid_bins(words, positions, k=3, pyramid_levels=2).tolist() == [
        0, 0, 1, 3, 6, 10]
    assert histogram_length(3, 2) == 15 and histogram_length(500, 3) == 10500


def test_spatial_pyramid_histograms(descriptors):
    histograms = {row["path"]: row["histogram"].toArray().tolist()
                  for row in word_histograms(descriptors, CENTERS, pyramid_levels=2).collect()}
    assert histograms["a.jpg"] == [2, 1, 0,  1, 0, 0,  1, 0, 0,  0, 1, 0,  0, 0, 0]
    # b's one descriptor sits at (0, 0): the top-left cell.
    assert histograms["b.jpg"] == [0, 0, 1,  0, 0, 1,  0, 0, 0,  0, 0, 0,  0, 0, 0]
    assert histograms["c.jpg"] == [0.0] * 15


def test_square_root_normalisation(descriptors):
    histograms = word_histograms(descriptors, CENTERS)
    settings = HistogramSettings(tfidf=False, l2=True, power=0.5)
    weighted = {row["path"]: row["weighted"].toArray()
                for row in weight(histograms, settings, None).collect()}
    expected = np.sqrt([2.0, 1.0, 0.0])
    assert np.allclose(weighted["a.jpg"], expected / np.linalg.norm(expected))


def test_tfidf_and_l2_weighting(descriptors):
    histograms = word_histograms(descriptors, CENTERS)
    settings = HistogramSettings(tfidf=True, l2=True)
    weighted = {row["path"]: row["weighted"].toArray()
                for row in weight(histograms, settings, fit_idf(histograms)).collect()}
    # IDF on the 2 Training images: idf = log((m + 1) / (df + 1)) with m = 2.
    idf = np.array([math.log(3 / 2), math.log(3 / 2), math.log(3 / 2)])
    expected_a = np.array([2.0, 1.0, 0.0]) * idf
    assert np.allclose(weighted["a.jpg"], expected_a / np.linalg.norm(expected_a))
    assert np.allclose(weighted["b.jpg"], [0.0, 0.0, 1.0])
    assert np.allclose(weighted["c.jpg"], [0.0, 0.0, 0.0])


def test_weighting_can_be_switched_off(descriptors):
    histograms = word_histograms(descriptors, CENTERS)
    raw = weight(histograms, HistogramSettings(tfidf=False, l2=False), None)
    assert {r["path"]: r["weighted"].toArray().tolist() for r in raw.collect()}["a.jpg"] == [
        2.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="no IDF model"):
        weight(histograms, HistogramSettings(tfidf=True), None)

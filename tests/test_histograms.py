"""Word assignment, groupBy + pivot histograms and their weighting, on hand-checkable data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bovw.columns import DESCRIPTOR_SCHEMA
from bovw.config import VOCABULARY_SPACES, Config, HistogramSettings, ToneSettings
from bovw.image.orb import pack
from bovw.image.words import (
    SPACES,
    descriptor_points,
    histogram_length,
    nearest_words,
    pyramid_bins,
    scoring_matrix,
    soft_words,
    space_of,
)
from bovw.pipeline.feature_rows import feature_rows
from bovw.pipeline.histograms import fit_idf, word_histograms
from tests.spark_weighting import feature_matrix

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


def _first_byte(value: int) -> np.ndarray:
    row = np.zeros((1, 32), np.uint8)
    row[0, 0] = value
    return row


def test_a_descriptor_as_bits():
    row = _first_byte(0b10100000)
    row[0, 31] = 1
    bits = descriptor_points(row, "bits")
    assert bits.shape == (1, 256) and bits.dtype == np.float32
    assert np.flatnonzero(bits[0]).tolist() == [0, 2, 255]  # most significant bit first
    assert descriptor_points(row, "bytes").tolist() == [[160] + [0] * 30 + [1]]
    assert tuple(SPACES) == VOCABULARY_SPACES
    assert [space_of(32), space_of(256)] == ["bytes", "bits"]
    with pytest.raises(ValueError, match="a vocabulary is 32 or 256 wide, not 33"):
        scoring_matrix(np.zeros((2, 33)))


def test_bits_vocabulary_matches_words_by_hamming_distance():
    # 0x80 is 1 from 0x7F as a byte value, but 8 bits away from it and 1 bit from 0x00.
    descriptor, seven_bits, zero = _first_byte(0x80), _first_byte(0x7F), _first_byte(0)
    byte_words = np.vstack([seven_bits, zero]).astype(np.float32)
    bit_words = descriptor_points(np.vstack([seven_bits, zero]), "bits")
    assert nearest_words(descriptor, byte_words).tolist() == [0]
    assert nearest_words(descriptor, bit_words).tolist() == [1]
    assert (descriptor_points(descriptor, "bits") @ scoring_matrix(bit_words)[:-1]
            + scoring_matrix(bit_words)[-1] + 1).tolist() == [[8.0, 1.0]]  # Hamming
    # Soft assignment in the bits space: squared distances 8 and 1, variance 1.
    words, weights = soft_words(descriptor, bit_words, neighbours=2, variance=1.0)
    assert words.tolist() == [[1, 0]]
    assert weights[0].tolist() == pytest.approx([1 / (1 + math.exp(-3.5)),
                                                 math.exp(-3.5) / (1 + math.exp(-3.5))])


def test_bits_vocabulary_histograms_in_spark(spark):
    frame = spark.createDataFrame([descriptor_row("e.jpg", "Training", np.vstack(
        [_first_byte(0x80), _first_byte(0x7F), _first_byte(0x01)]))], DESCRIPTOR_SCHEMA)
    bit_words = descriptor_points(np.vstack([_first_byte(0x7F), _first_byte(0)]), "bits")
    (row,) = word_histograms(frame, bit_words).collect()
    # 0x80 and 0x01 are one bit from 0x00; 0x7F is word 0 itself.
    assert row["histogram"].toArray().tolist() == [1.0, 2.0]
    # As byte values, 0x80 is nearer 0x7F (1) than 0x00 (128).
    byte_words = np.vstack([_first_byte(0x7F), _first_byte(0)]).astype(np.float32)
    (row,) = word_histograms(frame, byte_words).collect()
    assert row["histogram"].toArray().tolist() == [2.0, 1.0]


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


def test_three_level_pyramid_histograms(descriptors):
    histograms = {row["path"]: row["histogram"].toArray().tolist()
                  for row in word_histograms(descriptors, CENTERS, pyramid_levels=3).collect()}
    # Level 2 (4x4 cells, row by row) starts at bin 3 + 4 * 3 = 15, cell c at 15 + 3c:
    # a's (10, 10) is cell 0, (200, 10) cell 3, (10, 200) cell 12.
    a = [2, 1, 0,  1, 0, 0,  1, 0, 0,  0, 1, 0,  0, 0, 0] + [0] * 48
    a[15 + 0 + 0] = a[15 + 9 + 0] = a[15 + 36 + 1] = 1
    assert histograms["a.jpg"] == a
    b = [0, 0, 1,  0, 0, 1] + [0] * 57
    b[15 + 2] = 1
    assert histograms["b.jpg"] == b
    assert histograms["c.jpg"] == [0.0] * 63


def test_histogram_schema_carries_its_length_not_a_name_per_bin(descriptors):
    # VectorAssembler names every bin in the column's metadata (750 KB of schema JSON at
    # k = 1000 and 3 levels, in every plan and Parquet footer): only the length is kept.
    field = word_histograms(descriptors, CENTERS, pyramid_levels=3).schema["histogram"]
    assert field.metadata == {"ml_attr": {"num_attrs": 63}}


def words_only(settings: HistogramSettings) -> Config:
    """`settings`, without the tone block a default Config appends."""
    return Config(histograms=settings, tone=ToneSettings(enabled=False))


def test_square_root_normalisation(descriptors):
    histograms = word_histograms(descriptors, CENTERS)
    settings = words_only(HistogramSettings(tfidf=False, l2=True, power=0.5))
    rows = feature_matrix(histograms, feature_rows(settings, None, 3))
    expected = np.sqrt([2.0, 1.0, 0.0])
    assert np.allclose(rows["a.jpg"], expected / np.linalg.norm(expected))
    # c's empty histogram stays zero (no division by its zero norm).
    assert rows["c.jpg"] == [0.0, 0.0, 0.0]


def test_tfidf_and_l2_weighting(descriptors):
    histograms = word_histograms(descriptors, CENTERS)
    settings = words_only(HistogramSettings(tfidf=True, l2=True, power=1.0))
    weighted = feature_matrix(histograms, feature_rows(settings, fit_idf(histograms), 3))
    # IDF on the 2 Training images: idf = log((m + 1) / (df + 1)) with m = 2.
    idf = np.array([math.log(3 / 2), math.log(3 / 2), math.log(3 / 2)])
    expected_a = np.array([2.0, 1.0, 0.0]) * idf
    assert np.allclose(weighted["a.jpg"], expected_a / np.linalg.norm(expected_a))
    assert np.allclose(weighted["b.jpg"], [0.0, 0.0, 1.0])
    assert np.allclose(weighted["c.jpg"], [0.0, 0.0, 0.0])


def test_weighting_can_be_switched_off(descriptors):
    histograms = word_histograms(descriptors, CENTERS)
    raw = feature_rows(words_only(HistogramSettings(tfidf=False, l2=False, power=1.0)),
                       None, 3)
    assert feature_matrix(histograms, raw)["a.jpg"] == [2.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="no IDF model"):
        feature_rows(words_only(HistogramSettings(tfidf=True)), None, 3)



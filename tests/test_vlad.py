"""VLAD encoding (histograms.encoding = "vlad"): hand-checked blocks, Spark = pure function,
and the settings it refuses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bovw.config import ConfigError, HistogramSettings, load_config
from bovw.image.encodings import DenseEncoding, encoding_length
from bovw.image.vlad import vlad_cells, vlad_length
from tests.encoding_frames import check_spark_encoding

# Word 0 at the origin, word 1 at 100 in every byte.
CENTERS = np.array([[0] * 32, [100] * 32], dtype=np.float32)


def _descriptor(**bytes_at: int) -> np.ndarray:
    """One (1, 32) descriptor of zeros but for {byte_index: value} (keys b0, b1, ...)."""
    row = np.zeros((1, 32), np.uint8)
    for name, value in bytes_at.items():
        row[0, int(name[1:])] = value
    return row


# a and b are nearest word 0 (residuals [9, 0, ...] and [0, 16, ...]); c is nearest word 1
# (residual [-16, 0, ...]). Positions: a top-left, b bottom-right, c top-right.
DESCRIPTORS = np.vstack([_descriptor(b0=9), _descriptor(b1=16),
                         np.full((1, 32), 100, np.uint8) - _descriptor(b0=16)])
POSITIONS = np.array([(10, 10), (200, 200), (200, 10)], np.uint8)


def _block(values: dict[int, float], width: int = 32) -> list[float]:
    block = [0.0] * width
    for index, value in values.items():
        block[index] = value
    return block


def test_vlad_sums_residuals_per_word_then_normalises_each_block():
    (cell,) = vlad_cells(DESCRIPTORS, CENTERS)
    # Word 0: [9, 16] / sqrt(9^2 + 16^2); word 1: [-16] / 16.
    norm = math.sqrt(9**2 + 16**2)
    assert cell.tolist() == pytest.approx(_block({0: 9 / norm, 1: 16 / norm})
                                          + _block({0: -1.0}))
    # Signed square root first: [3, 4] -> [0.6, 0.8]; -16 -> -4 -> -1.
    (cell,) = vlad_cells(DESCRIPTORS, CENTERS, power=0.5)
    assert cell.tolist() == pytest.approx(_block({0: 0.6, 1: 0.8}) + _block({0: -1.0}))


def test_vlad_per_pyramid_cell():
    cells = vlad_cells(DESCRIPTORS, CENTERS, POSITIONS, pyramid_levels=2, power=0.5)
    assert cells.shape == (5, 64) and encoding_length((2, 32), HistogramSettings(
        encoding="vlad", tfidf=False, pyramid_levels=2)) == 5 * 64 == vlad_length(2, 32, 2)
    assert cells[0].tolist() == pytest.approx(_block({0: 0.6, 1: 0.8}) + _block({0: -1.0}))
    assert cells[1].tolist() == pytest.approx(_block({0: 1.0}) + _block({}))  # top-left: a
    assert cells[2].tolist() == pytest.approx(_block({}) + _block({0: -1.0}))  # top-right: c
    assert cells[3].tolist() == [0.0] * 64  # bottom-left: nothing
    assert cells[4].tolist() == pytest.approx(_block({1: 1.0}) + _block({}))  # bottom-right: b
    assert vlad_cells(np.zeros((0, 32), np.uint8), CENTERS, np.zeros((0, 2), np.uint8),
                      pyramid_levels=2).tolist() == [[0.0] * 64] * 5


def test_vlad_in_the_bits_space_takes_residuals_of_bits():
    zero, ones = np.zeros((1, 32), np.uint8), np.full((1, 32), 0xFF, np.uint8)
    words = np.unpackbits(np.vstack([zero, ones]), axis=1).astype(np.float32)
    # 0x80 in the first byte: 1 bit from word 0, whose residual is that one bit.
    (cell,) = vlad_cells(_descriptor(b0=0x80), words)
    assert cell.shape == (512,)
    assert cell.tolist() == _block({0: 1.0}, 256) + [0.0] * 256
    # 0x7F...: 255 bits set, nearest word 1, residual -1 on the first bit.
    (cell,) = vlad_cells(ones - _descriptor(b0=0x80), words)
    assert cell.tolist() == [0.0] * 256 + _block({0: -1.0}, 256)


def test_spark_vlad_vectors_are_the_pure_functions(spark):
    settings = HistogramSettings(encoding="vlad", tfidf=False, pyramid_levels=2, power=0.5)
    check_spark_encoding(spark, DESCRIPTORS, POSITIONS, CENTERS, settings,
                         DenseEncoding("vlad", power=0.5),
                         vlad_cells(DESCRIPTORS, CENTERS, POSITIONS, 2, 0.5).ravel())


def test_vlad_settings_that_cannot_work_are_refused():
    vlad = {"histograms.encoding": "vlad", "histograms.tfidf": "false", "vocabulary.k": "16"}
    assert load_config(None, vlad).histograms.encoding == "vlad"
    with pytest.raises(ConfigError, match="histograms.encoding must be one of words, vlad, "
                                          r"fisher \(got 'bow'\)"):
        load_config(None, {"histograms.encoding": "bow"})


@pytest.mark.parametrize(("encoding", "block"), [("vlad", "a VLAD block holds residuals"),
                                                 ("fisher", "a Fisher block holds gradients")])
def test_settings_a_dense_encoding_cannot_honour_are_refused(encoding, block):
    dense = {"histograms.encoding": encoding, "histograms.tfidf": "false", "vocabulary.k": "16",
             "vocabulary.space": "bits", "histograms.pyramid_levels": "2"}
    assert load_config(None, dense).histograms.encoding == encoding
    with pytest.raises(ConfigError, match=f'histograms.encoding = "{encoding}" needs '
                                          "histograms.tfidf = false: IDF weighs how often a "
                                          f"word occurs, and {block}"):
        load_config(None, {**dense, "histograms.tfidf": "true"})
    with pytest.raises(ConfigError, match=f'"{encoding}" takes histograms.assignment = "hard" '
                                          "only"):
        load_config(None, {**dense, "histograms.assignment": "soft"})
    with pytest.raises(ConfigError, match=(
            f'histograms.encoding = "{encoding}" with vocabulary.k=64, vocabulary.space=bits '
            "and 5 pyramid cells makes 81920 values per image, more than 65536; lower "
            "vocabulary.k")):
        load_config(None, {**dense, "vocabulary.k": "64"})

"""Fisher vectors (histograms.encoding = "fisher"): hand-checked blocks, the Bernoulli
mixture's EM as Spark jobs, Spark = pure function, the model file, and the settings it
refuses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyspark.ml.linalg import Vectors

from bovw.config import ConfigError, HistogramSettings, load_config
from bovw.errors import VocabularyError
from bovw.image.encodings import DenseEncoding, dense_encoding, encoding_length
from bovw.image.fisher import BernoulliMixture, fisher_cells
from bovw.pipeline.mixture import fit_mixture, read_mixture, write_mixture
from tests.encoding_frames import check_spark_encoding

# Component 0 sets each bit with probability 1/4, component 1 with 3/4; equal weights.
MIXTURE = BernoulliMixture(np.array([0.5, 0.5]),
                           np.vstack([np.full(256, 0.25), np.full(256, 0.75)]))
# 128 bits set (the first 16 bytes): exactly as likely under either component.
HALF = np.array([[0xFF] * 16 + [0] * 16], np.uint8)
# sqrt(weight * mu * (1 - mu)) = sqrt(0.5 * 0.1875), the same for every bit and component.
SPREAD = math.sqrt(0.5 * 0.25 * 0.75)


def _expected_block(count: int) -> list[float]:
    """Both components' 256 values for `count` copies of HALF (responsibilities 1/2):
    sum of 0.5 (x - mu) over the copies, over SPREAD * sqrt(count)."""
    values = []
    for mu in (0.25, 0.75):
        for bit in (1.0, 0.0):
            values += [count * 0.5 * (bit - mu) / (SPREAD * math.sqrt(count))] * 128
    return values


def test_fisher_block_is_the_normalised_gradient_of_the_means():
    (cell,) = fisher_cells(HALF, MIXTURE)
    assert cell.shape == (512,)
    # Component 0: set bits 0.5 * 0.75 / SPREAD = sqrt(3/2), clear ones -sqrt(1/6).
    assert cell[0] == pytest.approx(math.sqrt(1.5)) and cell[200] == pytest.approx(
        -math.sqrt(1 / 6))
    assert cell.tolist() == pytest.approx(_expected_block(1))
    # Two copies: the sums double and T = 2 divides by sqrt(2).
    (cell,) = fisher_cells(np.vstack([HALF, HALF]), MIXTURE)
    assert cell.tolist() == pytest.approx(_expected_block(2))
    # The signed square root: sqrt(1.5) -> 1.5 ** 0.25, -sqrt(1/6) -> -(1/6) ** 0.25.
    (cell,) = fisher_cells(HALF, MIXTURE, power=0.5)
    assert (cell[0], cell[200]) == pytest.approx((1.5**0.25, -(1 / 6) ** 0.25))


def test_responsibilities_follow_bayes_rule():
    zeros = np.zeros((1, 256))
    gamma, log_p = MIXTURE.responsibilities(zeros)
    # p(0 | x) / p(1 | x) = (0.75 / 0.25) ** 256.
    assert gamma[0, 1] == pytest.approx(3.0**-256, rel=1e-9) and gamma[0, 0] == pytest.approx(1)
    assert log_p[0] == pytest.approx(math.log(0.5 * 0.75**256 + 0.5 * 0.25**256))
    # A component's weight tilts the balance of an undecided descriptor.
    tilted = BernoulliMixture(np.array([0.2, 0.8]), MIXTURE.means)
    gamma, _ = tilted.responsibilities(np.unpackbits(HALF, axis=1).astype(np.float64))
    assert gamma[0].tolist() == pytest.approx([0.2, 0.8])


def test_fisher_per_pyramid_cell():
    descriptors = np.vstack([HALF, HALF])
    positions = np.array([(10, 10), (200, 200)], np.uint8)  # top-left, bottom-right
    cells = fisher_cells(descriptors, MIXTURE, positions, pyramid_levels=2)
    assert cells.shape == (5, 512) and encoding_length((2, 256), HistogramSettings(
        encoding="fisher", tfidf=False, pyramid_levels=2)) == 5 * 512
    assert cells[0].tolist() == pytest.approx(_expected_block(2))  # the whole image: T = 2
    assert cells[1].tolist() == pytest.approx(_expected_block(1))  # top-left
    assert cells[2].tolist() == [0.0] * 512 and cells[3].tolist() == [0.0] * 512
    assert cells[4].tolist() == pytest.approx(_expected_block(1))  # bottom-right
    assert fisher_cells(np.zeros((0, 32), np.uint8), MIXTURE, np.zeros((0, 2), np.uint8),
                        pyramid_levels=2).tolist() == [[0.0] * 512] * 5


def _points(spark, rows: np.ndarray, partitions: int):
    return spark.createDataFrame([(Vectors.dense(row),) for row in rows],
                                 ["features"]).repartition(partitions)


def test_em_fits_two_clusters_of_bits_to_their_map_estimates(spark):
    # 30 descriptors with no bit set, 10 with every bit set.
    points = np.vstack([np.zeros((30, 256)), np.ones((10, 256))])
    start = np.vstack([np.full(256, 0.3), np.full(256, 0.6)])
    fit = fit_mixture(_points(spark, points, 1), start, max_iter=10, tol=1e-9)
    # Responsibilities are 0 or 1 to 1e-60: (mass + 1) / (n + k), (sum + 1) / (mass + 2).
    assert fit.mixture.weights.tolist() == pytest.approx([31 / 42, 11 / 42], rel=1e-12)
    assert fit.mixture.means[0].tolist() == pytest.approx([1 / 32] * 256, rel=1e-7)
    assert fit.mixture.means[1].tolist() == pytest.approx([11 / 12] * 256, rel=1e-7)
    # It stops once a round gains nothing: the second round's parameters are the first's.
    assert fit.iterations == 3
    # Each point's log-likelihood under the fitted mixture, averaged.
    expected = (30 * math.log(31 / 42 * (31 / 32) ** 256)
                + 10 * math.log(11 / 42 * (11 / 12) ** 256)) / 40
    assert fit.log_likelihood == pytest.approx(expected, rel=1e-6)
    assert fit_mixture(_points(spark, points, 1), start, max_iter=1, tol=0.0).iterations == 1
    # The same sums, whatever the partitioning.
    again = fit_mixture(_points(spark, points, 3), start, max_iter=10, tol=1e-9)
    assert again.mixture.weights.tolist() == pytest.approx(fit.mixture.weights.tolist())


def test_em_refuses_a_vocabulary_of_bytes(spark):
    with pytest.raises(VocabularyError, match=r"needs a vocabulary of bits \(256 wide\), got "
                                              r"centers of shape \(2, 32\)"):
        fit_mixture(_points(spark, np.zeros((4, 256)), 1), np.zeros((2, 32)), 5, 0.0)


def test_mixture_file_round_trips_and_a_damaged_one_is_refused(spark, tmp_path):
    path = str(tmp_path / "mixture.json")
    write_mixture(spark, path, MIXTURE)
    read = read_mixture(spark, path)
    assert read.weights.tolist() == [0.5, 0.5] and read.means.tolist() == MIXTURE.means.tolist()
    write_mixture(spark, path, BernoulliMixture(np.array([0.5, 0.5]),
                                                np.vstack([np.zeros(256), np.ones(256)])))
    with pytest.raises(VocabularyError, match="is not a usable Bernoulli mixture: mixture "
                                              "means must lie strictly between 0 and 1"):
        read_mixture(spark, path)


def test_spark_fisher_vectors_are_the_pure_functions(spark):
    descriptors = np.vstack([HALF, np.zeros((1, 32), np.uint8), np.full((1, 32), 0xF0, np.uint8)])
    positions = np.array([(10, 10), (200, 200), (200, 10)], np.uint8)
    settings = HistogramSettings(encoding="fisher", tfidf=False, pyramid_levels=2, power=0.5)
    check_spark_encoding(spark, descriptors, positions, MIXTURE.means, settings,
                         dense_encoding(settings, MIXTURE.weights),
                         fisher_cells(descriptors, MIXTURE, positions, 2, 0.5).ravel())


def test_fisher_settings_that_cannot_work_are_refused():
    fisher = {"histograms.encoding": "fisher", "histograms.tfidf": "false",
              "vocabulary.k": "16", "vocabulary.space": "bits", "histograms.pyramid_levels": "2"}
    assert load_config(None, fisher).histograms.encoding == "fisher"
    with pytest.raises(ConfigError, match='histograms.encoding = "fisher" needs '
                                          'vocabulary.space = "bits": its Bernoulli mixture'):
        load_config(None, {**fisher, "vocabulary.space": "bytes"})
    # tf-idf, soft assignment and an oversized vector: test_vlad.py, for both encodings.
    with pytest.raises(ConfigError, match="vocabulary.mixture_max_iter must be >= 1"):
        load_config(None, {**fisher, "vocabulary.mixture_max_iter": "0"})
    with pytest.raises(ValueError, match="a Fisher encoding needs its mixture's weights"):
        DenseEncoding("fisher")

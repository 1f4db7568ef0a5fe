"""bovw.pipeline.covariance: the PCA passes' products, from feature rows or stored matrices."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.linalg import Vectors

from bovw.pipeline import covariance
from bovw.pipeline.covariance import covariance_times, store_matrices, stored_covariance_times
from bovw.pipeline.feature_rows import FeatureRows

DIMENSION = 9
# IDF weights, square roots and L2 norms: the rows are weighted in Python, as in a run.
FEATURES = FeatureRows("histogram", DIMENSION, idf=np.linspace(0.5, 2.0, DIMENSION), power=0.5,
                       l2=True)


@pytest.fixture(scope="module")
def histograms(spark):
    # 40 sparse rows in 3 partitions, the last one empty; paths out of order, so that the
    # sums follow the path order, not the arrival order.
    rng = np.random.default_rng(5)
    rows = []
    for i in range(40):
        words = sorted(rng.choice(DIMENSION, size=1 + i % 4, replace=False).tolist())
        counts = rng.integers(1, 9, size=len(words)).astype(float).tolist()
        rows.append((f"img{(i * 17) % 40:02d}.jpg", Vectors.sparse(DIMENSION, words, counts)))
    frame = spark.createDataFrame(rows, ["path", "histogram"])
    return frame.repartition(2).union(frame.limit(0)).coalesce(3)


@pytest.mark.parametrize("piece_bytes", [64 << 20, 12 * 7], ids=["whole", "in-pieces"])
@pytest.mark.parametrize("width", [None, 4])
def test_stored_matrices_give_the_very_same_products(histograms, monkeypatch, piece_bytes,
                                                     width):
    monkeypatch.setattr(covariance, "STORED_CHUNK_BYTES", piece_bytes)
    basis = None if width is None else np.random.default_rng(2).standard_normal(
        (DIMENSION, width))
    stored = store_matrices(histograms, FEATURES)
    try:
        product, trace = stored_covariance_times(stored, basis)
        pieces = stored.frame.count()
    finally:
        stored.release()

    expected, expected_trace = covariance_times(histograms, basis, FEATURES)
    np.testing.assert_array_equal(product, expected)
    assert trace == expected_trace
    # 40 rows of 1 to 4 words: 100 entries, cut into pieces of at most 7 (a row is never cut).
    assert (pieces > 14) if piece_bytes < 100 else pieces == 2


def test_the_products_are_the_covariance(histograms):
    rows = sorted(histograms.collect(), key=lambda row: row.path)
    dense = np.array([row.histogram.toArray() for row in rows])
    weighted = np.sqrt(dense * FEATURES.idf)
    weighted /= np.linalg.norm(weighted, axis=1, keepdims=True)
    basis = np.eye(DIMENSION)[:, :3]
    stored = store_matrices(histograms, FEATURES)
    try:
        product, trace = stored_covariance_times(stored, basis)
    finally:
        stored.release()

    covariance_matrix = np.cov(weighted, rowvar=False)
    np.testing.assert_allclose(product, covariance_matrix[:, :3], rtol=1e-12, atol=1e-15)
    assert trace == pytest.approx(np.trace(covariance_matrix), rel=1e-12)


def test_release_drops_the_cached_matrices(histograms):
    stored = store_matrices(histograms, FEATURES)
    assert stored.frame.is_cached
    stored.release()
    assert not stored.frame.is_cached


@pytest.mark.parametrize("indptr, limit, expected", [
    ([0, 3, 3, 10, 11], 12 * 5, [(0, 2), (2, 3), (3, 4)]),  # row 2 alone exceeds the limit
    ([0, 3, 3, 10, 11], 12 * 11, [(0, 4)]),
    ([0, 0, 0], 12, [(0, 2)]),                              # empty rows: one piece
    ([0], 12, []),
])
def test_pieces_by_hand(indptr, limit, expected):
    assert covariance._pieces(np.array(indptr), limit) == expected

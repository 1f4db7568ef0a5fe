"""PCA: the randomized fit for wide inputs agrees with Spark's exact PCA and saves like it."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest
from pyspark.ml.feature import PCAModel
from pyspark.ml.linalg import Vectors
from scipy import sparse

from bovw.errors import TrainingError
from bovw.pipeline import sparse_products
from bovw.pipeline.feature_rows import vector_rows
from bovw.pipeline.reduction import (
    DRIVER_BLAS_THREADS,
    KRYLOV_PASSES,
    OVERSAMPLING,
    explained_variance,
    explained_variance_total,
    fit_pca,
    krylov_components,
    pca_model,
    principal_axes,
    projection,
)
from bovw.pipeline.sparse_products import sparse_times_dense
from bovw.spark import storage
from bovw.spark.arrow_vectors import VECTOR_STRUCT, dense_vectors, sparse_vectors, vectors_to_csr


@pytest.fixture(scope="module")
def weighted(spark):
    # 60 Training rows in 12 dimensions with three clear directions of decreasing spread,
    # plus Test rows that must not influence the fit.
    rng = np.random.default_rng(7)
    axes = np.linalg.qr(rng.standard_normal((12, 3)))[0].T
    scores = rng.standard_normal((60, 3)) * [9.0, 4.0, 2.0]
    points = scores @ axes + 0.05 * rng.standard_normal((60, 12)) + 3.0
    rows = [(f"t{i:02d}.jpg", "Training", Vectors.dense(p.tolist())) for i, p in enumerate(points)]
    rows += [(f"x{i}.jpg", "Test", Vectors.dense([1000.0 * (i + 1)] * 12)) for i in range(3)]
    return spark.createDataFrame(rows, ["path", "split", "weighted"])


# The `weighted` fixture's rows as they are: vectors of 12 values.
_weighted_rows = vector_rows("weighted", 12)


def _axes(model: PCAModel) -> np.ndarray:
    pc = model.pc.toArray()
    return pc * np.sign(pc[np.abs(pc).argmax(axis=0), np.arange(pc.shape[1])])


def test_randomized_matches_exact(weighted):
    exact = fit_pca(weighted, 3, 12)
    randomized = fit_pca(weighted, 3, 12, seed=1, exact_max_dimension=4)
    assert _axes(randomized).shape == (12, 3)
    np.testing.assert_allclose(_axes(randomized), _axes(exact), atol=1e-6)
    np.testing.assert_allclose(explained_variance(randomized), explained_variance(exact),
                               atol=1e-6)
    assert explained_variance(randomized)[0] > 0.7


def test_randomized_model_transforms_saves_and_loads(weighted, tmp_path):
    model = fit_pca(weighted, 2, 12, seed=3, exact_max_dimension=4)
    assert (model.getInputCol(), model.getOutputCol(), model.getK()) == (
        "weighted", "pca_features", 2)
    model.write().overwrite().save(str(tmp_path / "pca"))
    loaded = storage.load_model(PCAModel, str(tmp_path / "pca"))
    np.testing.assert_array_equal(loaded.pc.toArray(), model.pc.toArray())
    row = loaded.transform(weighted).filter("path = 't00.jpg'").first()
    expected = np.asarray(row["weighted"]) @ model.pc.toArray()
    np.testing.assert_allclose(row["pca_features"].toArray(), expected)


def test_randomized_decomposes_on_the_driver_blas_threads(wide, monkeypatch):
    # Two threads share the driver's products between passes; more spin-waited on a busy
    # box (seconds per QR, which is no longer used).
    from threadpoolctl import threadpool_info

    seen = []

    def counting(decompose):
        def decomposition(*args, **kwargs):
            seen.append((decompose.__name__, {pool["num_threads"] for pool in threadpool_info()
                                              if pool["user_api"] == "blas"}))
            return decompose(*args, **kwargs)
        return decomposition

    for name in ("qr", "svd", "eigh"):
        monkeypatch.setattr(np.linalg, name, counting(getattr(np.linalg, name)))
    fit_pca(wide, 3, 150, seed=1, exact_max_dimension=4)
    # The start block and the new directions after each pass but the last, each
    # orthonormalised in two rounds (reduction._orthonormal), then Rayleigh-Ritz.
    assert [name for name, _ in seen] == ["eigh"] * (2 * KRYLOV_PASSES + 1)
    assert all(threads == {DRIVER_BLAS_THREADS} for _, threads in seen)


@pytest.fixture(scope="module")
def wide(spark):
    # 300 Training rows in 150 dimensions, wider than the first Krylov block (3 components
    # + OVERSAMPLING columns), so that it takes every pass: three directions of decreasing
    # spread over noise in all of them.
    rng = np.random.default_rng(5)
    axes = np.linalg.qr(rng.standard_normal((150, 3)))[0].T
    points = (rng.standard_normal((300, 3)) * [9.0, 5.0, 3.0]) @ axes
    points += 0.3 * rng.standard_normal((300, 150)) + 1.0
    return _frame(spark, points)


def test_randomized_matches_exact_when_wider_than_its_blocks(wide):
    exact = fit_pca(wide, 3, 150)
    randomized = fit_pca(wide, 3, 150, seed=4, exact_max_dimension=4)
    # An approximation: KRYLOV_PASSES passes from a random start, each axis within 1e-4.
    np.testing.assert_allclose(_axes(randomized), _axes(exact), atol=1e-4)
    np.testing.assert_allclose(explained_variance(randomized), explained_variance(exact),
                               rtol=1e-6)


def test_local_passes_map_even_shares_of_rows_weighted_once(spark, wide, monkeypatch):
    # Local mode: one job writes the weighted rows of each partition (11 here) once; every
    # pass then runs one task per slot on an even share of them, however uneven the
    # partitions (the coalesced ones once held 7,237 and 4,410 of fruits360-dev's rows).
    from bovw.pipeline import covariance, reduction

    exact = fit_pca(wide, 3, 150)
    weighting, passes = [], []
    real_writing, real_times = covariance._written_parts, covariance.RowFiles.covariance_times

    def counted_writing(features, folder):
        weighting.append(features.dimension)
        return real_writing(features, folder)

    def counted_times(self, basis):
        passes.append((self.tasks, [rows for _stem, rows in self.parts]))
        return real_times(self, basis)

    monkeypatch.setattr(covariance, "_written_parts", counted_writing)
    monkeypatch.setattr(covariance.RowFiles, "covariance_times", counted_times)
    monkeypatch.setattr(reduction, "covariance_times", None)  # the cluster path: not taken
    uneven = wide.repartition(11)
    merged = fit_pca(uneven, 3, 150, seed=4, exact_max_dimension=4)
    assert spark.sparkContext.defaultParallelism == 2
    assert weighting == [150]  # the rows weighted in one job, not once a pass
    assert len(passes) == KRYLOV_PASSES
    assert all(tasks == 2 and sum(parts) == 300 and len(parts) == 11 for tasks, parts in passes)
    # The same axes whatever the partitions (within the approximation's 1e-4).
    np.testing.assert_allclose(_axes(merged), _axes(exact), atol=1e-4)


def test_cluster_passes_read_the_rows_in_every_pass(wide, monkeypatch):
    # On a cluster the Python workers share no disk with the driver: each pass is a job over
    # the (persisted) rows, and gives the same axes as the local passes.
    from bovw.pipeline import reduction

    monkeypatch.setattr(reduction, "local_cores", lambda master: None)
    monkeypatch.setattr(reduction, "local_row_files", None)  # the local path: not taken
    passes = []
    real = reduction.covariance_times

    def counting(rows, basis, features):
        passes.append(rows.rdd.getNumPartitions())
        return real(rows, basis, features)

    monkeypatch.setattr(reduction, "covariance_times", counting)
    on_cluster = fit_pca(wide.repartition(3), 3, 150, seed=4, exact_max_dimension=4)
    assert passes == [3] * KRYLOV_PASSES
    monkeypatch.undo()
    local = fit_pca(wide.repartition(3), 3, 150, seed=4, exact_max_dimension=4)
    np.testing.assert_allclose(on_cluster.pc.toArray(), local.pc.toArray(), atol=1e-12)
    np.testing.assert_allclose(on_cluster.explainedVariance.toArray(),
                               local.explainedVariance.toArray(), rtol=1e-12)


@pytest.mark.parametrize("tasks", [1, 2, 3, 7])
def test_row_files_give_the_sample_covariance_times_a_basis(spark, tasks):
    # 23 rows on 4 partitions of 5-7 rows, in shares that cut across them: C @ B and
    # trace(C) as numpy computes them from the rows, whatever the tasks.
    import dataclasses

    from bovw.pipeline.covariance import covariance_times, local_row_files

    rng = np.random.default_rng(3)
    points = rng.standard_normal((23, 9)) * np.arange(1, 10) + 2.0
    rows = _frame(spark, points).repartition(4).select("weighted", "path")
    basis = rng.standard_normal((9, 4))
    expected = np.cov(points, rowvar=False) @ basis
    trace = np.trace(np.cov(points, rowvar=False))
    with local_row_files(rows, _wide_rows(9)) as files:
        assert files.rows == 23 and sum(count for _stem, count in files.parts) == 23
        assert len(files.parts) == 4
        product, total = dataclasses.replace(files, tasks=tasks).covariance_times(basis)
        again, _ = dataclasses.replace(files, tasks=tasks).covariance_times(basis)
        folder = os.path.dirname(files.parts[0][0])
        # Each pass's basis and products went through the folder, and are gone from it.
        assert sorted(os.listdir(folder)) == sorted(
            f"{os.path.basename(stem)}.{array}.npy" for stem, _count in files.parts
            for array in ("indptr", "indices", "data"))
    np.testing.assert_allclose(product, expected, rtol=1e-12, atol=1e-12)
    assert total == pytest.approx(trace, rel=1e-12)
    np.testing.assert_array_equal(product, again)  # the same bits, run after run
    assert not os.path.exists(folder)  # removed with the block
    # The cluster path's product of the same rows: the same numbers.
    np.testing.assert_allclose(covariance_times(rows, basis, _wide_rows(9))[0], expected,
                               rtol=1e-12, atol=1e-12)


def test_row_files_are_removed_when_the_pca_fails(spark):
    # One Training row: no covariance; the error is the pipeline's, and no file is left.
    from bovw.pipeline.covariance import local_row_files

    rows = _frame(spark, np.ones((1, 9))).select("weighted", "path")
    with pytest.raises(TrainingError, match="at least 2 Training images, got 1"):
        with local_row_files(rows, _wide_rows(9)) as files:
            folder = os.path.dirname(files.parts[0][0])
            files.covariance_times(np.ones((9, 2)))
    assert not os.path.exists(folder)


def _wide_rows(dimension: int):
    return vector_rows("weighted", dimension)


def _symmetric(values: np.ndarray, seed: int) -> np.ndarray:
    axes = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(values),) * 2))[0]
    return (axes * values) @ axes.T


def test_krylov_components_are_the_top_eigenvectors():
    values = np.concatenate([[10.0, 8.0, 6.0, 4.0, 2.0], np.geomspace(0.05, 1e-4, 395)])
    matrix = _symmetric(values, 3)
    calls = []

    def times(block):
        calls.append(block.shape[1])
        return matrix @ block, float(np.trace(matrix))

    pc, explained = krylov_components(times, 5, 400, seed=9)
    assert len(calls) == KRYLOV_PASSES and calls[0] == 5 + OVERSAMPLING
    exact = np.linalg.eigh(matrix)[1][:, ::-1][:, :5]
    np.testing.assert_allclose(np.abs(np.sum(pc * exact, axis=0)), np.ones(5), atol=1e-9)
    # Ritz values approach the eigenvalues from below.
    np.testing.assert_allclose(explained, values[:5] / values.sum(), rtol=1e-6)
    np.testing.assert_allclose(pc.T @ pc, np.eye(5), atol=1e-12)


def test_krylov_components_stop_once_the_space_is_invariant():
    # Rank 7: the first product spans C's whole range, the second adds nothing to it.
    values = np.concatenate([[7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0], np.zeros(393)])
    matrix = _symmetric(values, 4)
    calls = []

    def times(block):
        calls.append(block.shape[1])
        return matrix @ block, float(np.trace(matrix))

    pc, explained = krylov_components(times, 12, 400, seed=2, passes=5)
    assert calls == [12 + OVERSAMPLING, 7]
    # 12 asked, 7 carry variance (varying_axes): the other 5 are not made up.
    assert pc.shape == (400, 7)
    np.testing.assert_allclose(explained, values[:7] / values.sum(), rtol=1e-9)
    np.testing.assert_allclose(pc.T @ pc, np.eye(7), atol=1e-12)
    first, _ = krylov_components(times, 12, 400, seed=2, passes=5)
    np.testing.assert_array_equal(first, pc)


def _with_strengths(strengths, rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    left = np.linalg.qr(rng.standard_normal((rows, len(strengths))))[0]
    right = np.linalg.qr(rng.standard_normal((len(strengths),) * 2))[0]
    return (left * np.asarray(strengths)) @ right


def test_orthonormal_by_hand():
    from bovw.pipeline import reduction

    # Columns (3, 0, 0, 0), (0, 4, 0, 0) and (0, 0, 1e-5, 0) against the basis e3: the
    # third lies in the basis, so two directions are left, e1 and e2 (in any order and
    # sign).
    matrix = np.array([[3.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 1e-5], [0.0, 0.0, 0.0]])
    basis = np.array([[0.0], [0.0], [1.0], [0.0]])
    directions = reduction._orthonormal(matrix, 0.0, basis)
    assert sorted(map(tuple, np.abs(directions).T)) == [(0, 1, 0, 0), (1, 0, 0, 0)]
    # Without the basis the third is a direction of its own (2.5e-6 of the strongest),
    # unless `noise` is above it or it is weaker than GRAM_RESOLUTION of the strongest.
    assert sorted(map(tuple, np.abs(reduction._orthonormal(matrix, 0.0)).T)) == [
        (0, 0, 1, 0), (0, 1, 0, 0), (1, 0, 0, 0)]
    assert reduction._orthonormal(matrix, 2e-5).shape == (4, 2)
    matrix[2, 2] = 4 * reduction.GRAM_RESOLUTION / 2
    assert reduction._orthonormal(matrix, 0.0).shape == (4, 2)
    assert reduction._orthonormal(np.zeros((4, 0)), 0.0).shape == (4, 0)
    assert reduction._orthonormal(np.zeros((4, 2)), 0.0).shape == (4, 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_orthonormal_keeps_resolved_directions_to_rounding(seed):
    # Strengths 1 down to 1e-5, kept, and 1e-8, below GRAM_RESOLUTION: dropped. The kept
    # columns are orthonormal, orthogonal to the basis and span the strong directions
    # to rounding, however weak the direction they stand for.
    from bovw.pipeline import reduction

    basis = np.linalg.qr(np.random.default_rng(seed + 10).standard_normal((3_000, 40)))[0]
    strong = _with_strengths(np.geomspace(1.0, 1e-5, 12), 3_000, seed)
    strong -= basis @ (basis.T @ strong)
    weak = np.linalg.qr(np.random.default_rng(seed + 20).standard_normal((3_000, 1)))[0]
    # Plus some of the basis itself, which must go.
    matrix = np.hstack([strong, 1e-8 * weak]) + basis[:, :13] * 0.5
    directions = reduction._orthonormal(matrix, 0.0, basis)
    assert directions.shape == (3_000, 12)
    np.testing.assert_allclose(directions.T @ directions, np.eye(12), rtol=0, atol=1e-14)
    np.testing.assert_allclose(basis.T @ directions, 0.0, rtol=0, atol=1e-14)
    # span(directions) = span(strong): each column of strong is its own projection on it.
    left = np.linalg.svd(strong, full_matrices=False)[0]
    np.testing.assert_allclose(np.linalg.svd(left.T @ directions)[1], 1.0, rtol=0, atol=1e-9)


@pytest.mark.parametrize("matrix, expected", [
    (np.array([[3.0, 0.0], [0.0, 4.0], [0.0, 0.0]]), 4.0),
    (np.zeros((6, 3)), 0.0),
    (np.zeros((0, 3)), 0.0),
    (np.zeros((6, 0)), 0.0),
])
def test_largest_singular_value_by_hand(matrix, expected):
    from bovw.pipeline import reduction

    assert reduction._largest_singular_value(matrix) == expected


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_largest_singular_value_is_the_2_norm(seed):
    # Tall, with singular values from 1e6 down to 1e-6: the threshold _new_directions
    # scales needs the largest one to about 1e-15 of itself, however small the others.
    from bovw.pipeline import reduction

    rng = np.random.default_rng(seed)
    left = np.linalg.qr(rng.standard_normal((2_000, 9)))[0]
    right = np.linalg.qr(rng.standard_normal((9, 9)))[0]
    matrix = (left * np.geomspace(1e6, 1e-6, 9)) @ right
    assert reduction._largest_singular_value(matrix) == pytest.approx(
        np.linalg.norm(matrix, 2), rel=1e-14, abs=0)


def test_randomized_releases_what_it_cached(spark, weighted):
    before = spark.sparkContext._jsc.getPersistentRDDs().size()
    fit_pca(weighted, 3, 12, seed=5, exact_max_dimension=4)
    assert spark.sparkContext._jsc.getPersistentRDDs().size() == before


def test_randomized_is_deterministic(weighted):
    first = fit_pca(weighted, 3, 12, seed=5, exact_max_dimension=4)
    again = fit_pca(weighted.repartition(3), 3, 12, seed=5, exact_max_dimension=4)
    np.testing.assert_allclose(first.pc.toArray(), again.pc.toArray(), rtol=0, atol=1e-12)


def test_randomized_reads_a_frame_the_caller_persisted_as_it_is(weighted, monkeypatch):
    own_copy = principal_axes(weighted, 3, _weighted_rows, seed=5, exact_max_dimension=4)
    persisted = weighted.persist()
    try:
        # No second copy of the rows is cached, and the caller's stays.
        monkeypatch.setattr(type(persisted), "persist",
                            lambda *args, **kwargs: pytest.fail("persisted a copy"))
        read_as_is = principal_axes(persisted, 3, _weighted_rows, seed=5, exact_max_dimension=4,
                                    persisted=True)
        assert persisted.is_cached
    finally:
        persisted.unpersist()
    for made, again in zip(own_copy, read_as_is, strict=True):
        np.testing.assert_allclose(made, again, rtol=0, atol=1e-12)


def _frame(spark, points: np.ndarray):
    rows = [(f"t{i:02d}.jpg", "Training", Vectors.dense(p.tolist())) for i, p in enumerate(points)]
    return spark.createDataFrame(rows, ["path", "split", "weighted"])


@pytest.mark.parametrize("exact_max_dimension", [512, 4], ids=["exact", "randomized"])
def test_pca_keeps_only_the_axes_along_which_training_rows_vary(spark, exact_max_dimension):
    # 40 rows spanning 3 directions of 12 dimensions (plus an offset), like word histograms
    # whose pyramid cells add up and whose common words weigh 0: 12 components asked, 3
    # carry variance. The other 9 would have had rounding-noise variance, on which Spark's
    # unstandardised LogisticRegression failed at its first step (issue 12).
    rng = np.random.default_rng(11)
    axes = np.linalg.qr(rng.standard_normal((12, 3)))[0].T
    points = (rng.standard_normal((40, 3)) * [5.0, 2.0, 0.5]) @ axes + 0.7
    model = fit_pca(_frame(spark, points), 12, 12, seed=2,
                    exact_max_dimension=exact_max_dimension)
    assert model.getK() == 3 and model.pc.toArray().shape == (12, 3)
    assert sum(explained_variance(model)) == pytest.approx(1.0, abs=1e-6)
    projected = points @ model.pc.toArray()
    assert projected.std(axis=0).min() > 0.1


def test_the_total_explained_variance_is_summed_before_rounding(spark):
    # 17 axes of 1/17 each: rounded one by one to 0.058824 they add up to 1.000008, which
    # the k = 20 sweep point printed; a total above 1 (eigenvalue rounding) is clipped.
    model = pca_model(spark, np.eye(17), np.full(17, 1 / 17))
    assert round(sum(explained_variance(model)), 6) == 1.000008
    assert explained_variance_total(model) == 1.0
    assert explained_variance_total(pca_model(spark, np.eye(2), np.array([0.6, 0.4000004]))) == 1.0


@pytest.mark.parametrize("exact_max_dimension", [512, 4], ids=["exact", "randomized"])
def test_pca_is_capped_by_the_number_of_training_rows(spark, exact_max_dimension):
    # 6 rows in general position in 12 dimensions: their centred rank is 5.
    points = np.random.default_rng(3).random((6, 12))
    model = fit_pca(_frame(spark, points), 10, 12, seed=2,
                    exact_max_dimension=exact_max_dimension)
    assert model.getK() == 5


def test_training_rows_that_do_not_vary_are_a_one_line_error(spark):
    with pytest.raises(TrainingError, match=r"^the Training features do not vary: every "
                                            r"Training image has the same"):
        fit_pca(_frame(spark, np.zeros((5, 12))), 4, 12)


def _vector_structs(rows) -> pa.StructArray:
    """Arrow structs shaped as Spark sends ML vectors: (type, size, indices, values)."""
    return pa.array(rows, type=VECTOR_STRUCT)


def test_vectors_reach_python_as_sparse_rows():
    sparse_rows = [{"type": 0, "size": 4, "indices": [1, 3], "values": [2.0, 5.0]},
                   {"type": 0, "size": 4, "indices": [], "values": []}]
    dense_row = {"type": 1, "size": None, "indices": None, "values": [1.0, 0.0, 0.0, 7.0]}
    assert vectors_to_csr(_vector_structs(sparse_rows), 4).toarray().tolist() == [
        [0, 2, 0, 5], [0, 0, 0, 0]]
    # A slice starts at a non-zero offset; a mixed batch takes the row-by-row path.
    sliced = _vector_structs([dense_row, *sparse_rows]).slice(1)
    assert vectors_to_csr(sliced, 4).toarray().tolist() == [[0, 2, 0, 5], [0, 0, 0, 0]]
    mixed = _vector_structs([sparse_rows[0], dense_row])
    assert vectors_to_csr(mixed, 4).toarray().tolist() == [[0, 2, 0, 5], [1, 0, 0, 7]]


@pytest.mark.parametrize("row", [
    {"type": 0, "size": 6, "indices": [1, 5], "values": [2.0, 5.0]},
    {"type": 1, "size": None, "indices": None, "values": [1.0, 0.0, 0.0, 7.0, 1.0]},
])
def test_vectors_of_another_length_are_refused(row):
    # Unchecked, the sparse one builds a 4-column CSR matrix holding column 5.
    fitting = {"type": 0, "size": 4, "indices": [0], "values": [1.0]}
    length = len(row["values"]) if row["type"] else row["size"]
    with pytest.raises(ValueError, match=f"^a vector of {length} entries where every "
                                         "vector should have 4$"):
        vectors_to_csr(_vector_structs([fitting, row]), 4)
    with pytest.raises(ValueError, match=f"^a vector of {length} entries"):
        vectors_to_csr(_vector_structs([row, row]), 4)


def test_built_vectors_are_what_spark_would_send():
    built = sparse_vectors(4, np.array([0, 2, 2]), np.array([1, 3]), np.array([2.0, 5.0]))
    assert built.to_pylist() == [
        {"type": 0, "size": 4, "indices": [1, 3], "values": [2.0, 5.0]},
        {"type": 0, "size": 4, "indices": [], "values": []}]
    dense = dense_vectors(np.array([[1, 0, 0, 7], [0, 2, 0, 5]], np.uint8))
    assert dense.to_pylist()[0] == {"type": 1, "size": None, "indices": None,
                                    "values": [1.0, 0.0, 0.0, 7.0]}
    assert vectors_to_csr(dense, 4).toarray().tolist() == [[1, 0, 0, 7], [0, 2, 0, 5]]


@pytest.mark.parametrize("axes_given", [False, True])
@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_projection_gives_what_pca_model_transform_gives(spark, weighted, kind, axes_given):
    pc, explained = principal_axes(weighted, 3, _weighted_rows)
    model = pca_model(spark, pc, explained)
    assert np.array_equal(model.pc.toArray(), pc)  # the JVM holds the very axes given
    frame = weighted
    if kind == "sparse":
        to_sparse = {row["path"]: Vectors.sparse(12, {i: v for i, v in
                                                      enumerate(row["weighted"]) if i % 3})
                     for row in weighted.collect()}
        frame = spark.createDataFrame([(path, vector) for path, vector in to_sparse.items()],
                                      ["path", "weighted"])
    expected = {row["path"]: row["pca_features"].toArray()
                for row in model.transform(frame).collect()}

    with projection(frame, model, pc if axes_given else None) as projected:
        rows = projected.collect()
        assert projected.columns == [name for name in frame.columns if name != "weighted"] + [
            "pca_features"]

    assert sorted(row["path"] for row in rows) == sorted(expected)
    for row in rows:
        np.testing.assert_allclose(row["pca_features"].toArray(), expected[row["path"]],
                                   rtol=1e-12, atol=1e-12)


class _RecordingCsr(sparse.csr_matrix):
    """A CSR matrix that notes the width of every dense matrix it is multiplied by."""

    widths: list[int] = []

    def __matmul__(self, other):
        self.widths.append(other.shape[1])
        return super().__matmul__(other)


@pytest.mark.parametrize(("chunk_columns", "widths"), [(1, [1, 1, 1, 1]), (3, [3, 1]),
                                                        (4, [4]), (100, [4])])
def test_sparse_times_dense_multiplies_a_few_columns_at_a_time(monkeypatch, chunk_columns,
                                                               widths):
    # 3 rows of float64 a column: the chunk holds `chunk_columns` columns.
    monkeypatch.setattr(sparse_products, "_DENSE_CHUNK_BYTES", chunk_columns * 3 * 8)
    matrix = _RecordingCsr(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]]))
    matrix.widths = []
    dense = np.arange(1.0, 13.0).reshape(3, 4)

    product = sparse_times_dense(matrix, dense)

    assert product.tolist() == [[19.0, 22.0, 25.0, 28.0], [15.0, 18.0, 21.0, 24.0]]
    assert matrix.widths == widths


def test_sparse_times_dense_sizes_its_chunks_on_a_result_taller_than_the_dense_side(
        monkeypatch):
    # X^T (X B): the result has more rows than the dense matrix, and it is the result's
    # rows that a transposed matrix adds into in random order. 2 columns of the 3-row
    # result a chunk, where the 2-row dense side alone would allow 3.
    monkeypatch.setattr(sparse_products, "_DENSE_CHUNK_BYTES", 2 * 3 * 8)
    matrix = _RecordingCsr(np.array([[1.0, 0.0], [0.0, 3.0], [2.0, 0.0]]))
    matrix.widths = []

    product = sparse_times_dense(matrix, np.arange(1.0, 9.0).reshape(2, 4))

    assert product.tolist() == [[1.0, 2.0, 3.0, 4.0], [15.0, 18.0, 21.0, 24.0],
                                [2.0, 4.0, 6.0, 8.0]]
    assert matrix.widths == [2, 2]


@pytest.mark.parametrize("fortran", [False, True])
@pytest.mark.parametrize("chunk_columns", [1, 5])
@pytest.mark.parametrize("transposed", [False, True])
def test_sparse_times_dense_is_the_whole_product_bit_for_bit(monkeypatch, transposed,
                                                            chunk_columns, fortran):
    # Column chunks change no sum: every entry adds the same terms in the same order (a
    # one-column chunk takes scipy's matrix-vector kernel). The PCA's axes come F-ordered.
    rng = np.random.default_rng(3)
    matrix = sparse.random(300, 500, density=0.05, format="csr", random_state=4)
    matrix = matrix.T if transposed else matrix
    dense = rng.standard_normal((matrix.shape[1], 37))
    dense = np.asfortranarray(dense) if fortran else dense
    monkeypatch.setattr(sparse_products, "_DENSE_CHUNK_BYTES", chunk_columns * 500 * 8)

    product = sparse_times_dense(matrix, dense)

    assert product.dtype == np.float64 and product.flags.c_contiguous
    assert np.array_equal(product, np.asarray(matrix @ dense))

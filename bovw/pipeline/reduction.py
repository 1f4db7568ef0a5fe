"""Reduction stage: PCA fitted on the Training rows, as a Spark ML PCAModel.

Spark ML's PCA builds the full d x d covariance on the driver and decomposes it there:
fine for a few hundred columns (done here too, see exact_components), minutes for the
thousands a spatial pyramid produces. Wide inputs are therefore fitted by randomized
block Krylov iteration instead: every pass is one distributed job returning a
d x (components + oversampling) matrix per partition (per task in local mode, see
bovw.pipeline.covariance), and only small matrices are decomposed on the driver. Either
way the result is an ordinary PCAModel (saved, loaded, exported and applied exactly like
Spark's own).

Only axes along which the Training rows vary are kept, so `pca.components` is capped by the
rank of the centred Training data (at most rows - 1, and at most the histogram length less
its linear dependencies: with a spatial pyramid the whole-image cell is the sum of its
quadrants, and words present in every Training image have IDF 0). An axis beyond that rank
has an eigenvalue of rounding noise (about 1e-16 of the largest), and its projections
differ across rows only by rounding. Spark's LogisticRegression divides every feature by
its standard deviation and, unstandardised, weights the L2 penalty by 1 / std^2: on such
an axis that is a penalty 1e30 times too steep, its LBFGS line search fails at the first
step and the model keeps its starting point (one class for every image).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
from pyspark.ml.feature import PCAModel
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType
from threadpoolctl import threadpool_limits

from bovw.columns import PATH, PCA_FEATURES, SPLIT, TRAIN, WEIGHTED
from bovw.errors import TrainingError
from bovw.pipeline.covariance import covariance_times, local_row_files
from bovw.pipeline.feature_rows import FeatureRows, vector_rows
from bovw.pipeline.sparse_products import sparse_times_dense
from bovw.spark.arrow_vectors import dense_vectors
from bovw.spark.jvm import java_pca_model
from bovw.spark.workers import local_cores

__all__ = ["DRIVER_BLAS_THREADS", "EXACT_MAX_DIMENSION", "GRAM_RESOLUTION", "KRYLOV_PASSES",
           "OVERSAMPLING", "exact_components", "explained_variance",
           "explained_variance_total", "fit_pca", "krylov_components",
           "pca_model", "principal_axes", "projection", "randomized_components",
           "varying_axes"]

# Up to this many input columns Spark's exact PCA is quick; beyond it, randomized.
EXACT_MAX_DIMENSION = 512
# Columns added to the Krylov blocks beyond pca.components. On fruits360-dev's Training
# rows (5,032 columns, 100 components; all 100 axes hold 29.94% of the variance), block
# Krylov iteration captures 29.23% in 3 passes and 29.79% in 4 with 20 of them (29.63% in
# 3 with 100, which cost more per pass); 5 passes of subspace iteration (the method
# before) 29.61% with 20.
OVERSAMPLING = 20
# Each pass is one Spark job over the Training rows (see krylov_components). 4 rather than
# 3: Test accuracy over seeds 42, 7 and 1, default settings, 95.73% against 95.70% (5
# passes of subspace iteration: 95.69%), and with 3 pyramid levels and power 0.5 (21,000
# columns) 96.50% against 96.22%, for about 1 s more of reduction stage (7.5-8.1 s against
# 6.6 s; the subspace iteration took 9.0 s).
KRYLOV_PASSES = 4
# BLAS threads of the driver's work between and after the Krylov passes: at 3 pyramid
# levels `python bench/krylov_driver.py` took 0.76-0.83 s a run on two against 1.15-1.48 s
# on one, and in whole runs on fruits360-dev the four gaps from each pass to the next job
# added up to 1.61-1.77 s instead of 2.26-2.40 s (Spark event logs, 2 runs each in turn).
DRIVER_BLAS_THREADS = 2
# The weakest direction told apart from rounding through a Gram matrix, relative to the
# strongest: squared strengths carry the Gram matrix's rounding error, about
# sqrt(rows) * eps of the largest (21,032 rows: 3e-14), which is 2e-7 in strength.
GRAM_RESOLUTION = 1e-6


def fit_pca(weighted: DataFrame, components: int, input_dimension: int, seed: int = 0,
            exact_max_dimension: int = EXACT_MAX_DIMENSION) -> PCAModel:
    """PCA of the `weighted` column (vectors of `input_dimension` values) on Training
    rows: at most `components` axes, and only those along which the Training rows vary
    (see `varying_axes`); getK() says how many.

    Returns a PCAModel (inputCol weighted, outputCol pca_features) of the axes
    `principal_axes` finds.
    """
    pc, variance = principal_axes(weighted, components, vector_rows(WEIGHTED, input_dimension),
                                  seed, exact_max_dimension)
    return pca_model(weighted.sparkSession, pc, variance)


def principal_axes(rows: DataFrame, components: int, features: FeatureRows, seed: int = 0,
                   exact_max_dimension: int = EXACT_MAX_DIMENSION, persisted: bool = False
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The principal axes of the feature rows `features` makes of the Training `rows`
    (features.dimension values each): pc (d, kept), unit columns, largest variance first,
    and the (kept,) fraction of the variance each one explains; kept <= `components`
    counts only the axes along which the Training rows vary (see `varying_axes`).

    Inputs wider than `exact_max_dimension` are fitted by `randomized_components` with
    `seed`, whose passes read the Training rows again and again: `persisted` says the
    caller holds `rows` persisted already, which they then read as it is (else they
    persist their own copy of the Training rows). Raises TrainingError when the Training
    rows do not vary at all.
    """
    dimension = features.dimension
    k = min(components, dimension)
    training = rows.filter(F.col(SPLIT) == TRAIN)
    if dimension <= exact_max_dimension:
        pc, variance = exact_components(training, features, k)
    else:
        pc, variance = randomized_components(training, k, features, seed, persisted)
    if pc.shape[1] == 0:
        raise TrainingError(
            "the Training features do not vary: every Training image has the same "
            "(weighted) histogram, so no class can be told apart; check the input images")
    return pc, variance


def varying_axes(values: np.ndarray, dimension: int) -> int:
    """How many of the covariance eigenvalues `values` (largest first) carry variance.

    An eigenvalue at or below largest * dimension * eps is rounding noise (the tolerance of
    numpy.linalg.matrix_rank for a d x d symmetric matrix): the covariance's numerical
    rank. Measured on fruits360-dev word histograms (k = 5 to 100, exact path): the
    smallest eigenvalue kept is above 1e-5 of the largest, the dropped ones below 2e-15;
    randomized path (6 of its classes, 360 Training images, k = 200, 400 components
    asked): 1.3e-3 against 5e-16, 359 kept. The cut does not hinge on the tolerance.
    """
    if len(values) == 0 or values[0] <= 0:
        return 0
    return int(np.count_nonzero(values > values[0] * dimension * np.finfo(np.float64).eps))


def exact_components(training: DataFrame, features: FeatureRows, k: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The top `k` principal axes of the rows `features` makes of `training`, exactly.

    Like Spark ML's PCA.fit, Spark computes the d x d covariance (covariance_times) and the
    driver decomposes it; but the decomposition is numpy's symmetric eigensolver. Without
    a native LAPACK, PCA.fit's SVD runs in an old Java translation of LAPACK whose dgesdd
    returns wrong vectors for some singular matrices, and the covariance is singular
    whenever there are fewer Training rows than columns: on 454 rows x 1,000 bins, 18 of
    its 100 axes carried no Training variance, and logistic regression then failed at its
    first step.
    Returns pc (d, kept), unit columns, largest variance first, and the explained
    fractions; kept <= k counts only the axes that carry variance (`varying_axes`).
    """
    # Not mllib's RowMatrix.computeCovariance: it takes the first row of its input (a
    # Python RDD) to see whether it is dense, and the Python worker whose output it stops
    # reading prints a BrokenPipeError traceback mid-run.
    dimension = features.dimension
    identified = [PATH] if PATH in training.columns else []
    covariance, _trace = covariance_times(training.select(*features.columns, *identified),
                                          None, features)
    values, vectors = np.linalg.eigh(covariance)  # ascending
    values, vectors = values[::-1], vectors[:, ::-1]
    kept = min(k, varying_axes(values, dimension))
    pc = _fix_signs(vectors[:, :kept])
    values = np.clip(values, 0.0, None)
    total = values.sum()
    return pc, values[:kept] / total if total > 0 else np.zeros(kept)


def _fix_signs(pc: np.ndarray) -> np.ndarray:
    """Each axis's sign is arbitrary: the one whose largest entry is positive, repeatably."""
    k = pc.shape[1]
    return pc * np.where(pc[np.abs(pc).argmax(axis=0), np.arange(k)] < 0, -1.0, 1.0)


def randomized_components(training: DataFrame, k: int, features: FeatureRows, seed: int,
                          persisted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The top `k` principal axes of the rows `features` makes of `training`.

    Block Krylov iteration on the covariance C (data centred, like Spark's PCA): each pass
    is one Spark job, and the passes' products feed krylov_components. In local mode the
    rows are weighted once into files the passes map (covariance.local_row_files), each
    task an even share of them; on a cluster every pass reads the rows again
    (covariance_times), from a persisted copy.
    Returns pc (d, kept), unit columns, largest variance first, and the fraction of the
    total variance each one explains; kept <= k counts only the axes that carry variance.
    `persisted`: `training` reads a persisted frame, which a cluster's passes read as it is
    (else they persist their own copy).
    """
    selected = training.select(*features.columns, PATH)
    if local_cores(training.sparkSession.sparkContext.master) is not None:
        with local_row_files(selected, features) as row_files:
            return krylov_components(row_files.covariance_times, k, features.dimension, seed)
    # Cached as they are (sparse word histograms are small); every pass reads them again,
    # and they reach Python as Arrow structs, still sparse.
    cached = selected if persisted else selected.persist()
    try:
        return krylov_components(lambda block: covariance_times(cached, block, features),
                                 k, features.dimension, seed)
    finally:
        if not persisted:
            cached.unpersist()


def krylov_components(times: Callable[[np.ndarray], tuple[np.ndarray, float]], k: int,
                      dimension: int, seed: int, passes: int = KRYLOV_PASSES
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The top `k` eigenvectors of a symmetric positive semi-definite d x d matrix C that
    is only seen through `times(block)` -> (C @ block, trace(C)), `passes` calls at most.

    Block Krylov iteration with Rayleigh-Ritz on the whole Krylov space: from a seeded
    Gaussian d x (k + OVERSAMPLING) block Q0, each pass multiplies the newest block by C
    and orthonormalises the product against every block so far into the next one; the
    Ritz vectors are then taken from span(Q0, C Q0, ..., C^(passes-1) Q0), whose image
    under C the passes have already computed. Subspace iteration keeps only its last
    block, C^(passes-1) Q0, and needs more passes for the same variance (see
    OVERSAMPLING). A direction the product no longer adds to the space (the space is
    invariant: C has no other axes) is dropped, and the passes stop when none is new.

    Returns (pc (d, kept), explained (kept,)): unit columns, largest eigenvalue first, the
    eigenvalues as fractions of trace(C); kept <= k counts only the axes that carry
    variance (`varying_axes`). The driver's decompositions here run on
    DRIVER_BLAS_THREADS BLAS threads.
    """
    width = min(dimension, k + OVERSAMPLING)
    with _driver_blas_threads():
        block = _orthonormal(np.random.default_rng(seed).standard_normal((dimension, width)),
                             0.0)
    # The blocks and their products side by side, each copied in once: stacked anew at
    # every pass, the copies took 0.2 s of the driver at 3 pyramid levels. Column-major, so
    # a block's columns lie together: in a row-major array the first block's copy touched
    # every page of it (0.1 s) and products with the first block's view took 0.36 s
    # instead of 0.17 s.
    basis = np.empty((dimension, passes * width), order="F")
    image = np.empty((dimension, passes * width), order="F")
    filled = 0
    for step in range(passes):
        product, total_variance = times(block)
        basis[:, filled:filled + block.shape[1]] = block
        image[:, filled:filled + block.shape[1]] = product
        filled += block.shape[1]
        if step == passes - 1:
            break
        with _driver_blas_threads():
            block = _new_directions(product, basis[:, :filled])
        if block.shape[1] == 0:
            break
    basis, image = basis[:, :filled], image[:, :filled]
    with _driver_blas_threads():
        small = basis.T @ image
        values, vectors = np.linalg.eigh((small + small.T) / 2)
        order = np.argsort(values)[::-1]
        order = order[:min(k, varying_axes(values[order], dimension))]
        pc = _fix_signs(basis @ vectors[:, order])
    explained = np.clip(values[order], 0.0, None) / total_variance if total_variance else (
        np.zeros(len(order)))
    return pc, explained


def _driver_blas_threads():
    # While the driver works between passes no Spark task runs, and its work is matrix
    # products (d x a few hundred columns, see _orthonormal), which two threads share well.
    # Not more: LAPACK's factorisations of tall matrices (numpy's QR, once used here)
    # spin-waited on more threads, 0.3 to 2.3 s on a busy 2-core machine instead of 0.03 s.
    return threadpool_limits(limits=DRIVER_BLAS_THREADS, user_api="blas")


def _new_directions(product: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the part of span(product) outside span(basis) (orthonormal
    columns), without the directions that are only rounding noise."""
    scale = _largest_singular_value(product)
    return _orthonormal(product, scale * basis.shape[0] * np.finfo(np.float64).eps, basis)


def _orthonormal(matrix: np.ndarray, noise: float, basis: np.ndarray | None = None
                 ) -> np.ndarray:
    """Orthonormal columns spanning the part of a tall (d, w) `matrix` outside span(basis)
    (orthonormal (d, b) columns, or None), less its directions whose strength (singular
    value) is at most `noise` or is not resolved: below GRAM_RESOLUTION of the strongest.
    A (d, kept) array, kept <= w.

    Twice: `basis` projected out, then the w x w Gram matrix's eigenvectors, scaled by
    1 / strength, taken as the matrix's combinations (CholeskyQR2, with an eigensolver
    that tells the rank). The second time leaves rounding-sized errors only: what the
    first projection left along `basis` came out of the division magnified (by 1e6 for a
    direction 1e-6 as strong as the product), and the columns orthonormal to about 1e-8.
    numpy's SVD of the PCA's 21,032 x 120 products took 0.27 s on one BLAS thread, its
    QR 0.28 s, this 0.03 s: those are bound by memory on a tall matrix, this is matrix
    products.
    """
    for _ in range(2):
        if basis is not None:
            matrix = matrix - basis @ (basis.T @ matrix)
        values, vectors = np.linalg.eigh(matrix.T @ matrix)
        strengths = np.sqrt(np.clip(values, 0.0, None))
        strongest = strengths[-1] if len(strengths) else 0.0  # eigh: ascending
        kept = strengths > max(noise, strongest * GRAM_RESOLUTION)
        matrix = matrix @ (vectors[:, kept] / strengths[kept])
        noise = 0.0
    return matrix


def _largest_singular_value(matrix: np.ndarray) -> float:
    """np.linalg.norm(matrix, 2) of a tall (d, w) matrix, from its w x w Gram matrix.

    norm(matrix, 2) decomposes the whole d x w matrix: 0.15 s a pass on the driver at 3
    pyramid levels (21,032 x 120), this about 0.01 s. Squaring costs the small singular
    values their accuracy, not the largest, which it gives to about 1e-15 of itself.
    """
    if matrix.size == 0:
        return 0.0
    return float(np.sqrt(max(np.linalg.eigvalsh(matrix.T @ matrix)[-1], 0.0)))


def pca_model(spark, pc: np.ndarray, explained: np.ndarray) -> PCAModel:
    """A Spark ML PCAModel (weighted -> pca_features) holding the (d, k) axes `pc` and the
    (k,) explained variance of each."""
    return java_pca_model(spark, pc, explained, WEIGHTED, PCA_FEATURES)


@contextmanager
def projection(frame: DataFrame, pca: PCAModel, axes: np.ndarray | None = None,
               features: FeatureRows | None = None) -> Iterator[DataFrame]:
    """`frame` with its `pca.getInputCol()` vectors replaced by their projections
    (`pca.getOutputCol()`: pc^T x, dense), as PCAModel.transform computes them; with
    `features`, the columns it reads are replaced by the projections of its rows. `axes`
    is pca.pc as a (d, k) array when the caller has it: read from the JVM, a 21,064 x 100
    matrix took 0.9 s of the driver.

    The matrix reaches the Python workers once, as a broadcast variable, released when the
    block ends: PCAModel.transform would carry it inside every task of every job that reads
    the result (4 MB at 5,000 bins and 100 components). Use the frame inside the block.
    """
    pc = pca.pc.toArray() if axes is None else axes
    target = pca.getOutputCol()
    features = features or vector_rows(pca.getInputCol(), pc.shape[0])
    if features.dimension != pc.shape[0]:
        raise ValueError(f"feature rows of {features.dimension} values, axes of {pc.shape[0]}")
    kept = [name for name in frame.columns if name not in features.columns]
    schema = StructType([frame.schema[name] for name in kept]
                        + [StructField(target, VectorUDT())])
    shared = frame.sparkSession.sparkContext.broadcast(pc)

    def project(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        matrix = shared.value
        for batch in batches:
            rows = features.csr(batch)
            yield pa.RecordBatch.from_arrays(
                [batch.column(name) for name in kept]
                + [dense_vectors(sparse_times_dense(rows, matrix))],
                names=[*kept, target])

    try:
        yield frame.mapInArrow(project, schema)
    finally:
        shared.unpersist()


def explained_variance(model: PCAModel) -> list[float]:
    """Fraction of the Training variance each principal component explains."""
    return [round(float(value), 6) for value in model.explainedVariance.toArray()]


def explained_variance_total(model: PCAModel) -> float:
    """Fraction of the Training variance all kept components explain together, in [0, 1].

    Summed before rounding: a sum of rounded fractions drifts by up to half a unit of the
    last digit per component, and printed 1.000002 for 77 axes that explain it all.
    """
    return round(min(float(model.explainedVariance.toArray().sum()), 1.0), 6)

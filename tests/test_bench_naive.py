"""The naive benchmark pipeline's own per-row pieces, checked against the real pipeline's."""

import cv2
import numpy as np

from bench.naive import describe_row, fit_pca, pyramid_bins
from bovw.config import OrbSettings
from bovw.image.orb import describe_keypoints
from bovw.image.synthetic import encode_jpeg, render_fruit
from bovw.image.words import pyramid_bins as pipeline_pyramid_bins


def test_row_udf_gives_the_pipelines_descriptors_and_positions_as_floats():
    data = encode_jpeg(render_fruit("Kiwi", np.random.default_rng(5)))
    settings = OrbSettings(sampling="dense", dense_step=6)
    rows = np.array(describe_row(data, settings))
    grey = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    descriptors, positions = describe_keypoints(grey, settings)
    assert rows.shape == (len(descriptors), 34)
    assert np.array_equal(rows[:, :32], descriptors)
    assert np.array_equal(rows[:, 32:], positions)
    assert describe_row(b"not an image", settings) is None


def test_pyramid_bin_column_matches_the_pipelines_bins(spark):
    words = np.array([0, 2, 1, 4])
    positions = np.array([[0, 0], [255, 0], [128, 200], [63, 64]], dtype=np.uint8)
    frame = spark.createDataFrame(
        [(int(w), float(x), float(y)) for w, (x, y) in zip(words, positions, strict=True)],
        "prediction int, x float, y float")
    bins = [row[0] for row in frame.select(pyramid_bins(5, 3)).collect()]
    expected = pipeline_pyramid_bins(words, positions, 5, 3).reshape(3, -1).T
    assert bins == expected.tolist()


def test_pca_axes_carry_the_training_variance_when_the_covariance_is_singular(spark):
    from pyspark.ml.linalg import Vectors

    # L2-normalised word counts with fewer rows than columns (like 454 Training images and
    # 1000 bins): the covariance is singular. On exactly these rows Spark's own PCA.fit,
    # with its Java LAPACK fallback, returned a third and fourth axis with no variance.
    rng = np.random.default_rng(5)
    counts = rng.poisson(0.3, (100, 200)) * rng.gamma(1.0, 1.0, 200)
    rows = counts / np.linalg.norm(counts, axis=1, keepdims=True)
    frame = spark.createDataFrame(
        [(Vectors.sparse(200, np.flatnonzero(row), row[row != 0]),) for row in rows], ["weights"])
    model = fit_pca(frame, "weights", components=10, dimension=200)
    assert (model.getInputCol(), model.getOutputCol(), model.getK()) == (
        "weights", "pca_features", 10)
    projected = np.array([row.pca_features.toArray()
                          for row in model.transform(frame).select("pca_features").collect()])
    covariance = np.cov(rows, rowvar=False)
    top = np.linalg.eigvalsh(covariance)[::-1][:10]
    assert np.allclose(projected.var(axis=0, ddof=1), top, rtol=1e-9)
    assert np.allclose(model.explainedVariance.toArray(), top / np.trace(covariance), rtol=1e-9)

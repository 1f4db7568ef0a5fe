"""The naive benchmark pipeline's own per-row pieces, checked against the real pipeline's."""

import cv2
import numpy as np

from bench.naive import describe_row, pyramid_bins
from bovw.config import OrbSettings
from bovw.features import describe_keypoints
from bovw.synthetic import encode_jpeg, render_fruit
from bovw.words import pyramid_bins as pipeline_pyramid_bins


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

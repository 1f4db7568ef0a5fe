"""A descriptors table of two images, one with the given descriptors and one without, run
through the histograms stage: shared by the VLAD and Fisher tests."""

from __future__ import annotations

import numpy as np
import pytest

from bovw.columns import DESCRIPTOR_SCHEMA
from bovw.config import Config, HistogramSettings, ToneSettings
from bovw.image.encodings import DenseEncoding
from bovw.image.orb import pack
from bovw.pipeline.feature_rows import feature_rows
from bovw.pipeline.histograms import word_histograms
from tests.spark_weighting import feature_matrix


def check_spark_encoding(spark, descriptors: np.ndarray, positions: np.ndarray,
                         centers: np.ndarray, settings: HistogramSettings, dense: DenseEncoding,
                         expected: np.ndarray) -> None:
    """word_histograms(...) of a.jpg, holding `descriptors` at `positions`, and of b.jpg,
    holding none, then their feature rows as the reduction stage weights them: a.jpg's
    histogram is exactly the pure function's `expected`, its feature row that over its L2
    norm (not the power a second time), b.jpg's zeros."""
    frame = spark.createDataFrame([
        ("a.jpg", "fruit", "Training", len(descriptors), pack(descriptors), None, 100, 100,
         pack(positions), [], [], b""),
        ("b.jpg", "fruit", "Test", 0, b"", None, 100, 100, b"", [], [], b""),
    ], DESCRIPTOR_SCHEMA)
    encoded = word_histograms(frame, centers, settings.pyramid_levels, dense=dense)
    histograms = {row["path"]: row["histogram"] for row in encoded.collect()}
    assert histograms["a.jpg"].toArray().tolist() == expected.tolist()
    rows = feature_matrix(encoded, feature_rows(
        Config(histograms=settings, tone=ToneSettings(enabled=False)), None, len(expected)))
    assert rows["a.jpg"] == pytest.approx((expected / np.linalg.norm(expected)).tolist())
    assert rows["b.jpg"] == [0.0] * len(expected)

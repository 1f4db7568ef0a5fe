"""A descriptors table of two images, one with the given descriptors and one without, run
through the histograms stage: shared by the VLAD and Fisher tests."""

from __future__ import annotations

import numpy as np
import pytest

from bovw.columns import DESCRIPTOR_SCHEMA
from bovw.config import HistogramSettings
from bovw.image.encodings import DenseEncoding
from bovw.image.orb import pack
from bovw.pipeline.histograms import weight, word_histograms


def check_spark_encoding(spark, descriptors: np.ndarray, positions: np.ndarray,
                         centers: np.ndarray, settings: HistogramSettings, dense: DenseEncoding,
                         expected: np.ndarray) -> None:
    """weight(word_histograms(...)) of a.jpg, holding `descriptors` at `positions`, and of
    b.jpg, holding none: a.jpg's histogram is exactly the pure function's `expected`, its
    weighted vector that over its L2 norm (not the power a second time), b.jpg's zeros."""
    frame = spark.createDataFrame([
        ("a.jpg", "fruit", "Training", len(descriptors), pack(descriptors), None, 100, 100,
         pack(positions), [], [], b""),
        ("b.jpg", "fruit", "Test", 0, b"", None, 100, 100, b"", [], [], b""),
    ], DESCRIPTOR_SCHEMA)
    encoded = word_histograms(frame, centers, settings.pyramid_levels, dense=dense)
    histograms = {row["path"]: row["histogram"] for row in encoded.collect()}
    assert histograms["a.jpg"].toArray().tolist() == expected.tolist()
    rows = {row["path"]: row for row in weight(encoded, settings, None).collect()}
    assert "histogram" not in rows["a.jpg"].asDict()
    assert rows["a.jpg"]["weighted"].toArray().tolist() == pytest.approx(
        (expected / np.linalg.norm(expected)).tolist())
    assert rows["b.jpg"]["weighted"].toArray().tolist() == [0.0] * len(expected)

"""Feature weighting in numpy (bovw.image.weighting, bovw.pipeline.feature_rows): exact values
on hand-checkable rows, and the same bits as Spark ML's IDF, Normalizer and VectorAssembler
(tests/spark_weighting.py, the way the run weighted its rows before) on random rows."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType, StringType, StructField, StructType

from bovw.columns import TEST, TRAIN
from bovw.config import ColourSettings, Config, HistogramSettings, ToneSettings
from bovw.errors import ToneError
from bovw.image.weighting import block_values, weighted_values
from bovw.pipeline.feature_rows import FeatureRows, feature_rows, vector_rows
from bovw.pipeline.histograms import appended_blocks, check_blocks, fit_idf, tone_block
from bovw.predict.predictor import weighted_histogram
from tests.spark_weighting import spark_weighted

SCHEMA = StructType([StructField("path", StringType()), StructField("split", StringType()),
                     StructField("histogram", VectorUDT()),
                     StructField("tone", ArrayType(FloatType())),
                     StructField("colour", ArrayType(FloatType()))])


def _batch(frame) -> pa.RecordBatch:
    """`frame`'s rows as one Arrow batch, ordered by path, as a Python pass receives them."""
    table = frame.orderBy("path").toArrow()
    return table.combine_chunks().to_batches()[0]


# ------------------------------------------------------------------ hand-checkable rows

def test_weighted_values_is_idf_then_power_then_l2_row_by_row():
    # Row 0: 9 and 16 at columns 0 and 2; row 1: empty; row 2: 4 at column 1.
    values, indices, offsets = np.array([9.0, 16.0, 4.0]), np.array([0, 2, 1]), [0, 2, 2, 3]
    assert weighted_values(np.array([3.0, 4.0, 2.0]), indices, offsets, None).tolist() == [
        0.6, 0.8, 1.0]
    # power 0.5: 3 and 4 (norm 5), and 2 (norm 2).
    assert weighted_values(values, indices, offsets, None, power=0.5).tolist() == [0.6, 0.8, 1.0]
    # idf [4, 0.25, 1]: 36 and 16 (power 0.5: 6 and 4), 1 (power 0.5: 1); no L2.
    idf = np.array([4.0, 0.25, 1.0])
    assert weighted_values(values, indices, offsets, idf, power=0.5, l2=False).tolist() == [
        6.0, 4.0, 1.0]
    assert values.tolist() == [9.0, 16.0, 4.0]  # the input is left as it is


def test_weighted_values_leaves_a_zero_row_zero_and_handles_no_rows():
    assert weighted_values(np.array([0.0, 0.0]), np.array([0, 1]), [0, 2], None).tolist() == [
        0.0, 0.0]
    assert weighted_values(np.zeros(0), np.zeros(0, int), [0, 0, 0], None).tolist() == []


def test_block_values_is_weight_times_the_square_root_in_float64():
    assert block_values(np.array([0.25, 0.0, 0.75], np.float32), 0.5).tolist() == [
        0.25, 0.0, 0.5 * math.sqrt(float(np.float32(0.75)))]


def test_the_predictor_weights_with_the_same_function():
    histogram = np.array([0.0, 9.0, 0.0, 16.0])
    assert weighted_histogram(histogram, None, l2=True, power=0.5).tolist() == [
        0.0, 0.6, 0.0, 0.8]
    assert weighted_histogram(histogram, np.array([1.0, 2.0, 3.0, 0.5]), l2=False).tolist() == [
        0.0, 18.0, 0.0, 8.0]


def test_feature_rows_weight_and_append_the_blocks(spark):
    frame = spark.createDataFrame([
        ("a", "train", Vectors.sparse(3, [0, 2], [9.0, 16.0]), [0.25, 0.75], [1.0]),
        ("b", "train", Vectors.dense([0.0, 4.0, 0.0]), [], [0.0]),
        ("c", "test", Vectors.sparse(3, [], []), [1.0, 0.0], None),
    ], SCHEMA)
    rows = FeatureRows("histogram", 3, power=0.5, l2=True,
                       blocks=(tone_block(ToneSettings(enabled=True, bins=2, weight=2.0)),))
    assert rows.columns == ("histogram", "tone") and rows.dimension == 5
    matrix = rows.csr(_batch(frame))
    assert matrix.toarray().tolist() == [
        [0.6, 0.0, 0.8, 1.0, 2.0 * math.sqrt(float(np.float32(0.75)))],
        [0.0, 1.0, 0.0, 0.0, 0.0],   # its tone block is empty: zeros
        [0.0, 0.0, 0.0, 2.0, 0.0],
    ]
    # No stored zeros, as VectorAssembler stores none.
    assert np.count_nonzero(matrix.data) == matrix.nnz == 6
    with pytest.raises(ValueError, match="a vector of 3 entries where every vector should "
                                         "have 4"):
        FeatureRows("histogram", 4).csr(_batch(frame))


def test_vector_rows_are_the_vectors_as_they_are(spark):
    frame = spark.createDataFrame([("a", "train", Vectors.sparse(3, [1], [-2.5]), [], [])],
                                  SCHEMA)
    rows = vector_rows("histogram", 3)
    assert rows.columns == ("histogram",) and rows.dimension == 3
    assert rows.csr(_batch(frame)).toarray().tolist() == [[0.0, -2.5, 0.0]]


def test_feature_rows_of_a_config_need_the_idf_they_name():
    with pytest.raises(ValueError, match="TF-IDF is enabled but no IDF model was given"):
        feature_rows(Config(histograms=HistogramSettings(tfidf=True)), None, 10)


def test_check_blocks_refuses_a_missing_or_longer_block(spark):
    frame = spark.createDataFrame([("a", "train", Vectors.sparse(3, [], []), [0.5, 0.5], [])],
                                  SCHEMA)
    check_blocks(frame, [tone_block(ToneSettings(enabled=True, bins=2))])
    with pytest.raises(ToneError, match="the descriptors carry grey-level histograms of 2 "
                                        "bins but the tone settings make 32"):
        check_blocks(frame, [tone_block(ToneSettings(enabled=True))])
    with pytest.raises(ToneError, match="tone.enabled is true but these descriptors carry no "
                                        "grey-level histograms"):
        check_blocks(frame.drop("tone"), [tone_block(ToneSettings(enabled=True))])


# ------------------------------------------------------------ the same bits as Spark ML

def _random_histograms(spark, dense: bool):
    rng = np.random.default_rng(3)
    rows = []
    for index in range(40):
        counts = rng.integers(0, 4, 60) * (rng.random(60) < 0.4)
        counts[7] = 1  # in every image: IDF 0, a stored zero after the IDF
        values = counts * rng.random(60) if dense else counts.astype(float)
        vector = (Vectors.dense(values) if dense
                  else Vectors.sparse(60, np.flatnonzero(values), values[values != 0]))
        tone = rng.random(4).astype(np.float32).tolist() if index % 7 else []
        colour = rng.random(3).astype(np.float32).tolist()
        rows.append((f"{index:02d}", TRAIN if index % 4 else TEST, vector, tone, colour))
    return spark.createDataFrame(rows, SCHEMA)


@pytest.mark.parametrize("tfidf, power, l2, dense", [
    (True, 0.5, True, False),   # the default's weighting
    (True, 1.0, True, False),
    (False, 0.5, False, False),
    (False, 1.0, True, True),   # a VLAD or Fisher vector: dense, no IDF, its power inside
])
def test_feature_rows_are_spark_mls_weighting_bit_for_bit(spark, tfidf, power, l2, dense):
    histograms = _random_histograms(spark, dense)
    config = Config(
        histograms=HistogramSettings(tfidf=tfidf, power=power, l2=l2,
                                     encoding="vlad" if dense else "words"),
        tone=ToneSettings(enabled=True, bins=4, weight=0.5),
        colour=ColourSettings(enabled=True, hue_bins=3, saturation_bins=1, value_bins=1,
                              weight=1.5))
    idf = fit_idf(histograms) if tfidf else None
    blocks = appended_blocks(config.tone, config.colour)
    spark_rows = spark_weighted(histograms, config.histograms, idf, blocks).orderBy(
        "path").collect()
    rows = feature_rows(config, idf, 60)
    matrix = rows.csr(_batch(histograms.select("path", *rows.columns)))
    assert matrix.shape == (40, 67)
    for index, row in enumerate(spark_rows):
        expected = row["weighted"].toArray()
        assert np.array_equal(matrix[index].toarray().ravel(), expected), row["path"]
    assert not np.array_equal(matrix[0].toarray().ravel(),
                              np.round(matrix[0].toarray().ravel(), 3))  # not trivial values


def test_the_reduction_stage_names_a_missing_or_other_length_tone_block(spark, tmp_path):
    from bovw.pipeline.layout import RunLayout
    from bovw.pipeline.run import _reduction_stage

    config = Config(tone=ToneSettings(enabled=True))  # 32 bins
    histograms = _random_histograms(spark, dense=False).withColumn("label", F.lit("x")) \
        .withColumn("n_keypoints", F.lit(1))
    layout = RunLayout(str(tmp_path / "run"))
    with pytest.raises(ToneError, match="the descriptors carry grey-level histograms of 4 bins "
                                        "but the tone settings make 32"):
        _reduction_stage(spark, config, histograms, 60, layout)
    with pytest.raises(ToneError, match="tone.enabled is true but these descriptors carry no "
                                        "grey-level histograms"):
        _reduction_stage(spark, config, histograms.drop("tone"), 60, layout)
    assert not (tmp_path / "run" / "projections").exists()


def test_a_nan_norm_makes_its_row_nan_as_normalizer_does():
    # Spark divides unless the norm is 0: NaN / NaN and 1 / NaN are both NaN.
    weighted = weighted_values(np.array([np.nan, 1.0, 3.0]), np.array([0, 1, 0]), [0, 2, 3],
                               None)
    assert np.isnan(weighted[:2]).all() and weighted[2] == 1.0

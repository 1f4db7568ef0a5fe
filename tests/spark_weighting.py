"""Spark ML's own weighting of word histograms, the reference the reduction stage's Python
passes (bovw.pipeline.feature_rows) are held to bit for bit in tests/test_weighting.py:
IDFModel, the power in an Arrow pass, Normalizer, then VectorAssembler joining weight *
sqrt(block) of each tone or colour block. Until 2026-12-04 the run weighted its rows this
way; `feature_matrix` reads the rows a FeatureRows makes of a frame."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
from pyspark.ml.feature import IDFModel, Normalizer, VectorAssembler
from pyspark.ml.functions import array_to_vector
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from bovw.config import HistogramSettings
from bovw.pipeline.feature_rows import FeatureRows
from bovw.pipeline.histograms import AppendedBlock


def feature_matrix(frame: DataFrame, rows: FeatureRows) -> dict[str, list[float]]:
    """path -> the feature row `rows` makes of that row of `frame`, as a list."""
    table = frame.select("path", *rows.columns).orderBy("path").toArrow().combine_chunks()
    matrix = rows.csr(table.to_batches()[0]).toarray()
    return dict(zip(table.column("path").to_pylist(), matrix.tolist(), strict=True))


def spark_weighted(histograms: DataFrame, settings: HistogramSettings, idf: IDFModel | None,
                   blocks: Sequence[AppendedBlock]) -> DataFrame:
    """`histograms` with `weighted`: histogram * IDF (settings.tfidf), to settings.power (a
    word histogram only), L2-normalised (settings.l2), then each block's weight * sqrt(block),
    zeros for a row whose block has another length."""
    weighted = (idf.setOutputCol("weighted").transform(histograms) if settings.tfidf
                else histograms.withColumn("weighted", F.col("histogram"))).drop("histogram")
    if settings.power != 1.0 and settings.encoding == "words":
        weighted = weighted.mapInArrow(_powered(settings.power), weighted.schema)
    if settings.l2:
        weighted = Normalizer(inputCol="weighted", outputCol="_l2", p=2.0).transform(weighted)
        weighted = weighted.drop("weighted").withColumnRenamed("_l2", "weighted")
    if not blocks:
        return weighted
    parts = [array_to_vector(F.transform(
        F.when(F.size(block.column) == block.dimension, F.col(block.column)).otherwise(
            F.array_repeat(F.lit(0.0).cast("float"), block.dimension)),
        _weighted_sqrt(block.weight)))
        .alias(f"_{block.column}", metadata={"ml_attr": {"num_attrs": block.dimension}})
        for block in blocks]
    assembler = VectorAssembler(inputCols=["weighted", *[f"_{b.column}" for b in blocks]],
                                outputCol="_joined")
    joined = assembler.transform(weighted.select("*", *parts))
    return joined.drop("weighted").withColumnRenamed("_joined", "weighted")


def _weighted_sqrt(weight: float):
    # One argument: F.transform passes the element's index too to a function of two (a
    # default argument counts).
    return lambda value: F.sqrt(value.cast("double")) * F.lit(weight)


def _powered(power: float):
    def raise_to(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            index = batch.schema.get_field_index("weighted")
            vectors = batch.column(index)
            values = vectors.field("values")
            offsets = values.offsets.to_numpy()
            powered = pa.ListArray.from_arrays(
                pa.array(offsets - offsets[0], pa.int32()),
                pa.array(np.power(values.flatten().to_numpy(zero_copy_only=False), power)),
                type=vectors.type.field("values").type, mask=values.is_null())
            yield batch.set_column(index, "weighted", pa.StructArray.from_arrays(
                [vectors.field("type"), vectors.field("size"), vectors.field("indices"),
                 powered], fields=list(vectors.type), mask=vectors.is_null()))
    return raise_to

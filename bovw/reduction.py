"""Reduction stage: Spark ML PCA fitted on the Training rows."""

from __future__ import annotations

from pyspark.ml.feature import PCA, PCAModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from bovw.ingest import TRAIN


def fit_pca(weighted: DataFrame, components: int, input_dimension: int) -> PCAModel:
    """PCA of the `weighted` column on Training rows, with min(components, dimension) axes."""
    pca = PCA(k=min(components, input_dimension), inputCol="weighted", outputCol="pca_features")
    return pca.fit(weighted.filter(F.col("split") == TRAIN))


def explained_variance(model: PCAModel) -> list[float]:
    """Fraction of the Training variance each principal component explains."""
    return [round(float(value), 6) for value in model.explainedVariance.toArray()]

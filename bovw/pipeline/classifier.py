"""Classifier stage: Spark ML multinomial logistic regression on the PCA features, fitted
on the Training rows, checked, saved and evaluated on the Test rows (classify_and_evaluate)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from pyspark.ml.classification import LogisticRegression, LogisticRegressionModel
from pyspark.ml.feature import IndexToString, StringIndexer, StringIndexerModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bovw.columns import (
    LABEL,
    LABEL_INDEX,
    PATH,
    PCA_FEATURES,
    PREDICTION,
    PROBABILITY,
    SPLIT,
    TEST,
    TRAIN,
)
from bovw.config import ClassifierSettings, Config
from bovw.errors import TrainingError
from bovw.pipeline.ingest import image_name
from bovw.pipeline.layout import RunLayout
from bovw.pipeline.metrics import FitCheck, classification_metrics
from bovw.spark import storage

__all__ = ["check_fit", "classify_and_evaluate", "fit_classifier", "fit_labels", "predict",
           "split_outcomes"]

# The rows' sort key (bovw.pipeline.ingest.image_name), dropped once sorted.
_NAME = "_image_name"


def fit_labels(features: DataFrame) -> StringIndexerModel:
    """Class name -> index, fitted on Training labels in alphabetical order (deterministic).

    Only Training rows are ever indexed; a Test label unseen in Training simply never
    matches a prediction, so such images count as errors rather than disappearing.
    """
    indexer = StringIndexer(
        inputCol=LABEL, outputCol=LABEL_INDEX, stringOrderType="alphabetAsc",
    )
    return indexer.fit(features.filter(F.col(SPLIT) == TRAIN))


def fit_classifier(features: DataFrame, labels: StringIndexerModel,
                   settings: ClassifierSettings) -> LogisticRegressionModel:
    """Multinomial logistic regression on the Training rows: `pca_features` -> label index."""
    classifier = LogisticRegression(
        featuresCol=PCA_FEATURES, labelCol=LABEL_INDEX, family="multinomial",
        regParam=settings.reg_param, elasticNetParam=settings.elastic_net,
        maxIter=settings.max_iter, tol=settings.tol, standardization=settings.standardize,
    )
    return classifier.fit(labels.transform(features.filter(F.col(SPLIT) == TRAIN)))


def split_outcomes(predictions: DataFrame) -> dict[str, list[tuple[str, str, int]]]:
    """The (true label, predicted label, count) triples of each split of `predictions` (rows
    with `split`, `label` and `prediction`), in one Spark job: at most classes^2 rows a
    split reach the driver."""
    outcomes: dict[str, list[tuple[str, str, int]]] = {TRAIN: [], TEST: []}
    for row in predictions.groupBy(SPLIT, LABEL, PREDICTION).count().collect():
        outcomes.setdefault(row[SPLIT], []).append((row[LABEL], row[PREDICTION], row["count"]))
    return outcomes


def check_fit(classifier: LogisticRegressionModel, settings: ClassifierSettings,
              training_outcomes: Iterable[tuple[str, str, int]]) -> FitCheck:
    """The classifier's check of its own fit: the optimiser's loss history and how it
    classifies the Training rows (their (true, predicted, count) triples, split_outcomes).

    Raises TrainingError, naming the cause and the fix, for a model that did not train;
    returns the FitCheck (its numbers go to metrics.json) otherwise.
    """
    summary = classifier.summary
    check = FitCheck.from_outcomes(summary.objectiveHistory, summary.totalIterations,
                                   settings.max_iter, training_outcomes)
    problem = check.problem()
    if problem:
        raise TrainingError(problem)
    return check


def predict(features: DataFrame, labels: StringIndexerModel,
            classifier: LogisticRegressionModel) -> DataFrame:
    """Add `prediction` (the predicted class name) and `probability` to every row."""
    scored = classifier.transform(features)
    to_name = IndexToString(inputCol=PREDICTION, outputCol="predicted_label",
                            labels=labels.labels)
    return (
        to_name.transform(scored)
        .drop(PREDICTION, "rawPrediction")
        .withColumnRenamed("predicted_label", PREDICTION)
    )


def classify_and_evaluate(spark: SparkSession, config: Config, projected: DataFrame, rows: int,
                          layout: RunLayout, kept: tuple[str, ...]) -> dict[str, Any]:
    """Fit labels and the classifier on the Training rows of `projected` (pca_features,
    about `rows` rows in all), save both models, write the features Parquet (`kept`
    columns, pca_features, prediction, probability) and metrics.json into `layout`;
    returns the metrics."""
    # Materialised with its lineage cut: every LBFGS iteration is a Spark job, and each
    # job would otherwise ship the whole plan behind these rows (the projection among
    # them) to every task. A local checkpoint, rather than a cache, is what
    # drops the plan; executors holding its blocks are not released by dynamic allocation.
    # Rows are laid out by split and image name (class folder/file name: Fruits-360 uses
    # the same names in Training and Test), so every partition holds the same rows in the
    # same order whatever the input's split and wherever the dataset lies (with 2+
    # partitions, the order in which their sums are merged can still move the last bits).
    # The name is a column of its own: a sort key given as an expression is computed
    # again in every comparison of the sort.
    partitions = max(1, math.ceil(rows / config.classifier.rows_per_partition))
    projected = (projected.select(*kept, PCA_FEATURES, image_name(F.col(PATH)).alias(_NAME))
                 .repartition(partitions, _NAME, SPLIT)
                 .sortWithinPartitions(_NAME, SPLIT, PATH)
                 .drop(_NAME)
                 .localCheckpoint())
    labels = fit_labels(projected)
    labels.write().overwrite().save(layout.model("labels"))
    classifier = fit_classifier(projected, labels, config.classifier)
    predictions = predict(projected, labels, classifier)
    # Before anything is written as a result: a model that did not train is an error. The
    # Test rows' outcomes come with the same job: the predictions are those written below.
    outcomes = split_outcomes(predictions)
    fit = check_fit(classifier, config.classifier, outcomes[TRAIN])
    classifier.write().overwrite().save(layout.model("classifier"))
    storage.write_parquet(spark, predictions.select(*kept, PCA_FEATURES, PREDICTION,
                                                    PROBABILITY), layout.features)
    metrics = classification_metrics(list(labels.labels), outcomes[TEST])
    metrics["classifier_iterations"] = fit.iterations
    metrics["classifier"] = fit.to_dict()
    storage.write_text(spark, layout.metrics, json.dumps(metrics, indent=2))
    return metrics

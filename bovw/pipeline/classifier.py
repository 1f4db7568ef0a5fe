"""Classifier stage: Spark ML multinomial logistic regression on the PCA features."""

from __future__ import annotations

from pyspark.ml.classification import LogisticRegression, LogisticRegressionModel
from pyspark.ml.feature import IndexToString, StringIndexer, StringIndexerModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from bovw.columns import LABEL, LABEL_INDEX, PCA_FEATURES, PREDICTION, SPLIT, TEST, TRAIN
from bovw.config import ClassifierSettings
from bovw.errors import TrainingError
from bovw.pipeline.metrics import FitCheck, classification_metrics

__all__ = ["check_fit", "evaluate", "fit_classifier", "fit_labels", "predict"]


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


def check_fit(features: DataFrame, labels: StringIndexerModel,
              classifier: LogisticRegressionModel, settings: ClassifierSettings) -> FitCheck:
    """The classifier's check of its own fit: the optimiser's loss history and how it
    classifies the Training rows of `features` (one Spark job, classes^2 rows collected).

    Raises TrainingError, naming the cause and the fix, for a model that did not train;
    returns the FitCheck (its numbers go to metrics.json) otherwise.
    """
    outcomes = (
        predict(features.filter(F.col(SPLIT) == TRAIN), labels, classifier)
        .groupBy(LABEL, PREDICTION).count().collect()
    )
    summary = classifier.summary
    check = FitCheck.from_outcomes(
        summary.objectiveHistory, summary.totalIterations, settings.max_iter,
        ((row[LABEL], row[PREDICTION], row["count"]) for row in outcomes))
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


def evaluate(predictions: DataFrame, classes: list[str]) -> dict:
    """Metrics on the Test rows, computed from a (label, prediction, count) table.

    The table has at most classes^2 rows, the only thing brought to the driver.
    """
    outcomes = (
        predictions.filter(F.col(SPLIT) == TEST)
        .groupBy(LABEL, PREDICTION).count().collect()
    )
    return classification_metrics(
        classes, ((row[LABEL], row[PREDICTION], row["count"]) for row in outcomes)
    )

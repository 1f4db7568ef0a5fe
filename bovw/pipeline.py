"""The whole chain, stage by stage, each persisted with a completion marker.

ingest + descriptors -> vocabulary -> histograms -> reduction (IDF, PCA) -> classifier.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyspark.ml.clustering import KMeansModel
from pyspark.ml.feature import IDFModel, PCAModel
from pyspark.sql import DataFrame, SparkSession

from bovw import storage
from bovw.colour import append_blocks
from bovw.config import Config
from bovw.descriptors import describe_images, rejects, statistics
from bovw.errors import InputError, VocabularyError
from bovw.histograms import fit_idf, histogram_length, weight, word_histograms
from bovw.ingest import labelled_images
from bovw.model import check_fit, evaluate, fit_classifier, fit_labels, predict
from bovw.provenance import DescriptorProvenance, check_reuse, write_record
from bovw.reduction import explained_variance, fit_pca
from bovw.runs import RunLayout, finished_stage, mark_finished, prepare_output
from bovw.tone import appended_blocks, appended_dimension
from bovw.vocabulary import centers, fit_vocabulary, sample_descriptors

# The vocabulary record's key for soft assignment's sigma^2 (bovw.words.soft_words).
WORD_VARIANCE = "mean_squared_distance"
STAGES = ("descriptors", "vocabulary", "histograms", "reduction", "classifier")


@dataclass
class RunResult:
    """What a run produced: where, how long each stage took, counts and metrics."""

    output: str
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    keypoints: dict[str, Any] = field(default_factory=dict)
    vocabulary: dict[str, Any] = field(default_factory=dict)
    reduction: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    resumed_stages: list[str] = field(default_factory=list)

    def summary(self, config: Config) -> dict[str, Any]:
        return {
            "output": self.output,
            "counts": self.counts,
            "keypoints": self.keypoints,
            "vocabulary": self.vocabulary,
            "reduction": self.reduction,
            "metrics": {key: self.metrics[key] for key in
                        ("test_images", "accuracy", "macro_f1", "weighted_precision",
                         "weighted_recall", "weighted_f1", "classifier_iterations")
                        if key in self.metrics},
            "timings_seconds": self.timings,
            "resumed_stages": self.resumed_stages,
            "config": config.to_dict(),
        }


class _Stages:
    """Runs each stage once: skipped (and its record reused) when its marker exists."""

    def __init__(self, spark: SparkSession, layout: RunLayout, result: RunResult,
                 log: Callable[[str], None]):
        self.spark, self.layout, self.result, self.log = spark, layout, result, log

    def run(self, stage: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        record = finished_stage(self.spark, self.layout, stage)
        if record is not None:
            self.result.resumed_stages.append(stage)
            self.log(f"[bovw] {stage}: already finished, reusing its outputs")
        else:
            self.log(f"[bovw] {stage}: running")
            started = time.perf_counter()
            record = work()
            record.setdefault("timings", {})[stage] = round(time.perf_counter() - started, 3)
            mark_finished(self.spark, self.layout, stage, record)
        self.result.timings.update(record.get("timings", {}))
        return record


def run_pipeline(spark: SparkSession, config: Config, input_path: str, output_path: str, *,
                 overwrite: bool = False, descriptors_from: str | None = None,
                 log: Callable[[str], None] = print) -> RunResult:
    """Run every stage on the images under `input_path`, writing to `output_path`.

    `descriptors_from` reuses the descriptors Parquet of an earlier run instead of
    extracting them again; its record (bovw.provenance) must match this run's input and
    descriptor settings, which is checked before anything is written. Returns a RunResult;
    raises InputError, OutputError (ReuseError), VocabularyError on unusable input or output.
    """
    layout = RunLayout(output_path.rstrip("/"))
    if descriptors_from:
        check_reuse(spark, descriptors_from, config, input_path, output=layout.root,
                    overwrite=overwrite)
    spec = {"input": input_path, "descriptors_from": descriptors_from, "config": config.to_dict()}
    # Written into the output, or beside it and swapped in once finished (--overwrite).
    with prepare_output(spark, layout, spec, overwrite, log) as output:
        result = _run_stages(spark, config, input_path, RunLayout(output.work),
                             descriptors_from, log)
    result.output = layout.root
    return result


def _run_stages(spark: SparkSession, config: Config, input_path: str, layout: RunLayout,
                descriptors_from: str | None, log: Callable[[str], None]) -> RunResult:
    result = RunResult(output=layout.root)
    stages = _Stages(spark, layout, result, log)

    record = stages.run("descriptors", lambda: _descriptors_stage(
        spark, config, input_path, layout, descriptors_from))
    result.counts, result.keypoints = record["counts"], record["keypoints"]
    descriptors = spark.read.parquet(record["descriptors_path"])

    record = stages.run("vocabulary", lambda: _vocabulary_stage(config, descriptors,
                                                                result.keypoints, layout))
    result.vocabulary = record["vocabulary"]
    vocabulary = centers(KMeansModel.load(layout.model("vocabulary")))

    stages.run("histograms", lambda: _histograms_stage(
        spark, config, descriptors, vocabulary, word_variance(result.vocabulary), layout))
    histograms = spark.read.parquet(layout.histograms)

    dimension = histogram_length(len(vocabulary), config.histograms.pyramid_levels)
    record = stages.run("reduction", lambda: _reduction_stage(config, histograms, dimension,
                                                              layout))
    result.reduction = record["reduction"]

    record = stages.run("classifier", lambda: _classifier_stage(
        spark, config, histograms, result.counts["accepted"], layout))
    result.metrics = json.loads(storage.read_text(spark, layout.metrics))

    storage.write_text(spark, layout.summary, json.dumps(result.summary(config), indent=2))
    return result


def _descriptors_stage(spark: SparkSession, config: Config, input_path: str, layout: RunLayout,
                       descriptors_from: str | None) -> dict[str, Any]:
    timings: dict[str, float] = {}
    if descriptors_from:
        source = descriptors_from
    else:
        started = time.perf_counter()
        files = labelled_images(spark, input_path, config.ingest, config.seed)
        timings["ingest"] = round(time.perf_counter() - started, 3)
        described = describe_images(files, config.orb, config.ingest.max_file_bytes,
                                    config.colour, config.vocabulary.sample_per_image,
                                    config.seed, config.tone)
        storage.write_parquet(spark, described, layout.descriptors)
        # After the Parquet files, before the stage marker: whatever reuses these
        # descriptors compares this record with its own settings first.
        write_record(spark, layout.descriptors, DescriptorProvenance.of(config, input_path))
        source = layout.descriptors
    descriptors = spark.read.parquet(source)
    counts, keypoints = statistics(descriptors)
    # Without rejects the (empty) table is written without scanning the descriptors again.
    storage.write_parquet(spark, rejects(descriptors if counts["rejected"] else
                                         descriptors.limit(0)), layout.rejects)
    if counts["accepted"] == 0:
        raise InputError(f"no readable image under {input_path}; see {layout.rejects}")
    return {"descriptors_path": source, "counts": counts, "keypoints": keypoints,
            "timings": timings}


def _vocabulary_stage(config: Config, descriptors: DataFrame, keypoints: dict[str, Any],
                      layout: RunLayout) -> dict[str, Any]:
    totals = (keypoints["training"], keypoints["set_aside"])
    sample = sample_descriptors(descriptors, config.vocabulary, config.seed, totals)
    model, sample_size = fit_vocabulary(sample, config.vocabulary, config.seed)
    model.write().overwrite().save(layout.model("vocabulary"))
    # Only what KMeans already knows: summary.clusterSizes would cost one more Spark job.
    summary = model.summary
    return {"vocabulary": {
        "k": config.vocabulary.k,
        "sample_descriptors": sample_size,
        "iterations": int(summary.numIter),
        "training_cost": round(float(summary.trainingCost), 3),
        # Soft assignment's sigma^2 (bovw.words.soft_words), kept unrounded: the histograms
        # stage and the exported model read this very number.
        WORD_VARIANCE: float(summary.trainingCost) / sample_size,
    }}


def word_variance(vocabulary: dict[str, Any]) -> float | None:
    """The mean squared distance of the vocabulary sample to its nearest word, as the
    vocabulary stage recorded it (None in the record of a bovw before soft assignment)."""
    value = vocabulary.get(WORD_VARIANCE)
    return None if value is None else float(value)


def _histograms_stage(spark: SparkSession, config: Config, descriptors: DataFrame, vocabulary,
                      variance: float | None, layout: RunLayout) -> dict[str, Any]:
    settings = config.histograms
    if settings.neighbours > 1 and variance is None:
        raise VocabularyError("histograms.assignment = \"soft\" needs the vocabulary's mean "
                              "squared distance, which this run's vocabulary record lacks: "
                              "run again into a new --output")
    histograms = word_histograms(descriptors, vocabulary, settings.pyramid_levels,
                                 settings.neighbours, variance or 0.0)
    storage.write_parquet(spark, histograms, layout.histograms)
    return {}


def _reduction_stage(config: Config, histograms: DataFrame, dimension: int, layout: RunLayout
                     ) -> dict[str, Any]:
    idf = fit_idf(histograms) if config.histograms.tfidf else None
    if idf is not None:
        idf.write().overwrite().save(layout.model("idf"))
    weighted = feature_vectors(histograms, config, idf)
    pca = fit_pca(weighted, config.pca.components,
                  dimension + appended_dimension(config.tone, config.colour), config.seed)
    pca.write().overwrite().save(layout.model("pca"))
    variance = explained_variance(pca)
    # Fewer than asked when the Training features vary in fewer directions (reduction.py).
    return {"reduction": {"components": len(variance),
                          "components_requested": config.pca.components,
                          "explained_variance_total": round(sum(variance), 6),
                          "explained_variance": variance}}


def feature_vectors(histograms: DataFrame, config: Config, idf: IDFModel | None) -> DataFrame:
    """`weighted`: each image's weighted word histogram, then its tone and colour blocks
    when enabled: the vector the PCA sees."""
    return append_blocks(weight(histograms, config.histograms, idf),
                         appended_blocks(config.tone, config.colour))


def _classifier_stage(spark: SparkSession, config: Config, histograms: DataFrame, rows: int,
                      layout: RunLayout) -> dict[str, Any]:
    idf = IDFModel.load(layout.model("idf")) if config.histograms.tfidf else None
    pca = PCAModel.load(layout.model("pca"))
    weighted = feature_vectors(histograms, config, idf)
    classify_and_evaluate(spark, config, pca.transform(weighted), rows, layout,
                          ("path", "label", "split", "n_keypoints", "histogram"))
    return {}


def classify_and_evaluate(spark: SparkSession, config: Config, projected: DataFrame, rows: int,
                          layout: RunLayout, kept: tuple[str, ...]) -> dict[str, Any]:
    """Fit labels and the classifier on the Training rows of `projected` (pca_features,
    about `rows` rows in all), save both models, write the features Parquet (`kept`
    columns, pca_features, prediction, probability) and metrics.json into `layout`;
    returns the metrics."""
    # Materialised with its lineage cut: every LBFGS iteration is a Spark job, and each
    # job would otherwise ship the whole plan behind these rows (the PCA matrix alone is
    # 4 MB at 5,000 bins) to every task. A local checkpoint, rather than a cache, is what
    # drops the plan; executors holding its blocks are not released by dynamic allocation.
    # Rows are laid out by path, so every partition holds the same rows in the same order
    # whatever the input's split (with 2+ partitions, the order in which their sums are
    # merged can still move the last bits).
    partitions = max(1, math.ceil(rows / config.classifier.rows_per_partition))
    projected = (projected.select(*kept, "pca_features")
                 .repartition(partitions, "path").sortWithinPartitions("path")
                 .localCheckpoint())
    labels = fit_labels(projected)
    labels.write().overwrite().save(layout.model("labels"))
    classifier = fit_classifier(projected, labels, config.classifier)
    # Before anything is written as a result: a model that did not train is an error.
    fit = check_fit(projected, labels, classifier, config.classifier)
    classifier.write().overwrite().save(layout.model("classifier"))
    predictions = predict(projected, labels, classifier).select(
        *kept, "pca_features", "prediction", "probability")
    storage.write_parquet(spark, predictions, layout.features)
    metrics = evaluate(spark.read.parquet(layout.features), list(labels.labels))
    metrics["classifier_iterations"] = fit.iterations
    metrics["classifier"] = fit.to_dict()
    storage.write_text(spark, layout.metrics, json.dumps(metrics, indent=2))
    return metrics

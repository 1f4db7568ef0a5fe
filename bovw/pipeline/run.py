"""The whole chain, stage by stage, each persisted with a completion marker.

ingest + descriptors -> vocabulary -> histograms -> reduction (IDF, PCA) -> classifier.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyspark.ml.clustering import KMeansModel
from pyspark.ml.feature import IDFModel, PCAModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bovw.columns import HISTOGRAM, LABEL, N_KEYPOINTS, PATH, SPLIT, TEST, TRAIN
from bovw.config import Config
from bovw.errors import InputError, VocabularyError
from bovw.image.encodings import DenseEncoding, dense_encoding, encoding_length
from bovw.locations import is_local_path
from bovw.pipeline.classifier import classify_and_evaluate
from bovw.pipeline.descriptors import (
    PARQUET_COMPRESSION,
    describe_images,
    other_size_images,
    rejects,
    statistics,
)
from bovw.pipeline.feature_rows import feature_rows
from bovw.pipeline.histograms import appended_blocks, check_blocks, fit_idf, word_histograms
from bovw.pipeline.ingest import listed_images, split_folder
from bovw.pipeline.inputs import class_problem, split_problem
from bovw.pipeline.layout import RunLayout, finished_stage, mark_finished, prepare_output
from bovw.pipeline.metrics import test_only_warning
from bovw.pipeline.mixture import MIXTURE, fit_mixture, read_mixture, write_mixture
from bovw.pipeline.provenance import (
    DescriptorProvenance,
    check_reuse,
    refuse_changed_input,
    write_record,
)
from bovw.pipeline.reduction import (
    explained_variance,
    explained_variance_total,
    pca_model,
    principal_axes,
    projection,
)
from bovw.pipeline.vocabulary import centers, fit_kmeans, materialise, sample_descriptors
from bovw.spark import storage
from bovw.spark.progress import StageProgress
from bovw.spark.workers import worker_imports_named
from bovw.summary import (
    HeadlineMetrics,
    ImageCounts,
    KeypointStats,
    Reduction,
    RunSummary,
    VocabularyFit,
    from_record,
)

__all__ = ["RunResult", "project_and_classify", "run_pipeline"]

# What the projections and the features Parquet say of each image besides its vectors; the
# raw histogram stays in histograms/ alone: carried along, it was shuffled, checkpointed
# and written a second time with every image's projection.
_IMAGE_KEYS = (PATH, LABEL, SPLIT, N_KEYPOINTS)


@dataclass(frozen=True)
class RunResult:
    """What a run produced: its summary (summary.json: where, counts, seconds per stage,
    headline metrics) and its metrics.json (per class, the confusion matrix too)."""

    summary: RunSummary
    metrics: dict[str, Any]

    @property
    def output(self) -> str:
        """The run folder."""
        return self.summary.output


@contextmanager
def _shown(stage: str, log: Callable[[str], None], progress: StageProgress | None
           ) -> Iterator[None]:
    """Run the block as `stage` on the console: its progress, else `log`'s "running" line."""
    if progress is None:
        log(f"[bovw] {stage}: running")
        yield
    else:
        with progress.stage(stage):
            yield


class _Stages:
    """Runs each stage once: skipped (and its record reused) when its marker exists.
    Collects every stage's seconds and the stages an earlier attempt had finished. With a
    StageProgress, a running stage's line and progress are its to show."""

    def __init__(self, spark: SparkSession, layout: RunLayout, log: Callable[[str], None],
                 progress: StageProgress | None):
        self.spark, self.layout, self.log = spark, layout, log
        self.progress = progress
        self.timings: dict[str, float] = {}
        self.resumed: list[str] = []

    def run(self, stage: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        record = finished_stage(self.spark, self.layout, stage)
        if record is not None:
            self.resumed.append(stage)
            self.log(f"[bovw] {stage}: already finished, reusing its outputs")
        else:
            started = time.perf_counter()
            with _shown(stage, self.log, self.progress):
                record = work()
            record.setdefault("timings", {})[stage] = round(time.perf_counter() - started, 3)
            mark_finished(self.spark, self.layout, stage, record)
        # In the order they ran: a stage's own parts (the descriptors stage's ingest), then
        # the stage; a resumed record's JSON has its keys sorted.
        timings = record.get("timings", {})
        self.timings.update({part: seconds for part, seconds in timings.items() if part != stage})
        if stage in timings:
            self.timings[stage] = timings[stage]
        return record


def run_pipeline(spark: SparkSession, config: Config, input_path: str, output_path: str, *,
                 overwrite: bool = False, descriptors_from: str | None = None,
                 log: Callable[[str], None] = print, progress: StageProgress | None = None,
                 report: Callable[[str], object] | None = None) -> RunResult:
    """Run every stage on the images under `input_path`, writing to `output_path`.

    `descriptors_from` reuses the descriptors Parquet of an earlier run instead of
    extracting them again; its record (bovw.pipeline.provenance) must match this run's input and
    descriptor settings, which is checked before anything is written. `progress` shows
    each running stage (bovw.spark.progress) instead of `log`'s "running" line. `report`
    draws the run's report into the folder the run was written into (the output, or its
    staging sibling; its one argument) once every stage is done, while the output's lock is
    still held and before a staged run replaces the old one: the report is published with
    the run, and no other command can take the folder in between. Returns a RunResult;
    raises InputError, OutputError (ReuseError), VocabularyError on unusable input or output.
    """
    layout = RunLayout(output_path.rstrip("/") or "/")
    if descriptors_from:
        check_reuse(spark, descriptors_from, config, input_path, output=layout.root,
                    overwrite=overwrite)
    spec = {"input": input_path, "descriptors_from": descriptors_from, "config": config.to_dict()}
    # Written into the output, or beside it and swapped in once finished (--overwrite).
    with prepare_output(spark, layout, spec, overwrite, log,
                        draws_report=report is not None) as output, worker_imports_named():
        result = _run_stages(spark, config, input_path, RunLayout(output.work),
                             descriptors_from, log, progress)
        if report is not None:
            with _shown("report", log, progress):
                report(output.work)
    return dataclasses.replace(
        result, summary=dataclasses.replace(result.summary, output=layout.root))


def _run_stages(spark: SparkSession, config: Config, input_path: str, layout: RunLayout,
                descriptors_from: str | None, log: Callable[[str], None],
                progress: StageProgress | None) -> RunResult:
    stages = _Stages(spark, layout, log, progress)

    record = stages.run("descriptors", lambda: _descriptors_stage(
        spark, config, input_path, layout, descriptors_from, log))
    if "descriptors" in stages.resumed and descriptors_from is None:
        refuse_changed_input(spark, layout.descriptors, input_path, config)
    counts = from_record(ImageCounts, record["counts"])
    keypoints = from_record(KeypointStats, record["keypoints"])
    test_only = counts.test_only_classes
    if test_only:
        log(f"[bovw] {test_only_warning(test_only)}")
    descriptors = storage.read_parquet(spark, record["descriptors_path"])
    # Models fitted by this attempt are used as they are; a resumed run reads them back.
    fitted: dict[str, Any] = {}

    record = stages.run("vocabulary", lambda: _vocabulary_stage(config, descriptors,
                                                                keypoints, layout, fitted))
    vocabulary_fit = from_record(VocabularyFit, record["vocabulary"])
    mixture = None
    if config.histograms.encoding == "fisher":
        # Its means take the words' place: what the Fisher vectors are made of.
        mixture = fitted.get("mixture") or read_mixture(spark, layout.model(MIXTURE))
        vocabulary = mixture.means
    else:
        vocabulary = centers(fitted["vocabulary"] if "vocabulary" in fitted
                             else storage.load_model(KMeansModel, layout.model("vocabulary")))
    dense = dense_encoding(config.histograms, None if mixture is None else mixture.weights)

    stages.run("histograms", lambda: _histograms_stage(
        spark, config, descriptors, vocabulary, vocabulary_fit.mean_squared_distance, dense,
        layout))
    histograms = storage.read_parquet(spark, layout.histograms)

    dimension = encoding_length(vocabulary.shape, config.histograms)
    record = stages.run("reduction", lambda: _reduction_stage(
        spark, config, histograms, dimension, layout))
    reduction = from_record(Reduction, record["reduction"])

    stages.run("classifier", lambda: _classifier_stage(
        spark, config, histograms, dimension, record.get("projections_path"), counts.accepted,
        layout))
    metrics = json.loads(storage.read_text(spark, layout.metrics))

    summary = RunSummary(
        output=layout.root, counts=counts, reduction=reduction,
        metrics=HeadlineMetrics.of(metrics), timings=stages.timings, config=config.to_dict(),
        keypoints=keypoints, vocabulary=vocabulary_fit, resumed_stages=tuple(stages.resumed),
        descriptors_reused=descriptors_from is not None)
    storage.write_text(spark, layout.summary, summary.to_json())
    return RunResult(summary, metrics)


def _descriptors_stage(spark: SparkSession, config: Config, input_path: str, layout: RunLayout,
                       descriptors_from: str | None, log: Callable[[str], None]
                       ) -> dict[str, Any]:
    timings: dict[str, float] = {}
    if descriptors_from:
        log(f"[bovw] descriptors: reading those of {descriptors_from}, not extracting them")
        source = descriptors_from
    else:
        started = time.perf_counter()
        # The record's digest is that of the listing read: a file added meanwhile makes the
        # input differ from the record, and a resume then refuses it.
        listed = listed_images(spark, input_path, config.ingest, config.seed, log)
        timings["ingest"] = round(time.perf_counter() - started, 3)
        described = describe_images(listed.frame, config.orb, config.ingest.max_file_bytes,
                                    config.colour, config.vocabulary.sample_per_image,
                                    config.seed, config.tone,
                                    read_local=is_local_path(input_path))
        storage.write_parquet(spark, described, layout.descriptors,
                              compression=PARQUET_COMPRESSION)
        # After the Parquet files, before the stage marker: whatever reuses these
        # descriptors compares this record with its own settings first.
        write_record(spark, layout.descriptors,
                     DescriptorProvenance.of(config, input_path, listed.digest))
        source = layout.descriptors
    descriptors = storage.read_parquet(spark, source)
    # A pass of its own, not an Observation on the write above (2-3 s less at 155k
    # images): on pyspark 4.0.0 the first Observation leaves the session holding an
    # ObservationManager that cannot be serialised, and every later task whose closure
    # captures the session (a 2-class LogisticRegressionModel's summary does) then fails
    # with "Task not serializable".
    counts, keypoints, sizes, classes = statistics(descriptors)
    # Without rejects the (empty) table is written without scanning the descriptors again.
    storage.write_parquet(spark, rejects(descriptors if counts["rejected"] else
                                         descriptors.limit(0)), layout.rejects)
    if counts["accepted"] == 0:
        raise InputError(f"no readable image under {input_path}; see {layout.rejects}")
    training, test = counts["per_split"][TRAIN], counts["per_split"][TEST]
    if not (training and test):
        # Before the stage is marked finished: the same command, once the input is fixed,
        # describes the images again instead of reusing these.
        in_split_folders = descriptors.filter(
            split_folder(F.col(PATH)).isNotNull()).limit(1).count() > 0
        raise InputError(split_problem(input_path, training, test, config.ingest,
                                       in_split_folders,
                                       layout.rejects if counts["rejected"] else None))
    problem = class_problem(input_path, classes.training, classes.test, test)
    if problem:
        raise InputError(problem)
    if sizes.varied and sizes.training:
        # The run describes every image as it is; `bovw predict` frames a photo of another
        # size to the Training size first: on such Test images their answers can differ,
        # and the accuracy speaks for the images of the Training size.
        counts["other_size_test"] = other_size_images(descriptors, sizes.training, TEST)
        counts["training_size"] = list(sizes.training)
    # Recorded here, so that `bovw export` needs no descriptors: those of
    # --descriptors-from belong to another run, which may since be gone or replaced.
    size = sizes.training
    return {"descriptors_path": source, "counts": counts, "keypoints": keypoints,
            "training_size": list(size) if size else None, "timings": timings}


def _vocabulary_stage(config: Config, descriptors: DataFrame, keypoints: KeypointStats,
                      layout: RunLayout, fitted: dict[str, Any]) -> dict[str, Any]:
    totals = (keypoints.training, keypoints.set_aside)
    with sample_descriptors(descriptors, config.vocabulary, config.seed, totals) as sample:
        materialised, sample_size = materialise(sample, config.vocabulary)
    model = fit_kmeans(materialised, config.vocabulary, config.seed)
    model.write().overwrite().save(layout.model("vocabulary"))
    fitted["vocabulary"] = model
    mixture_record = {}
    if config.histograms.encoding == "fisher":
        fit = fit_mixture(materialised, centers(model), config.vocabulary.mixture_max_iter,
                          config.vocabulary.mixture_tol)
        write_mixture(materialised.sparkSession, layout.model(MIXTURE), fit.mixture)
        fitted["mixture"] = fit.mixture
        mixture_record = {"mixture_iterations": fit.iterations,
                          "mixture_log_likelihood": fit.log_likelihood}
    # KMeans.fit also counts each word's descriptors (summary.clusterSizes, for its own log:
    # a job of 0.65 s at x1 that cannot be skipped); not recorded: on fruits360-dev's sample
    # no word of k=1000 is empty, 1 of 4,000 and 9 of 10,000 are.
    summary = model.summary
    return {"vocabulary": {**mixture_record,
        "k": config.vocabulary.k,
        "sample_descriptors": sample_size,
        "iterations": int(summary.numIter),
        "training_cost": round(float(summary.trainingCost), 3),
        # Soft assignment's sigma^2 (bovw.image.words.soft_words); the histograms stage and
        # the exported model read this very number. Rounded like training_cost: KMeans sums
        # the cost in partition order, so its last bits differ between local[1], local[2]
        # and a cluster (21616.27378455355 against 21616.273784553552), and the same
        # inputs, config and seed must give the same record.
        "mean_squared_distance": round(float(summary.trainingCost) / sample_size, 6),
    }}


def _histograms_stage(spark: SparkSession, config: Config, descriptors: DataFrame, vocabulary,
                      variance: float | None, dense: DenseEncoding | None, layout: RunLayout
                      ) -> dict[str, Any]:
    settings = config.histograms
    if settings.neighbours > 1 and variance is None:
        raise VocabularyError("histograms.assignment = \"soft\" needs the vocabulary's mean "
                              "squared distance, which this run's vocabulary record lacks: "
                              "run again into a new --output")
    histograms = word_histograms(descriptors, vocabulary, settings.pyramid_levels,
                                 settings.neighbours, variance or 0.0, dense)
    storage.write_parquet(spark, histograms, layout.histograms)
    return {}


def _reduction_stage(spark: SparkSession, config: Config, histograms: DataFrame,
                     dimension: int, layout: RunLayout) -> dict[str, Any]:
    blocks = appended_blocks(config.tone, config.colour)
    # The histograms are kept as they are while the PCA passes read the Training rows and
    # the projection reads them all: each of those Python passes weights its rows itself
    # (bovw.pipeline.feature_rows). Weighting every image beforehand in Spark and keeping that
    # took 21.8 s of the stage on fruits360-dev x10, the passes 1-2 s more.
    rows = histograms.select(*_IMAGE_KEYS, HISTOGRAM, *[block.column for block in blocks
                                                        if block.column in histograms.columns]
                             ).persist()
    try:
        # On the kept rows, which it reads into memory (1.3 s on the Parquet at x1), and
        # before anything else: a missing block is named here.
        check_blocks(rows, blocks)
        idf = fit_idf(rows) if config.histograms.tfidf else None
        if idf is not None:
            idf.write().overwrite().save(layout.model("idf"))
        features = feature_rows(config, idf, dimension)
        pc, explained = principal_axes(rows, config.pca.components, features, config.seed,
                                       persisted=True)
        pca = pca_model(spark, pc, explained)
        pca.write().overwrite().save(layout.model("pca"))
        with projection(rows, pca, pc, features) as projected:
            storage.write_parquet(spark, projected, layout.projections)
    finally:
        rows.unpersist()
    variance = explained_variance(pca)
    # Fewer than asked when the Training features vary in fewer directions (reduction.py).
    return {"projections_path": layout.projections,
            "reduction": {"components": len(variance),
                          "components_requested": config.pca.components,
                          "explained_variance_total": explained_variance_total(pca),
                          "explained_variance": variance}}


def _classifier_stage(spark: SparkSession, config: Config, histograms: DataFrame,
                      dimension: int, projections: str | None, rows: int, layout: RunLayout
                      ) -> dict[str, Any]:
    if projections is not None:
        classify_and_evaluate(spark, config, storage.read_parquet(spark, projections), rows,
                              layout, _IMAGE_KEYS)
        return {}
    # A run begun by a bovw whose reduction stage wrote no projections: made here.
    idf = (storage.load_model(IDFModel, layout.model("idf")) if config.histograms.tfidf
           else None)
    pca = storage.load_model(PCAModel, layout.model("pca"))
    blocks = appended_blocks(config.tone, config.colour)
    check_blocks(histograms, blocks)
    features = feature_rows(config, idf, dimension)
    with projection(histograms.select(*_IMAGE_KEYS, *features.columns), pca,
                    features=features) as projected:
        classify_and_evaluate(spark, config, projected, rows, layout, _IMAGE_KEYS)
    return {}


def project_and_classify(spark: SparkSession, config: Config, weighted: DataFrame,
                         pca: PCAModel, rows: int, layout: RunLayout, kept: tuple[str, ...]
                         ) -> dict[str, Any]:
    """classify_and_evaluate on `weighted` projected by `pca` (bovw.reduction.projection)."""
    with projection(weighted.select(*kept, pca.getInputCol()), pca) as projected:
        return classify_and_evaluate(spark, config, projected, rows, layout, kept)

"""The `cnn` variant of a comparison: CNN features, from a Parquet file made elsewhere
(bovw.experiments.external) or the built-in extractor (bovw.experiments.cnn), through the
same PCA, classifier and metrics as the visual words (`classify_features`, the common
"feature vector -> PCA -> logistic regression -> metrics" path for any DataFrame of
(path, label, split, features))."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from pyspark.ml.feature import Normalizer
from pyspark.ml.functions import array_to_vector
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bovw.columns import (
    CONTENT,
    FEATURES,
    LABEL,
    LENGTH,
    PATH,
    REJECT_REASON,
    SPLIT,
    TEST,
    TRAIN,
    WEIGHTED,
)
from bovw.config import Config
from bovw.errors import CompareError
from bovw.experiments.external import load_external_features, match_features
from bovw.pipeline.descriptors import accepted
from bovw.pipeline.ingest import labelled_images, list_files
from bovw.pipeline.layout import RunLayout, finished_stage, mark_finished
from bovw.pipeline.metrics import test_only_warning
from bovw.pipeline.reduction import explained_variance, explained_variance_total, fit_pca
from bovw.pipeline.run import project_and_classify
from bovw.spark import storage
from bovw.spark.outputs import write_marker
from bovw.spark.progress import StageProgress
from bovw.summary import (
    SCORE_KEYS,
    HeadlineMetrics,
    ImageCounts,
    Reduction,
    RunSummary,
    from_record,
)

__all__ = ["classify_features", "run_cnn_variant"]


def classify_features(spark: SparkSession, features: DataFrame, rows: int, config: Config,
                      layout: RunLayout, *, normalise: bool) -> dict[str, Any]:
    """Fit PCA and logistic regression on the Training rows of `features`, score Test.

    `features` has (path, label, split, features: vector), `rows` rows. With `normalise`
    the vectors are L2-normalised first (as the visual-word histograms are). Writes the
    PCA, labels and classifier models, the per-image `features` Parquet (with
    pca_features and prediction) and metrics.json into `layout`; returns {"reduction",
    "metrics", "timings"}.
    """
    if normalise:
        weighted = Normalizer(inputCol=FEATURES, outputCol=WEIGHTED, p=2.0).transform(
            features)
    else:
        weighted = features.withColumn(WEIGHTED, F.col(FEATURES))
    dimension = len(weighted.select(WEIGHTED).first()[WEIGHTED])
    timings: dict[str, float] = {}
    started = time.perf_counter()
    pca = fit_pca(weighted, config.pca.components, dimension, config.seed)
    pca.write().overwrite().save(layout.model("pca"))
    variance = explained_variance(pca)
    timings["reduction"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    metrics = project_and_classify(spark, config, weighted, pca, rows, layout,
                                   (PATH, LABEL, SPLIT))
    timings["classifier"] = round(time.perf_counter() - started, 3)
    return {"reduction": {"input_dimension": dimension, "components": len(variance),
                          "explained_variance_total": explained_variance_total(pca),
                          "explained_variance": variance},
            "metrics": metrics, "timings": timings}


def _listed_images(spark: SparkSession, config: Config, input_path: str,
                   log: Callable[[str], None]) -> DataFrame:
    """(path, label, split) of every image under the input, split as the pipeline splits."""
    files = labelled_images(spark, input_path, config.ingest, config.seed, log)
    return files.filter(F.col(SPLIT).isNotNull() & (F.col(LENGTH) > 0)
                        & (F.col(LENGTH) <= config.ingest.max_file_bytes)
                        ).select(PATH, LABEL, SPLIT)


def run_cnn_variant(spark: SparkSession, config: Config, input_path: str, layout: RunLayout,
                    images_source: str | None, cnn_features: str | None,
                    log: Callable[[str], None], progress: StageProgress | None) -> None:
    """The `cnn` variant's run folder `layout`: its marker and run.json, the features
    (read from `cnn_features`, else extracted by `config.cnn.backbone` from the images
    listed in `images_source`'s descriptors or under `input_path`), then PCA, classifier,
    metrics and summary.json as for a run (classify_features). A finished features stage
    is reused. Raises CompareError when a split has no features."""
    write_marker(spark, layout.root, "run")
    storage.write_text(spark, layout.run_spec, json.dumps(
        {"input": input_path, "images": images_source, "cnn_features": cnn_features,
         "config": config.to_dict()}, indent=2, sort_keys=True))
    images = (accepted(storage.read_parquet(spark, images_source)).select(PATH, LABEL, SPLIT)
              if images_source else _listed_images(spark, config, input_path, log))
    record = finished_stage(spark, layout, "cnn_features")
    if record is None:
        started = time.perf_counter()
        with progress.stage("cnn_features") if progress else nullcontext():
            if cnn_features:
                features = load_external_features(spark, cnn_features, config)
                matched, missing, counts = match_features(
                    images, features, cnn_features, input_path, config.cnn.unmatched_tolerance)
                description = f"external CNN features ({cnn_features})"
            else:
                matched, missing, counts = _extract(spark, config, input_path, images, layout)
                from bovw.experiments.cnn import DESCRIPTIONS

                description = DESCRIPTIONS[config.cnn.backbone]
            matched.write.mode("overwrite").parquet(layout.path("cnn_features"))
            missing.write.mode("overwrite").parquet(layout.rejects)
        record = {"counts": counts, "features": description,
                  "timings": {"cnn_features": round(time.perf_counter() - started, 3)}}
        mark_finished(spark, layout, "cnn_features", record)
    else:
        log("[bovw] cnn_features: already finished, reusing its outputs")
    mismatches = record["counts"].get("label_mismatches", 0)
    if mismatches:
        images = "1 image is" if mismatches == 1 else f"{mismatches} images are"
        log(f"[bovw] compare cnn: {images} labelled otherwise in {cnn_features} than by "
            "their class folder; the folder labels are used")
    matched = storage.read_parquet(spark, layout.path("cnn_features"))
    missing_count = storage.read_parquet(spark, layout.rejects).count()
    if missing_count:
        have = f"{missing_count} images have" if missing_count > 1 else "1 image has"
        log(f"[bovw] compare cnn: {have} no CNN features (listed in {layout.rejects})")
    # (label, split) counts, at most 2 x classes rows: splits, classes and Test-only ones.
    tally = matched.groupBy(LABEL, SPLIT).count().collect()
    per_split = {split: sum(row["count"] for row in tally if row[SPLIT] == split)
                 for split in sorted({row[SPLIT] for row in tally})}
    classes = {split: {row[LABEL] for row in tally if row[SPLIT] == split}
               for split in (TRAIN, TEST)}
    test_only = sorted(classes[TEST] - classes[TRAIN])
    if test_only:
        log(f"[bovw] compare cnn: {test_only_warning(test_only)}")
    if not per_split.get(TRAIN) or not per_split.get(TEST):
        raise CompareError(f"the CNN features cover {per_split.get(TRAIN, 0)} Training and "
                           f"{per_split.get(TEST, 0)} Test images; both splits need some")
    accepted_count = sum(per_split.values())
    classified = classify_features(spark, matched, accepted_count, config, layout,
                                   normalise=config.cnn.l2)
    counts = ImageCounts(
        images=accepted_count + missing_count, accepted=accepted_count,
        rejected=missing_count, missing_features=missing_count, per_split=per_split,
        classes=len(classes[TRAIN] | classes[TEST]), test_only_classes=tuple(test_only),
        **record["counts"])
    summary = RunSummary(
        output=layout.root, counts=counts, features=record["features"],
        reduction=from_record(Reduction, classified["reduction"]),
        metrics=HeadlineMetrics.of({key: classified["metrics"][key] for key in SCORE_KEYS}),
        timings={**record["timings"], **classified["timings"]}, config=config.to_dict())
    storage.write_text(spark, layout.summary, summary.to_json())


def _extract(spark: SparkSession, config: Config, input_path: str, images: DataFrame,
             layout: RunLayout) -> tuple[DataFrame, DataFrame, dict[str, int]]:
    from bovw.experiments.cnn import extract_cnn_features

    files = list_files(spark, input_path, config.ingest).select(PATH, CONTENT)
    wanted = files.join(images.select(PATH), PATH, "left_semi")
    extracted = extract_cnn_features(wanted, config.cnn, config.orb)
    extracted.write.mode("overwrite").parquet(layout.path("cnn_raw"))
    extracted = storage.read_parquet(spark, layout.path("cnn_raw"))
    joined = images.join(extracted, PATH, "left")
    matched = joined.filter(F.col("cnn_features").isNotNull()).select(
        PATH, LABEL, SPLIT, array_to_vector("cnn_features").alias(FEATURES))
    missing = joined.filter(F.col("cnn_features").isNull()).select(
        PATH, LABEL, SPLIT,
        F.coalesce(F.col(REJECT_REASON), F.lit("not read by the CNN extractor")
                   ).alias("reason"))
    return matched, missing, {"extracted": matched.count()}  # not a reject's empty row

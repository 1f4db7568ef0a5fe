"""The small data a run report shows, read from a finished run folder.

Only small aggregates reach the driver: the confusion matrix (classes^2 numbers), a capped
sample of PCA points, the keypoint counts grouped by Spark, and at most SAMPLE_IMAGES test
images read one by one for the thumbnail grid.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from pyspark.ml.functions import vector_to_array
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from bovw.columns import LABEL, N_KEYPOINTS, PATH, PCA_FEATURES, PREDICTION, SPLIT, TEST
from bovw.pipeline.layout import RunLayout
from bovw.spark import storage
from bovw.summary import RunSummary

__all__ = ["PCA_POINTS", "SAMPLE_IMAGES", "THUMBNAIL_SIDE", "RunData", "gather_run"]

PCA_POINTS = 2000
SAMPLE_IMAGES = 24
THUMBNAIL_SIDE = 120


@dataclass
class RunData:
    """What a run report shows, all of it small: the run's summary and metrics.json, up to
    PCA_POINTS (label, split, x, y) points of its first two PCA components, the (keypoints,
    images) counts, and (path, label, prediction, PNG thumbnail or None) samples."""

    root: str
    summary: RunSummary
    metrics: dict[str, Any]
    pca_points: list[tuple[str, str, float, float]] = field(default_factory=list)
    keypoint_counts: list[tuple[int, int]] = field(default_factory=list)
    samples: list[tuple[str, str, str, bytes | None]] = field(default_factory=list)


def gather_run(spark: SparkSession, root: str, pca_points: int = PCA_POINTS,
               sample_images: int = SAMPLE_IMAGES) -> RunData:
    """Read a finished run folder's small outputs, and aggregate its features with Spark."""
    layout = RunLayout(root.rstrip("/"))
    summary = RunSummary.from_json(storage.read_text(spark, layout.summary))
    metrics = json.loads(storage.read_text(spark, layout.metrics))
    data = RunData(layout.root, summary, metrics)
    if not storage.exists(spark, layout.features):
        return data
    features = storage.read_parquet(spark, layout.features).withColumn(
        "_order", F.xxhash64(F.col(PATH)))
    if PCA_FEATURES in features.columns:
        coordinates = vector_to_array(PCA_FEATURES)
        rows = (features.orderBy("_order").limit(pca_points)
                .select(LABEL, SPLIT, coordinates[0].alias("x"),
                        F.when(F.size(coordinates) > 1, coordinates[1]).otherwise(0.0)
                        .alias("y"))
                .collect())
        data.pca_points = [(r[LABEL], r[SPLIT], float(r["x"]), float(r["y"])) for r in rows]
    if N_KEYPOINTS in features.columns:
        data.keypoint_counts = sorted(
            (int(r[N_KEYPOINTS]), int(r["count"]))
            for r in features.groupBy(N_KEYPOINTS).count().collect())
    # Sample images of the scored classes only: those of a class without Training images
    # are reported apart (metrics.json: test_only_classes).
    test = features.filter(F.col(SPLIT) == TEST)
    if metrics.get("test_only_classes"):
        test = test.filter(~F.col(LABEL).isin(metrics["test_only_classes"]))
    wrong = (test.filter(F.col(LABEL) != F.col(PREDICTION)).orderBy("_order")
             .limit(sample_images // 2).select(PATH, LABEL, PREDICTION).collect())
    right = (test.filter(F.col(LABEL) == F.col(PREDICTION)).orderBy("_order")
             .limit(sample_images - len(wrong)).select(PATH, LABEL, PREDICTION).collect())
    chosen = sorted(wrong + right, key=lambda r: (r[LABEL], r[PATH]))
    data.samples = [(r[PATH], r[LABEL], r[PREDICTION], _thumbnail(spark, r[PATH]))
                    for r in chosen]
    return data


def _thumbnail(spark: SparkSession, path: str) -> bytes | None:
    """A small PNG of the image at `path`, or None when it cannot be read any more."""
    try:
        image = Image.open(io.BytesIO(storage.read_bytes(spark, path)))
        image.draft("RGB", (THUMBNAIL_SIDE * 2, THUMBNAIL_SIDE * 2))
        image = image.convert("RGB")
        image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    except Exception:  # a moved or unreadable file must not stop the report
        return None

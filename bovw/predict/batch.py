"""Predictions for a whole folder or s3a:// prefix, as a Spark job writing Parquet.

Every image goes through `bovw.predict.predictor.Predictor` inside an Arrow-batched mapInArrow
UDF, so a photo gets the same answer here as from `bovw predict photo.jpg` or a back end
embedding the Predictor. The model file's bytes are broadcast once to the executors.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bovw.columns import (
    CONTENT,
    HEIGHT,
    LABEL,
    LENGTH,
    N_KEYPOINTS,
    PATH,
    PREDICTION,
    PREDICTION_SCHEMA,
    PROBABILITY,
    REJECT_REASON,
    SPLIT_FOLDER,
    WIDTH,
)
from bovw.config import Config, PredictSettings
from bovw.errors import OutputError
from bovw.pipeline.ingest import class_label, list_files, with_labels
from bovw.pipeline.inputs import read_local_file
from bovw.predict.predictor import Predictor
from bovw.predict.results import Prediction
from bovw.spark import storage
from bovw.spark.outputs import KINDS, open_output
from bovw.spark.workers import worker_imports_named

__all__ = ["PREDICTION_COLUMNS", "FolderPredictions", "LabelledScores", "predict_files",
           "predict_folder"]

PREDICTION_COLUMNS = [column.split()[0] for column in PREDICTION_SCHEMA.split(",")]
_ARROW_SCHEMA = pa.schema([
    (PATH, pa.string()), (LABEL, pa.string()), (PREDICTION, pa.string()),
    (PROBABILITY, pa.float64()), ("top_labels", pa.list_(pa.string())),
    ("top_probabilities", pa.list_(pa.float64())), ("display_name", pa.string()),
    (N_KEYPOINTS, pa.int32()), ("low_confidence", pa.bool_()), ("notes", pa.string()),
    ("fitted", pa.string()), (WIDTH, pa.int32()), (HEIGHT, pa.int32()),
    (REJECT_REASON, pa.string()),
])


def _predict_batches(model_broadcast, settings: PredictSettings):
    def predict(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        predictor = Predictor.from_bytes(model_broadcast.value, settings)
        for batch in batches:
            columns = batch.to_pydict()
            results = [_unread(path, content) or predictor.predict(content or b"")
                       for path, content in zip(columns[PATH], columns[CONTENT], strict=True)]
            top_info = [r.top[0].info if r.top else None for r in results]
            yield pa.RecordBatch.from_arrays([
                pa.array(columns[PATH], pa.string()),
                pa.array([class_label(label) for label in columns[LABEL]], pa.string()),
                pa.array([r.label for r in results], pa.string()),
                pa.array([r.probability for r in results], pa.float64()),
                pa.array([[s.label for s in r.top] for r in results], pa.list_(pa.string())),
                pa.array([[s.probability for s in r.top] for r in results],
                         pa.list_(pa.float64())),
                pa.array([info.name if info else None for info in top_info], pa.string()),
                pa.array([r.n_keypoints for r in results], pa.int32()),
                pa.array([r.low_confidence for r in results], pa.bool_()),
                pa.array(["; ".join(r.notes) or None for r in results], pa.string()),
                pa.array([r.fitted for r in results], pa.string()),
                pa.array([r.width for r in results], pa.int32()),
                pa.array([r.height for r in results], pa.int32()),
                pa.array([r.reject_reason for r in results], pa.string()),
            ], schema=_ARROW_SCHEMA)

    return predict


def _unread(path: str, content: bytes | None) -> Prediction | None:
    """The reject of a local file that gave no bytes (a broken link, a file gone or made
    unreadable since the listing), with the reason its read gives; None otherwise, and
    for an empty file, which the Predictor rejects as such."""
    if content is not None or not path.startswith("file:"):
        return None
    reason = read_local_file(path)
    if not isinstance(reason, str):
        return None
    return Prediction.unreadable(reason)


def predict_files(files: DataFrame, model_bytes: bytes, settings: PredictSettings,
                  max_file_bytes: int) -> DataFrame:
    """One PREDICTION_SCHEMA row per listed file.

    `files` has the binaryFile columns plus `label` (null when unknown). Files over
    `max_file_bytes` are not read and get a reject reason, like in the pipeline.
    """
    broadcast = files.sparkSession.sparkContext.broadcast(model_bytes)
    readable = files.filter(F.col(LENGTH) <= max_file_bytes)
    predicted = readable.select(PATH, LABEL, CONTENT).mapInArrow(
        _predict_batches(broadcast, settings), PREDICTION_SCHEMA)
    too_large = files.filter(F.col(LENGTH) > max_file_bytes).select(
        PATH, LABEL,
        *[F.lit(None).cast(kind).alias(name) for name, kind in (
            (PREDICTION, "string"), (PROBABILITY, "double"),
            ("top_labels", "array<string>"), ("top_probabilities", "array<double>"),
            ("display_name", "string"))],
        F.lit(0).alias(N_KEYPOINTS), F.lit(True).alias("low_confidence"),
        F.lit(None).cast("string").alias("notes"), F.lit(None).cast("string").alias("fitted"),
        F.lit(0).alias(WIDTH), F.lit(0).alias(HEIGHT),
        F.concat(F.lit("file too large: "), F.col(LENGTH).cast("string"),
                 F.lit(f" bytes exceeds ingest.max_file_bytes={max_file_bytes}")
                 ).alias(REJECT_REASON),
    )
    return predicted.unionByName(too_large)


@dataclass(frozen=True)
class LabelledScores:
    """The scores of a labelled folder (each photo's label is its folder's name).

    labelled: answered photos of the model's classes, of which `correct` are right;
    unanswered: photos of the model's classes left out (unreadable, too small or flat);
    unknown_class: photos in folders not named after one of the model's classes, not
    scored."""

    labelled: int
    correct: int
    unanswered: int
    unknown_class: int

    @property
    def accuracy(self) -> float | None:
        """correct / labelled (6 decimals), None when no photo of a known class was answered."""
        return round(self.correct / self.labelled, 6) if self.labelled else None


@dataclass(frozen=True)
class FolderPredictions:
    """What `predict_folder` predicted: `images` rows written to `output`, of which
    `rejected` could not be read, `not_answered` were too small or flat to describe and
    `low_confidence` were answered with a low confidence; `scores` with --labelled."""

    images: int
    rejected: int
    not_answered: int
    low_confidence: int
    output: str
    scores: LabelledScores | None = None

    def to_dict(self) -> dict[str, Any]:
        """The summary as `bovw predict --json` prints it."""
        counts: dict[str, Any] = {"images": self.images, "rejected": self.rejected,
                                  "not_answered": self.not_answered,
                                  "low_confidence": self.low_confidence}
        if self.scores is not None:
            counts.update(labelled=self.scores.labelled, correct=self.scores.correct,
                          accuracy=self.scores.accuracy,
                          labelled_unanswered=self.scores.unanswered,
                          unknown_class=self.scores.unknown_class)
        return {**counts, "output": self.output}


def _to_stderr(line: str) -> None:
    # stdout carries the summary (JSON with --json); progress notes go to stderr.
    print(line, file=sys.stderr)


def predict_folder(spark: SparkSession, config: Config, input_path: str, output_path: str,
                   model_bytes: bytes, *, labelled: bool = False, overwrite: bool = False,
                   log: Callable[[str], None] = _to_stderr) -> FolderPredictions:
    """Predict every image under `input_path` and write the Parquet table to `output_path`.

    With `labelled`, each row's `label` is its parent folder's name and the summary adds
    the accuracy on the answered rows whose label is one of the model's classes; those of
    a known class left unanswered (unreadable, too small or flat) are counted apart, as
    `bovw run` leaves its rejects out of its scores (LabelledScores).
    The output is locked while the job runs; an existing predictions folder is replaced
    only with `overwrite`, and only once the new table is complete (bovw.spark.outputs).
    Raises OutputError when the output exists and `overwrite` is false, or when it is
    not a bovw predictions folder, and WorkerError when Spark's Python workers cannot
    import a module the Predictor needs (bovw.spark.workers.worker_imports_named).
    """
    output_path = output_path.rstrip("/") or "/"
    predictor = Predictor.from_bytes(model_bytes, config.predict)  # fail early on a bad model

    def refuse(_folder: str) -> None:
        raise OutputError(f"output {output_path} already exists; choose another --output or "
                          "pass --overwrite to replace it")

    with open_output(spark, output_path, "predictions", overwrite=overwrite, resume=refuse,
                     matches=lambda _folder: False, start=lambda _folder: None,
                     reads=[input_path],
                     legacy=lambda folder: _legacy_predictions(spark, folder),
                     log=log) as output:
        files = list_files(spark, input_path, config.ingest)
        files = (with_labels(files).drop(SPLIT_FOLDER) if labelled
                 else files.withColumn(LABEL, F.lit(None).cast("string")))
        predictions = predict_files(files, model_bytes, config.predict,
                                    config.ingest.max_file_bytes)
        with worker_imports_named():
            # Appended to the folder that holds only the marker written by open_output.
            predictions.write.mode("append").parquet(output.work)
        return _summary(storage.read_parquet(spark, output.work), predictor, labelled,
                        output_path)


def _summary(written: DataFrame, predictor: Predictor, labelled: bool,
             output_path: str) -> FolderPredictions:
    known = F.col(LABEL).isin(list(predictor.classes))
    # An unreadable photo or one too small to describe has no prediction: it is neither
    # right nor wrong, and counting it wrong would make the accuracy the model's and the
    # files' at once.
    answered = F.col(PREDICTION).isNotNull()
    row = written.agg(
        F.count(F.lit(1)).alias("images"),
        F.sum(F.col(REJECT_REASON).isNotNull().cast("int")).alias("rejected"),
        F.sum((F.col("low_confidence") & F.col(PREDICTION).isNotNull()).cast("int")
              ).alias("low_confidence"),
        # Read, but too small or flat to describe: no prediction (bovw.predict.predictor).
        F.sum((F.col(PREDICTION).isNull() & F.col(REJECT_REASON).isNull()).cast("int")
              ).alias("not_answered"),
        F.sum((known & answered).cast("int")).alias("labelled"),
        F.sum((known & ~answered).cast("int")).alias("labelled_unanswered"),
        F.sum((~known).cast("int")).alias("unknown_class"),
        F.sum((known & (F.col(LABEL) == F.col(PREDICTION))).cast("int")).alias("correct"),
    ).first()
    def count(name: str) -> int:  # a sum over no rows is null
        return int(row[name] or 0)

    scores = (LabelledScores(labelled=count("labelled"), correct=count("correct"),
                             unanswered=count("labelled_unanswered"),
                             unknown_class=count("unknown_class")) if labelled else None)
    return FolderPredictions(images=count("images"), rejected=count("rejected"),
                             not_answered=count("not_answered"),
                             low_confidence=count("low_confidence"), output=output_path,
                             scores=scores)


def _legacy_predictions(spark: SparkSession, folder: str) -> str | None:
    """The kind "predictions" for a table written before outputs carried a marker (nothing
    but Parquet part files, with exactly the prediction columns), else None."""
    names = storage.list_names(spark, folder)
    if "_SUCCESS" not in names or not all(map(KINDS["predictions"].made_by_bovw, names)):
        return None
    try:
        columns = storage.read_parquet(spark, folder).columns
    except Exception:  # noqa: BLE001 - unreadable: not a table bovw wrote
        return None
    return "predictions" if columns == PREDICTION_COLUMNS else None

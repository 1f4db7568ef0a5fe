"""Export a finished run's Spark ML models to one small, Spark-free model file.

The run folder holds models/{vocabulary,idf,pca,labels,classifier} and run.json (its input
and effective config); `export_model` turns them into a `bovw.predict.model_file.ExportedModel`
and writes it as a .npz file (local path or any Hadoop URL, e.g. s3a://).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
from pyspark.ml.classification import LogisticRegressionModel
from pyspark.ml.clustering import KMeansModel
from pyspark.ml.feature import IDFModel, PCAModel, StringIndexerModel
from pyspark.sql import SparkSession

from bovw.config import ConfigError, config_from_dict, current_orb_table
from bovw.config.blocks import without_new_blocks
from bovw.errors import ExportError
from bovw.pipeline.descriptors import training_size
from bovw.pipeline.layout import RunLayout
from bovw.pipeline.mixture import MIXTURE, read_mixture
from bovw.pipeline.vocabulary import centers
from bovw.predict.fruits import FruitInfo
from bovw.predict.model_file import (
    MODEL_FILE_NAME,
    ExportedModel,
    feature_blocks,
    model_to_bytes,
    written_by_bovw,
)
from bovw.predict.sources import runs_inside
from bovw.spark import leases, storage
from bovw.summary import VocabularyFit, from_record

__all__ = ["build_model", "default_model_path", "export_model"]



def default_model_path(run_dir: str) -> str:
    """Where `bovw export` puts the model of `run_dir` by default: RUN_DIR/model.npz."""
    return storage.join(run_dir, MODEL_FILE_NAME)


def build_model(spark: SparkSession, run_dir: str,
                fruits: Mapping[str, FruitInfo] | None = None) -> ExportedModel:
    """Read a finished run's models and config into an ExportedModel.

    `fruits` is a catalogue; the entries of the model's classes are embedded. The
    training size is the median width and height of the accepted Training images (read
    from the run's descriptors Parquet; only a few numbers reach the driver). Raises
    ExportError when `run_dir` is not a finished bovw run (a comparison's cnn variant is
    not one).
    """
    layout = RunLayout(run_dir.rstrip("/"))
    if not storage.exists(spark, layout.run_spec):
        raise ExportError(_not_a_run(spark, layout.root))
    if not storage.exists(spark, layout.summary):
        raise ExportError(
            f"run {layout.root} has not finished (no summary.json): run bovw run again with the "
            "same --input and --output to finish it, then export")
    spec = json.loads(storage.read_text(spark, layout.run_spec))
    if "cnn_features" in spec:  # the run.json of bovw compare's cnn variant
        raise ExportError(f"{layout.root} is the cnn variant of a comparison: its features "
                          "come from a CNN, which a bovw model file does not hold; export "
                          "an ORB variant (variants/orb or variants/orb-colour) or a bovw run")
    try:
        orb = current_orb_table(spec["config"].get("orb", {}))
    except ConfigError as error:
        raise ExportError(f"run {layout.root} cannot be exported for this bovw: {error}. Run "
                          "the pipeline again with this bovw (a new --output), then export "
                          "that run") from None
    config = config_from_dict(without_new_blocks({**spec["config"], "orb": orb}))
    descriptors_record = json.loads(storage.read_text(spark, layout.marker("descriptors")))
    vocabulary_record = json.loads(storage.read_text(spark, layout.marker("vocabulary")))
    metrics = json.loads(storage.read_text(spark, layout.metrics))

    # With a Fisher encoding, the mixture's means are what the images are encoded by.
    mixture = (read_mixture(spark, layout.model(MIXTURE))
               if config.histograms.encoding == "fisher" else None)
    vocabulary = (mixture.means if mixture is not None
                  else centers(storage.load_model(KMeansModel, layout.model("vocabulary"))))
    idf = (storage.load_model(IDFModel, layout.model("idf")).idf.toArray().astype(np.float64)
           if config.histograms.tfidf else None)
    pc = storage.load_model(PCAModel, layout.model("pca")).pc.toArray().astype(np.float64)
    labels = storage.load_model(StringIndexerModel, layout.model("labels")).labels
    classifier = storage.load_model(LogisticRegressionModel, layout.model("classifier"))
    classes = tuple(str(label) for label in labels)
    return ExportedModel(
        classes=classes,
        centers=vocabulary,
        mixture_weights=None if mixture is None else mixture.weights,
        idf=idf,
        pc=pc,
        coefficients=classifier.coefficientMatrix.toArray().astype(np.float64),
        intercepts=classifier.interceptVector.toArray().astype(np.float64),
        orb=config.orb,
        histograms=config.histograms,
        training_size=_training_size(spark, layout, descriptors_record),
        feature_blocks=feature_blocks(config.tone.enabled, config.colour.enabled),
        tone=config.tone if config.tone.enabled else None,
        colour=config.colour if config.colour.enabled else None,
        word_variance=from_record(VocabularyFit,
                                  vocabulary_record.get("vocabulary")).mean_squared_distance,
        fruits={name: fruits[name] for name in classes if name in (fruits or {})},
        source={
            "run": layout.root,
            "input": spec.get("input"),
            "seed": config.seed,
            "vocabulary_k": int(len(vocabulary)),
            "pca_components": int(pc.shape[1]),
            "test_accuracy": metrics.get("accuracy"),
            "test_images": metrics.get("test_images"),
        },
    ).validate(layout.root)


def export_model(spark: SparkSession, run_dir: str, out_path: str | None = None,
                 fruits: Mapping[str, FruitInfo] | None = None) -> tuple[ExportedModel, str]:
    """Write the model of a finished run to `out_path` (default RUN_DIR/model.npz),
    replacing a bovw model file there but nothing else.

    Refused while another bovw command holds the run folder, checked before the first
    read and again before writing: a run replacing or resuming it could swap its models
    between the reads (an export during an `--overwrite` run ended in a Java trace, review
    5) and leave a model that mixes two runs. Only checked, not locked: exporting needs
    no right to write into the run folder. Returns the model and the path written. Raises
    ExportError, and OutputInUseError while the run folder is in use.
    """
    target = out_path or default_model_path(run_dir.rstrip("/"))
    advice = f"wait for it to end, then export with: bovw export {run_dir}"
    _check_replaceable(spark, target)
    leases.refuse_if_held(spark, run_dir, advice)
    model = build_model(spark, run_dir, fruits)
    leases.refuse_if_held(spark, run_dir, advice)
    storage.write_bytes(spark, target, model_to_bytes(model))
    return model, target


def _check_replaceable(spark: SparkSession, target: str) -> None:
    """Raise ExportError when `target` exists and is not a model bovw wrote: a re-export
    replaces the model, never a file of the user's (`--out notes.txt` overwrote it)."""
    if not storage.exists(spark, target):
        return
    if not storage.is_file(spark, target):
        raise ExportError(f"--out {target} is a folder; fix: name the model file to write, "
                          f"e.g. {storage.join(target, MODEL_FILE_NAME)}")
    if not written_by_bovw(storage.read_bytes(spark, target)):
        raise ExportError(f"--out {target} exists and is not a bovw model; bovw replaces "
                          "only a model it wrote; fix: choose another --out, or move that "
                          "file away")


def _training_size(spark: SparkSession, layout: RunLayout, record: dict) -> tuple[int, int]:
    if record.get("training_size"):
        width, height = record["training_size"]
        return int(width), int(height)
    # A run of an earlier bovw: measured on its descriptors, which may be another run's.
    descriptors_path = record["descriptors_path"]
    if not storage.exists(spark, descriptors_path):
        raise ExportError(
            f"run {layout.root} was made from the descriptors in {descriptors_path}, which "
            "are gone, and its record lacks the size of its Training images: put them "
            "back, or run the pipeline again with this bovw (a new --output), then export")
    size = training_size(storage.read_parquet(spark, descriptors_path))
    if size is None:
        raise ExportError(f"no readable Training image in {descriptors_path}")
    return size


def _not_a_run(spark, root: str) -> str:
    """Why `root`, which holds no run.json, cannot be exported, and what can be."""
    if not storage.exists(spark, root):
        return f"{root} not found"
    held = runs_inside(lambda name: storage.exists(spark, storage.join(root, name)))
    if held:
        what, inside = held
        return (f"{root} is {what}, not a run folder; export one of its runs: "
                f"bovw export {root}/{inside}")
    return f"{root} is not a bovw run folder (no run.json)"

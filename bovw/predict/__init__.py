"""Prediction: a finished run exported to one small model file, and the Predictor that
applies it to photo bytes without Spark or a JVM.

    model_file.py  the model file (a versioned .npz): ExportedModel, its checks, read/write
    contradiction.py  settings asked of `bovw predict` that its model contradicts
    predictor.py   Predictor: photo bytes -> Prediction (numpy, OpenCV, Pillow only)
    results.py     Prediction and ClassScore, what the Predictor answers
    fruits.py      the fruit catalogue (fruits.toml, shipped) a model embeds
    sources.py     which folders hold the runs a model comes from (sweeps, comparisons)
    export.py      a run folder's Spark ML models -> model file (Spark)
    batch.py       the Predictor over a folder or s3a:// prefix, as a Spark job (Spark)

This package's own imports load no Spark: export and batch are imported by name.
"""

from bovw.predict.fruits import FruitInfo, load_catalogue
from bovw.predict.model_file import ExportedModel, model_from_bytes, model_to_bytes
from bovw.predict.predictor import Predictor
from bovw.predict.results import ClassScore, Prediction

__all__ = ["ClassScore", "ExportedModel", "FruitInfo", "Prediction", "Predictor",
           "load_catalogue", "model_from_bytes", "model_to_bytes"]

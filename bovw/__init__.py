"""bovw: bag-of-visual-words image classification on PySpark.

The package is layered; each folder is a layer and imports only from those above it:

    errors.py, columns.py, locations.py, summary.py, version.py   shared by every layer
    config/       the typed, frozen settings (TOML + command-line overrides)
    image/        per-image work, free of Spark: decoding, ORB, colour, visual words
    spark/        the SparkSession, files on any Hadoop filesystem, bovw's output folders
    pipeline/     the stages: ingest, descriptors, vocabulary, histograms, PCA, classifier
    predict/      the model file and the Spark-free Predictor; batch prediction
    experiments/  sweeps, the visual words vs CNN comparison, their tables
    report/       report.html pages and plots
    cloud/        AWS credentials, S3A, S3 uploads, EMR
    cli/          the `bovw` command (nothing imports it)

`import bovw` loads neither Spark nor OpenCV: `bovw.Config`, `bovw.load_config`,
`bovw.Predictor` and `bovw.run_pipeline` are imported on first use.
"""

from bovw.errors import (
    BovwError,
    CloudError,
    ConfigError,
    InputError,
    ModelFileError,
    OutputError,
    TrainingError,
    VocabularyError,
)
from bovw.version import __version__

__all__ = [
    "BovwError", "CloudError", "Config", "ConfigError", "InputError", "ModelFileError",
    "OutputError", "Predictor", "TrainingError", "VocabularyError", "__version__",
    "load_config", "run_pipeline",
]


def __getattr__(name: str):
    # On first use only, so that `import bovw` loads neither OpenCV nor Spark, and the
    # `bovw` command starts its Ctrl-C handling (bovw.cli) within a few milliseconds.
    if name in ("Config", "load_config"):
        from bovw import config

        return getattr(config, name)
    if name == "Predictor":
        from bovw.predict.predictor import Predictor

        return Predictor
    if name == "run_pipeline":
        from bovw.pipeline.run import run_pipeline

        return run_pipeline
    raise AttributeError(f"module 'bovw' has no attribute {name!r}")

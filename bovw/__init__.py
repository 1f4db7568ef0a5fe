"""bovw: bag-of-visual-words image classification on PySpark."""

__version__ = "0.2.0"


def __getattr__(name: str):
    # `bovw.Predictor` on first use only, so `import bovw` loads neither OpenCV nor Spark.
    if name == "Predictor":
        from bovw.predict.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'bovw' has no attribute {name!r}")

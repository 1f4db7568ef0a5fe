"""bovw: bag-of-visual-words image classification on PySpark."""

__version__ = "0.1.0"

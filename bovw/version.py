"""The version of bovw (the same as pyproject.toml's), apart so any module may read it
without importing the package's public surface."""

__all__ = ["__version__"]

__version__ = "0.2.0"

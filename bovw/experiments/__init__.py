"""Experiments built from whole runs: sweeps of settings, and visual words against CNN
features on the same images.

    sweep.py     the pipeline over a grid of settings, descriptors extracted once
    compare.py   visual words, visual words + colour, and CNN features side by side
    cnn.py       the built-in CNN feature extractor (the [cnn] extra)
    external.py  CNN features made elsewhere, read and matched to the images
    tables.py    the sweep and comparison tables (CSV, Markdown)

They call bovw.report for their pages; the report never calls them.

`compare` names both a function and its module: once the module has been imported
(`import bovw.experiments.compare`, or a from-import out of it), Python's import system
makes the package's `compare` that module. `from bovw.experiments.compare import compare`
is the function either way.
"""

__all__ = ["compare", "run_sweep"]


def __getattr__(name: str):
    # Imported on first use: both start Spark work. Through importlib, not `from
    # bovw.experiments import compare`: that form asks this package for `compare` first,
    # which came back here, and `from bovw.experiments import compare` (or
    # bovw.experiments.run_sweep) ended in a RecursionError.
    if name not in __all__:
        raise AttributeError(f"module 'bovw.experiments' has no attribute {name!r}")
    from importlib import import_module

    public = {"compare": import_module("bovw.experiments.compare").compare,
              "run_sweep": import_module("bovw.experiments.sweep").run_sweep}
    # Importing the module bovw.experiments.compare made `compare` this package's name for
    # that module; the public name is the function.
    globals().update(public)
    return public[name]

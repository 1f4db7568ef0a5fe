"""Experiments built from whole runs: sweeps of settings, and visual words against CNN
features on the same images.

    sweep.py     the pipeline over a grid of settings, descriptors extracted once
    compare.py   visual words, visual words + colour, and CNN features side by side
    cnn.py       the built-in CNN feature extractor (the [cnn] extra)
    external.py  CNN features made elsewhere, read and matched to the images
    tables.py    the sweep and comparison tables (CSV, Markdown)

They call bovw.report for their pages; the report never calls them.
"""

__all__ = ["compare", "run_sweep"]


def __getattr__(name: str):
    if name == "run_sweep":
        from bovw.experiments.sweep import run_sweep

        return run_sweep
    if name == "compare":
        from bovw.experiments.compare import compare

        return compare
    raise AttributeError(f"module 'bovw.experiments' has no attribute {name!r}")

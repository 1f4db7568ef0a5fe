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
    # Imported on first use: both start Spark work.
    if name not in __all__:
        raise AttributeError(f"module 'bovw.experiments' has no attribute {name!r}")
    from bovw.experiments import compare, sweep

    return {"compare": compare.compare, "run_sweep": sweep.run_sweep}[name]

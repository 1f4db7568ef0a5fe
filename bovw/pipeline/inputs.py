"""Checks on an input location that need no Spark, run before a session starts."""

from __future__ import annotations

import os
from pathlib import Path

from bovw.config import IngestSettings
from bovw.errors import InputError


def is_local_path(path: str) -> bool:
    """True for a plain path or file: URI (checked with Python before Spark starts)."""
    return "://" not in path or path.startswith("file:")


def check_local_input(path: str, settings: IngestSettings) -> None:
    """Fail fast, before Spark starts, when a local input folder is missing or holds no image."""
    if not is_local_path(path):
        return
    folder = Path(path.removeprefix("file://").removeprefix("file:"))
    if not folder.is_dir():
        raise InputError(f"input folder not found: {path}")
    suffixes = {"." + ext.lower().lstrip(".") for ext in settings.extensions}
    for _root, _dirs, files in os.walk(folder, followlinks=False):
        if any(Path(name).suffix.lower() in suffixes for name in files):
            return
    raise InputError(
        f"input folder {path} holds no image files ({', '.join(settings.extensions)}); "
        "expected Training/<Class>/*.jpg and Test/<Class>/*.jpg, or <Class>/*.jpg"
    )

"""Where a path points, in one spelling, and whether one path lies inside another.

Shared by the layers that compare paths: an output inside a folder the command reads, a
folder that --overwrite replaces holding something still needed, a record's input folder
compared with a resumed run's. Spark-free.
"""

from __future__ import annotations

import os

__all__ = ["is_local_path", "location", "within"]

_S3_SCHEMES = ("s3a://", "s3n://")


def location(path: str) -> str:
    """A folder's location in one spelling: a local folder (plain, file: or file://) as an
    absolute normalised path; s3a:// and s3n:// as s3://; any URL without a trailing
    slash."""
    if "://" not in path or path.startswith("file:"):
        local = path.removeprefix("file://").removeprefix("file:")
        return os.path.normpath(os.path.abspath(local))
    for scheme in _S3_SCHEMES:
        if path.startswith(scheme):
            path = "s3://" + path[len(scheme):]
    return path.rstrip("/")


def within(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or lies below it, in any spelling `location` unifies,
    and, both being local, also where their symbolic links lead."""
    def spellings(given: str) -> set[str]:
        plain = location(given)
        return {plain, os.path.realpath(plain)} if is_local_path(given) else {plain}

    return any(f"{inner.rstrip('/')}/".startswith(f"{outer.rstrip('/')}/")
               for inner in spellings(path) for outer in spellings(folder))


def is_local_path(path: str) -> bool:
    """True for a plain path or a file: URI (checked with Python before Spark starts)."""
    return "://" not in path or path.startswith("file:")

"""Which folders hold runs a model comes from: a sweep's and a comparison's runs lie one
level below them, and a message that names that level spares the search.

Spark-free: `bovw predict --model FOLDER` asks it of a local folder before Spark starts, and
`bovw export` of any folder, through Spark's filesystems.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["runs_inside"]

# (the record a folder of runs holds, what that folder is, where its runs are)
_HOLDERS = (("sweep.json", "a sweep folder", "points/<point>"),
            ("compare.json", "a comparison folder", "variants/<variant>"))


def runs_inside(holds: Callable[[str], bool]) -> tuple[str, str] | None:
    """(what the folder is, where its runs are below it), such as ("a sweep folder",
    "points/<point>"), when `holds(name)` says the folder holds a sweep's or comparison's
    record file of that name; else None."""
    for record, what, inside in _HOLDERS:
        if holds(record):
            return what, inside
    return None

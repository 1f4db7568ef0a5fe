"""What a run's confusion matrix says at any number of classes: which classes are taken for
which, as a table, and how the heat map labels its axes.

Up to NAMED_CLASSES_MAX classes the heat map names every class and writes its counts. Beyond
that (Fruits-360 has 131 classes) names and counts no longer fit a page: the heat map then
numbers its rows and columns as the per-class table's "#" column does, and the table of
the most confused pairs names the classes whose Test images went astray. Pure: no Spark,
no plotting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bovw.report.html import html_table, pct

__all__ = ["CONFUSED_PAIRS_SHOWN", "NAMED_CLASSES_MAX", "Confusion", "axis_ticks",
           "class_numbers", "confused_pairs_body", "most_confused", "numbered"]

# Above this many classes the heat map numbers its classes instead of naming them.
NAMED_CLASSES_MAX = 40
# Rows of the report's table of most confused pairs.
CONFUSED_PAIRS_SHOWN = 15


@dataclass(frozen=True)
class Confusion:
    """Test images of class `true` predicted as `predicted`: `images` of them, `share` of
    the true class's scored Test images (in (0, 1])."""

    true: str
    predicted: str
    images: int
    share: float


def numbered(class_count: int) -> bool:
    """Whether a confusion matrix of `class_count` classes numbers its classes (1-based, in
    the order of the metrics' `classes`) rather than naming them."""
    return class_count > NAMED_CLASSES_MAX


def axis_ticks(classes: Sequence[str]) -> tuple[list[int], list[str]]:
    """(positions, labels) of the heat map's axes: every class by name up to
    NAMED_CLASSES_MAX classes; beyond, class 1 and every tenth (10, 20, ...) by number."""
    if not numbered(len(classes)):
        return list(range(len(classes))), list(classes)
    positions = [0, *range(9, len(classes), 10)]
    return positions, [str(position + 1) for position in positions]


def class_numbers(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                  marks: Sequence[Sequence[str]]) -> tuple[list[str], list[list[Any]],
                                                           list[list[str]]]:
    """A table of one row per class (in the confusion matrix's order) with a first "#"
    column numbering the rows from 1 when a confusion matrix of that many classes is
    numbered, else as it is: (headers, rows, each cell's CSS class) for html_table."""
    if not numbered(len(rows)):
        return list(headers), [list(row) for row in rows], [list(mark) for mark in marks]
    return (["#", *headers], [[number, *row] for number, row in enumerate(rows, start=1)],
            [["", *mark] for mark in marks])


def most_confused(classes: Sequence[str], matrix: Sequence[Sequence[int]],
                  limit: int = CONFUSED_PAIRS_SHOWN) -> tuple[list[Confusion], int]:
    """The `limit` largest off-diagonal cells of the (n, n) confusion `matrix` (rows: true
    class, columns: predicted, in the order of `classes`), most images first, then the
    larger share of the true class, then the order of `classes`; and how many off-diagonal
    cells are not zero. Raises ValueError when `matrix` is not n x n for n classes or holds
    a negative count."""
    n = len(classes)
    try:
        counts = np.asarray(matrix, dtype=np.int64)
    except (TypeError, ValueError):  # rows of several lengths, or not numbers
        counts = None
    if counts is None or (counts.shape != (n, n) and (n or counts.size)):
        raise ValueError(f"a confusion matrix of {n} classes must be {n} x {n} counts")
    counts = counts.reshape(n, n)
    if (counts < 0).any():
        raise ValueError("a confusion matrix holds counts: it has a negative one")
    totals = counts.sum(axis=1)
    wrong = counts.copy()
    np.fill_diagonal(wrong, 0)
    rows, columns = np.nonzero(wrong)
    cells = sorted(zip(rows.tolist(), columns.tolist(), strict=True),
                   key=lambda cell: (-wrong[cell], -wrong[cell] / totals[cell[0]], cell))
    return [Confusion(classes[i], classes[j], int(wrong[i, j]), float(wrong[i, j] / totals[i]))
            for i, j in cells[:limit]], len(cells)


def confused_pairs_body(classes: Sequence[str], matrix: Sequence[Sequence[int]],
                        limit: int = CONFUSED_PAIRS_SHOWN) -> str:
    """The report's section on the most confused pairs (`most_confused`): a table of the
    `limit` largest, said to be the largest of how many there are, or one sentence when
    every scored Test image was classified correctly."""
    pairs, count = most_confused(classes, matrix, limit)
    if not pairs:
        return '<p class="note">Every scored Test image was predicted as its own class.</p>'
    shown = ("The one pair" if count == 1 else f"All {count} pairs" if count <= limit else
             f"The {limit} largest of {count} pairs")
    return (f'<p class="note">{shown} (true class, predicted class) with Test images '
            "predicted as another class; share: of the true class's Test images. The whole "
            "matrix is metrics.json's confusion_matrix.</p>"
            + html_table(["true class", "predicted as", "images", "share"],
                         [[pair.true, pair.predicted, pair.images, pct(pair.share)]
                          for pair in pairs]))

"""Pure formatting of a pipeline-vs-reference comparison (no I/O, no timing).

Each side is a "summary" dict:
    timings          {stage: seconds}, in the order the side ran them
    total_seconds    end-to-end wall time
    images           images listed
    accuracy, macro_f1
    peak_python_mb   peak RSS of the side's Python process
    peak_helper_mb   Spark: driver JVM VmHWM; reference: largest descriptor worker
    peak_memory_mb   peak driver memory, the sum of the two above
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Row = tuple[str, str, str, str]
HEADER: Row = ("metric", "pipeline", "reference", "pipeline/reference")
MISSING = "-"


def _seconds(value: float) -> str:
    return f"{value:.2f}"


def _rate(value: float) -> str:
    return f"{value:.0f}"


def _score(value: float) -> str:
    return f"{value:.4f}"


def _megabytes(value: float) -> str:
    return f"{value:.0f}"


def images_per_second(summary: dict) -> float | None:
    """Images listed per second of end-to-end wall time (None when there is no time)."""
    total = summary.get("total_seconds")
    return summary["images"] / total if total else None


def _row(label: str, left: float | None, right: float | None, fmt: Callable[[float], str]) -> Row:
    ratio = f"{left / right:.2f}" if left is not None and right else MISSING
    return (
        label,
        MISSING if left is None else fmt(left),
        MISSING if right is None else fmt(right),
        ratio,
    )


def stage_names(*summaries: dict | None) -> list[str]:
    """Every stage of the given summaries, in order of first appearance."""
    names: list[str] = []
    for summary in summaries:
        for name in (summary or {}).get("timings", {}):
            if name not in names:
                names.append(name)
    return names


def comparison_rows(pipeline: dict | None, reference: dict | None) -> list[Row]:
    """Table rows (label, pipeline, reference, ratio); a missing side or value shows '-'."""
    sides = (pipeline or {}, reference or {})

    def value(key: str) -> tuple[float | None, float | None]:
        left, right = (side.get(key) for side in sides)
        return left, right

    rows = [
        _row(f"{name} (s)", *(side.get("timings", {}).get(name) for side in sides), _seconds)
        for name in stage_names(pipeline, reference)
    ]
    rows += [
        _row("total wall time (s)", *value("total_seconds"), _seconds),
        _row("images/s", *(images_per_second(s) if s else None for s in sides), _rate),
        _row("accuracy", *value("accuracy"), _score),
        _row("macro F1", *value("macro_f1"), _score),
        _row("peak memory, Python process (MB)", *value("peak_python_mb"), _megabytes),
        _row("peak memory, driver JVM / largest worker (MB)", *value("peak_helper_mb"), _megabytes),
        _row("peak driver memory, total (MB)", *value("peak_memory_mb"), _megabytes),
    ]
    return rows


def markdown_table(rows: Sequence[Row]) -> str:
    """A Markdown table with HEADER, the label column left-aligned and numbers right-aligned."""
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|:---|" + "---:|" * (len(HEADER) - 1),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"

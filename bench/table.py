"""Pure formatting of benchmark comparisons (no I/O, no timing).

Each measured run is a "summary" dict:
    timings          {stage: seconds}, in the order the run did them
    total_seconds    end-to-end wall time (of the whole process, start-up included)
    cpu_seconds      CPU time of the run's processes (Spark: the JVM and its Python
                     workers too), or absent
    images           images listed
    accuracy, macro_f1
    peak_python_mb   peak RSS of the run's Python process
    peak_helper_mb   Spark: driver JVM VmHWM; reference: largest descriptor worker
    peak_memory_mb   peak driver memory, the sum of the two above
    bounds           optional {metric key: ">=" or "<="} for a run stopped early: its
                     values for those metrics are bounds, not measurements

A table is a list of columns: `value_column(header, summary)` shows one run,
`ratio_column(header, numerator, denominator)` divides one run's values by another's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

Row = tuple[str, ...]
HEADER: Row = ("metric", "pipeline", "reference", "pipeline/reference")
MISSING = "-"
INVERTED = {">=": "<=", "<=": ">="}


def _seconds(value: float) -> str:
    return f"{value:.2f}"


def _rate(value: float) -> str:
    return f"{value:.0f}"


def _score(value: float) -> str:
    return f"{value:.4f}"


def _megabytes(value: float) -> str:
    return f"{value:.0f}"


def _count(value: float) -> str:
    return f"{value:.0f}"


def images_per_second(summary: dict) -> float | None:
    """Images listed per second of end-to-end wall time (None when there is no time)."""
    total = summary.get("total_seconds")
    return summary["images"] / total if total and summary.get("images") else None


def descriptor_images_per_second(summary: dict) -> float | None:
    """Images per second of the descriptors stage alone (None without that stage)."""
    seconds = summary.get("timings", {}).get("descriptors")
    return summary["images"] / seconds if seconds and summary.get("images") else None


@dataclass(frozen=True)
class Metric:
    """One table row: its label, how to read it from a summary, how to print it."""

    key: str
    label: str
    read: Callable[[dict], float | None]
    fmt: Callable[[float], str]
    # A rate is a count over a time: a lower bound on the time is an upper bound on it.
    bound_from: str | None = None

    def bound(self, summary: dict) -> str:
        bounds = summary.get("bounds", {})
        if self.bound_from is not None:
            return INVERTED.get(bounds.get(self.bound_from, ""), "")
        return bounds.get(self.key, "")


def stage_names(*summaries: dict | None) -> list[str]:
    """Every stage of the given summaries, in order of first appearance."""
    names: list[str] = []
    for summary in summaries:
        for name in (summary or {}).get("timings", {}):
            if name not in names:
                names.append(name)
    return names


def metrics(stages: Sequence[str]) -> list[Metric]:
    """The rows of a comparison: images, each stage, then totals, rates, scores and memory."""

    def field(key: str) -> Callable[[dict], float | None]:
        return lambda summary: summary.get(key)

    def stage(name: str) -> Callable[[dict], float | None]:
        return lambda summary: summary.get("timings", {}).get(name)

    rows = [Metric("images", "images", field("images"), _count)]
    rows += [Metric(f"stage:{name}", f"{name} (s)", stage(name), _seconds) for name in stages]
    rows += [
        Metric("descriptor_rate", "descriptors stage (images/s)", descriptor_images_per_second,
               _rate, bound_from="stage:descriptors"),
        Metric("total_seconds", "total wall time (s)", field("total_seconds"), _seconds),
        Metric("cpu_seconds", "CPU time, every process (s)", field("cpu_seconds"), _seconds),
        Metric("images_per_second", "images/s", images_per_second, _rate,
               bound_from="total_seconds"),
        Metric("accuracy", "accuracy", field("accuracy"), _score),
        Metric("macro_f1", "macro F1", field("macro_f1"), _score),
        Metric("peak_python_mb", "peak memory, Python process (MB)", field("peak_python_mb"),
               _megabytes),
        Metric("peak_helper_mb", "peak memory, driver JVM / largest worker (MB)",
               field("peak_helper_mb"), _megabytes),
        Metric("peak_memory_mb", "peak driver memory, total (MB)", field("peak_memory_mb"),
               _megabytes),
    ]
    return rows


@dataclass(frozen=True)
class Column:
    """A value column (one summary) or a ratio column (numerator / denominator)."""

    header: str
    summary: dict | None = None
    denominator: dict | None = None
    is_ratio: bool = False

    def cell(self, metric: Metric) -> str:
        if not self.is_ratio:
            value = metric.read(self.summary) if self.summary else None
            return MISSING if value is None else metric.bound(self.summary) + metric.fmt(value)
        if not self.summary or not self.denominator:
            return MISSING
        top, bottom = metric.read(self.summary), metric.read(self.denominator)
        if top is None or not bottom:
            return MISSING
        # A bound over an exact value stays a bound ("<=" flips in the denominator); a
        # bound over a bound in the other direction says nothing: "~".
        bounds = {metric.bound(self.summary), INVERTED.get(metric.bound(self.denominator), "")}
        bounds.discard("")
        prefix = bounds.pop() if len(bounds) == 1 else ("~" if bounds else "")
        return prefix + f"{top / bottom:.2f}"


def value_column(header: str, summary: dict | None) -> Column:
    return Column(header, summary)


def ratio_column(header: str, numerator: dict | None, denominator: dict | None) -> Column:
    return Column(header, numerator, denominator, is_ratio=True)


def table_rows(columns: Sequence[Column]) -> list[Row]:
    """Header row, then one row per metric (stages: every stage any column's run has)."""
    stages = stage_names(*(column.summary for column in columns),
                         *(column.denominator for column in columns))
    rows: list[Row] = [("metric", *(column.header for column in columns))]
    rows += [(metric.label, *(column.cell(metric) for column in columns))
             for metric in metrics(stages)]
    return rows


def comparison_rows(pipeline: dict | None, reference: dict | None) -> list[Row]:
    """Rows (without header) of the two-run table: pipeline, reference, pipeline/reference."""
    return table_rows([
        value_column(HEADER[1], pipeline),
        value_column(HEADER[2], reference),
        ratio_column(HEADER[3], pipeline, reference),
    ])[1:]


def markdown_table(rows: Sequence[Row], header: Row = HEADER) -> str:
    """A Markdown table: `header`, the label column left-aligned and numbers right-aligned."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|:---|" + "---:|" * (len(header) - 1),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown(table: Sequence[Row]) -> str:
    """A Markdown table from `table_rows` output (its first row is the header)."""
    return markdown_table(table[1:], table[0])

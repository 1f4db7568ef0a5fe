"""The sweep and comparison tables: one row per sweep point or comparison variant, read from
its summary.json, and the same rows as CSV and Markdown. Pure: no Spark, no files."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from bovw.config import HistogramSettings
from bovw.image.encodings import encoding_length
from bovw.image.words import SPACES
from bovw.summary import RunSummary, listing_label

__all__ = ["NOT_FINISHED", "STAGE_COLUMNS", "comparison_cell", "comparison_columns",
           "comparison_row", "csv_table", "failed_sweep_row", "markdown_lines", "sweep_cell",
           "sweep_columns", "unfinished_comparison_row", "unfinished_sweep_row",
           "sweep_markdown", "sweep_row", "sweep_title"]

# How the comparison table names each histograms.encoding.
_ENCODING_NAMES = {"words": "visual words", "vlad": "VLAD", "fisher": "Fisher vectors"}

# The timed stages of a run, in the order the sweep table lists their seconds.
STAGE_COLUMNS = ("ingest", "descriptors", "vocabulary", "histograms", "reduction", "classifier")


def markdown_lines(titles: Sequence[str], cells: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table: its header, separator and one line per row of `cells`."""
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return lines


def csv_table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """`rows` (dicts keyed by column) as CSV text with a header line."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# ---------------------------------------------------------------- sweep

def sweep_row(name: str, values: Mapping[str, str], summary: RunSummary) -> dict[str, Any]:
    """One line of the sweep table: the point `name`, its swept `values` and its summary."""
    metrics, keypoints = summary.metrics, summary.keypoints
    row: dict[str, Any] = {"point": name, **values}
    row.update({
        "accuracy": metrics.accuracy,
        "macro_f1": metrics.macro_f1,
        "test_images": metrics.test_images,
        "classifier_iterations": metrics.classifier_iterations,
        "keypoints_mean": keypoints.mean if keypoints else None,
        "keypoints_total": keypoints.total if keypoints else None,
        "vocabulary_iterations": summary.vocabulary.iterations if summary.vocabulary else None,
        "pca_components": summary.reduction.components,
        "explained_variance": summary.reduction.explained_variance_total,
        "descriptors": "reused" if summary.reused_descriptors else "extracted",
        "status": "ok",
        "failure": "",
    })
    # A stage the point did not run (the listing of one reusing descriptors) is left
    # empty, not written as 0 seconds.
    for stage in STAGE_COLUMNS:
        row[f"seconds_{stage}"] = summary.timings.get(stage)
    row["seconds_total"] = round(summary.total_seconds, 3)
    return row


def failed_sweep_row(name: str, values: Mapping[str, str], reason: str) -> dict[str, Any]:
    """The table line of a failed point: its settings and its reason, no numbers."""
    return {"point": name, **values, "status": "failed", "failure": reason}


# The status of a point or variant a stopped command has not finished yet.
NOT_FINISHED = "not finished"


def unfinished_sweep_row(name: str, values: Mapping[str, str]) -> dict[str, Any]:
    """The table line of a point not finished yet: its settings, no numbers."""
    return {"point": name, **values, "status": NOT_FINISHED, "failure": ""}


def sweep_columns(keys: Sequence[str]) -> list[str]:
    """The sweep table's columns: the point, the swept `keys`, then the numbers."""
    return ["point", *keys, "accuracy", "macro_f1", "test_images",
            *[f"seconds_{stage}" for stage in STAGE_COLUMNS], "seconds_total",
            "keypoints_mean", "keypoints_total", "vocabulary_iterations",
            "classifier_iterations", "pca_components", "explained_variance", "descriptors",
            "status", "failure"]


def sweep_cell(column: str, value: Any) -> str:
    """A sweep table cell: seconds and keypoints with 1 decimal, other numbers with 4."""
    if isinstance(value, float):
        return f"{value:.1f}" if column.startswith(("seconds_", "keypoints_")) else f"{value:.4f}"
    return "" if value is None else str(value)


def sweep_title(column: str, keys: Sequence[str]) -> str:
    """A sweep table column's heading: a swept setting's key as given (orb.dense_step),
    "s <stage>" for seconds, the listing's marked as part of the descriptors stage's (the
    total leaves it out), other names with spaces."""
    if column in keys:
        return column
    if column == "seconds_ingest":  # a sweep point lists its images in its descriptors stage
        return f"s {listing_label('descriptors')}"
    return column.replace("seconds_", "s ").replace("_", " ")


def sweep_markdown(keys: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """The table for a README or a note: parameters, quality, seconds per stage, counts."""
    columns = [c for c in sweep_columns(keys) if c != "point"]
    titles = [sweep_title(c, keys) for c in columns]
    cells = [[sweep_cell(c, row.get(c)) for c in columns] for row in rows]
    return "\n".join(markdown_lines(titles, cells)) + "\n"


# ---------------------------------------------------------------- comparison

def comparison_row(name: str, summary: RunSummary, orb_colour: bool | None) -> dict[str, Any]:
    """One side-by-side line from a variant's summary; `orb_colour` says whether an ORB
    variant has the colour block (None: not an ORB variant)."""
    timings, metrics, counts = summary.timings, summary.metrics, summary.counts
    reduction = summary.reduction
    feature_seconds = summary.feature_seconds
    total = summary.total_seconds
    images = counts.accepted
    if orb_colour is not None:
        k = summary.vocabulary.k if summary.vocabulary else None
        recorded = summary.feature_settings
        colour_bins = recorded.colour_bins if orb_colour else 0
        tone_bins, levels, power = recorded.tone_bins, recorded.pyramid_levels, recorded.power
        space = recorded.space
        kind = recorded.encoding if recorded.encoding in _ENCODING_NAMES else "words"
        encoding = HistogramSettings(pyramid_levels=levels, encoding=kind)
        dimension = (encoding_length((k or 0, SPACES[space]), encoding)
                     + tone_bins + colour_bins)
        features = (f"ORB {_ENCODING_NAMES[kind]}, k={k}"
                    + (" (bits)" if space == "bits" else "")
                    + (f", {levels} pyramid levels" if levels > 1 else "")
                    + (f", power {power:g}" if power != 1.0 else "")
                    + (f" + grey tone ({tone_bins} bins)" if tone_bins else "")
                    + (f" + HSV colour ({colour_bins} bins)" if colour_bins else ""))
    else:
        dimension = reduction.input_dimension
        features = summary.features if summary.features is not None else "CNN features"
    external = name == "cnn" and "external" in str(summary.features or "")
    return {
        "variant": name, "features": features, "dimension": dimension,
        "pca_components": reduction.components,
        "accuracy": metrics.accuracy, "macro_f1": metrics.macro_f1,
        "test_images": metrics.test_images, "images": images,
        "missing_images": (counts.missing_features if counts.missing_features is not None
                           else counts.rejected),
        # Seconds as summary.json holds them (3 decimals); a stage the variant has not
        # (a CNN variant's vocabulary and histograms) left empty rather than 0.
        "seconds_features": round(feature_seconds, 3),
        **{f"seconds_{stage}": timings.get(stage)
           for stage in ("vocabulary", "histograms", "reduction", "classifier")},
        "seconds_total": round(total, 3),
        "images_per_second_features": (None if external or not feature_seconds
                                       else round(images / feature_seconds, 1)),
        "images_per_second_total": None if external or not total else round(images / total, 1),
    }


def unfinished_comparison_row(name: str) -> dict[str, Any]:
    """The table line of a variant not finished yet: its name, no numbers."""
    return {"variant": name, "features": f"({NOT_FINISHED})"}


def comparison_columns() -> list[str]:
    """The comparison table's columns, in order."""
    return ["variant", "features", "dimension", "pca_components", "accuracy", "macro_f1",
            "test_images", "images", "missing_images", "seconds_features",
            "seconds_vocabulary", "seconds_histograms", "seconds_reduction",
            "seconds_classifier", "seconds_total", "images_per_second_features",
            "images_per_second_total"]


def comparison_cell(column: str, value: Any) -> str:
    """A comparison table cell: accuracy and macro F1 with 4 decimals, other numbers 1."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if column in ("accuracy", "macro_f1") else f"{value:.1f}"
    return str(value)

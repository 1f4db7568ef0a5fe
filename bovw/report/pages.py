"""report.html for a run, a sweep or a comparison: one self-contained page, plots embedded.

The sections are built from the small data of bovw.report.gather and drawn by
bovw.report.plots into bovw.report.html pages.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import SparkSession

from bovw.config import redacted_settings
from bovw.report.confusion import class_numbers, confused_pairs_body
from bovw.report.gather import RunData, gather_run
from bovw.report.html import Section, escape, fmt, html_table, page, pct, png_tag
from bovw.report.plots import (
    plot_against,
    plot_bars,
    plot_confusion,
    plot_keypoints,
    plot_pca,
    plot_variance,
)
from bovw.spark import storage
from bovw.summary import ImageCounts, Reduction, RunSummary

__all__ = ["REPORT_NAME", "SweepPointResult", "metrics_rows", "per_class_table", "run_sections",
           "sample_grid", "sweep_plots", "write_compare_report", "write_run_report",
           "write_sweep_report"]

REPORT_NAME = "report.html"


def metrics_rows(summary: RunSummary, metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, value) pairs of a run's headline numbers, from its summary and its
    metrics.json (`metrics`)."""
    counts, keypoints = summary.counts, summary.keypoints
    vocabulary, reduction, timings = summary.vocabulary, summary.reduction, summary.timings
    rows = [
        ("accuracy", pct(metrics.get("accuracy"))),
        ("macro F1", fmt(metrics.get("macro_f1"))),
        ("weighted precision / recall / F1",
         " / ".join(fmt(metrics.get(k)) for k in
                    ("weighted_precision", "weighted_recall", "weighted_f1"))),
        ("Test images", fmt(metrics.get("test_images"))),
    ]
    if metrics.get("test_only_classes"):
        rows.append(("not scored: Test images of classes without Training images",
                     f"{metrics.get('test_only_images')} "
                     f"({', '.join(metrics['test_only_classes'])})"))
    if counts != ImageCounts():
        per_split = ", ".join(f"{k} {v}" for k, v in sorted(counts.per_split.items()))
        rows.append(("images read", f"{counts.images} ({counts.rejected} rejected; "
                                    f"{per_split}; {counts.classes} classes)"))
    if counts.other_size_note():
        rows.append(("other sizes", counts.other_size_note()))
    if counts.missing_features is not None:
        rows.append(("images without features", str(counts.missing_features)))
    if keypoints:
        rows.append(("keypoints per image",
                     f"mean {keypoints.mean}, median {keypoints.median}, min {keypoints.min}, "
                     f"max {keypoints.max}; {keypoints.images_without_keypoints} images "
                     "without keypoints"))
    if vocabulary:
        rows.append(("vocabulary", f"k = {vocabulary.k} from {vocabulary.sample_descriptors} "
                                   f"sampled descriptors, {vocabulary.iterations} KMeans "
                                   "iterations"))
    if summary.features:
        rows.append(("features", summary.features))
    if reduction != Reduction():
        rows.append(("PCA", f"{reduction.components_text()}, "
                            f"{pct(reduction.explained_variance_total)} of variance"))
    if timings:
        rows.append(("seconds per stage",
                     ", ".join(f"{stage} {seconds:.1f}"
                               for stage, seconds in summary.stage_seconds())))
        rows.append(("total seconds", f"{summary.total_seconds:.1f}"))
    return rows


def run_sections(data: RunData, prefix: str = "", level: int = 2) -> list[Section]:
    """Every section of a run report."""
    summary, metrics = data.summary, data.metrics
    classes = metrics.get("classes", [])
    sections = [Section(prefix + "Metrics",
                        html_table(["", ""], metrics_rows(summary, metrics), css="kv"), level)]
    per_class = metrics.get("per_class", {})
    if per_class:
        rows, marks = [], []
        for label in classes:
            m = per_class.get(label, {})
            rows.append([label, fmt(m.get("precision")), fmt(m.get("recall")),
                         fmt(m.get("f1")), m.get("support", 0)])
            marks.append(["", "", "", "low" if m.get("f1", 1.0) < 0.5 else "", ""])
        sections.append(Section(prefix + "Per class (Test)", html_table(*class_numbers(
            ["class", "precision", "recall", "F1", "support"], rows, marks)), level))
    test_only = metrics.get("test_only_predictions", {})
    if test_only:
        rows = [[label, sum(guesses.values()), ", ".join(
            f"{guess} {count}" for guess, count in guesses.items())]
            for label, guesses in test_only.items()]
        sections.append(Section(prefix + "Classes only in Test (not scored)", (
            '<p class="note">These classes have Test images but no Training images: the '
            "model cannot predict them, so their images are left out of the accuracy, the "
            "F1 scores, the per-class table and the confusion matrix.</p>"
            + html_table(["class", "Test images", "predicted as"], rows)), level))
    if metrics.get("confusion_matrix"):
        sections.append(Section(prefix + "Confusion matrix", png_tag(
            plot_confusion(classes, metrics["confusion_matrix"]), "confusion matrix"), level))
        sections.append(Section(prefix + "Most confused classes (Test)", confused_pairs_body(
            classes, metrics["confusion_matrix"]), level))
    if data.samples:
        sections.append(Section(prefix + "Sample Test images", sample_grid(data.samples), level))
    if data.pca_points:
        sections.append(Section(prefix + "PCA projection", png_tag(
            plot_pca(data.pca_points, sorted({p[0] for p in data.pca_points})),
            "PCA projection"), level))
    variance = summary.reduction.explained_variance
    if variance:
        sections.append(Section(prefix + "Explained variance per component", png_tag(
            plot_variance(variance), "explained variance"), level))
    if data.keypoint_counts:
        sections.append(Section(prefix + "Keypoints per image",
                                _keypoints_body(data.keypoint_counts, summary), level))
    config = summary.config
    if config:
        # Masked again: a run written by an older bovw saved its secrets in plain text.
        sections.append(Section(prefix + "Configuration",
                                "<details><summary>effective settings</summary><pre>"
                                + escape(json.dumps(redacted_settings(config), indent=2))
                                + "</pre></details>",
                                level))
    return sections


def _keypoints_body(counts: Sequence[tuple[int, int]], summary: RunSummary) -> str:
    """The histogram of keypoints per image, or one sentence when every image has the same
    number (a dense grid on images of one size): a single bar says nothing more."""
    if len(counts) > 1:
        mean = summary.keypoints.mean if summary.keypoints else None
        return png_tag(plot_keypoints(counts, mean), "keypoints per image")
    (count, images), = counts
    recorded = summary.feature_settings
    if recorded.sampling == "dense":
        scales = ", ".join(str(scale) for scale in recorded.dense_scales)
        why = (f" (orb.sampling = dense: a grid every {recorded.dense_step} px at scales "
               f"{scales}, so the count depends only on the image size)")
    else:
        why = ""
    return (f'<p class="note">Every one of the {images} images has {count} descriptors'
            f"{escape(why)}.</p>")


def sample_grid(samples: Sequence[tuple[str, str, str, bytes | None]]) -> str:
    """Thumbnails with their true and predicted labels; wrong predictions in red."""
    wrong = sum(1 for s in samples if s[1] != s[2])
    cells = []
    for path, label, prediction, png in samples:
        is_wrong = label != prediction
        image = (f'<img alt="{escape(path)}" src="data:image/png;base64,'
                 f'{base64.b64encode(png).decode("ascii")}">' if png else
                 '<div style="height:120px">(unreadable)</div>')
        verdict = ('<span class="mark">&#10007; wrong</span><br>' if is_wrong else "&#10003; ")
        cells.append(f'<figure class="{"wrong" if is_wrong else "right"}" '
                     f'title="{escape(path)}">{image}{verdict}true: <b>{escape(label)}</b><br>'
                     f'predicted: <b>{escape(prediction)}</b></figure>')
    note = (f'<p class="note">{len(samples)} Test images in class order: {wrong} wrongly '
            f'classified (red; up to half the images are chosen among them) and '
            f'{len(samples) - wrong} classified right.</p>')
    return note + '<div class="grid">' + "".join(cells) + "</div>"


def write_run_report(spark: SparkSession, root: str, title: str | None = None) -> str:
    """Write `root/report.html` for a finished run; returns its path."""
    data = gather_run(spark, root)
    accuracy = data.metrics.get("accuracy")
    heading = title or f"bovw run: {pct(accuracy)} accuracy"
    path = storage.join(root, REPORT_NAME)
    storage.write_text(spark, path, page(heading, data.root, run_sections(data)))
    return path


@dataclass(frozen=True)
class SweepPointResult:
    """One sweep point as the sweep report draws it.

    `values` maps each swept setting to its value at this point (as given on the command
    line); `seconds` maps each timed stage, and "total", to its seconds, in the order the
    curves list them. A failed point has no numbers.
    """

    values: Mapping[str, str]
    accuracy: float | None = None
    macro_f1: float | None = None
    seconds: Mapping[str, float] = field(default_factory=dict)
    failed: bool = False


def sweep_plots(parameters: Sequence[tuple[str, Sequence[str]]],
                points: Sequence[SweepPointResult]) -> dict[str, bytes]:
    """`quality` and `time` PNGs: metrics and seconds per stage against the first parameter.

    `parameters` are (setting, values) in grid order. With several parameters, one line
    per combination of the others. Failed points have no numbers and are left out (a gap
    in the curves); none left: no plots.
    """
    points = [point for point in points if not point.failed]
    if not points:
        return {}
    first, *others = [key for key, _values in parameters]
    groups: dict[str, list[SweepPointResult]] = {}
    for point in points:
        name = ", ".join(f"{k}={point.values[k]}" for k in others)
        groups.setdefault(name, []).append(point)
    xs = [str(v) for v in dict(parameters)[first]]
    quality: dict[str, list] = {}
    for name, members in groups.items():
        by_x = {str(p.values[first]): p for p in members}
        suffix = f" ({name})" if name else ""
        quality["accuracy" + suffix] = [by_x[x].accuracy if x in by_x else None for x in xs]
        quality["macro F1" + suffix] = [by_x[x].macro_f1 if x in by_x else None for x in xs]
    timing: dict[str, list] = {}
    members = next(iter(groups.values()))
    by_x = {str(p.values[first]): p for p in members}
    for stage in dict.fromkeys(stage for point in members for stage in point.seconds):
        values = [by_x[x].seconds.get(stage) if x in by_x else None for x in xs]
        if any(values):
            timing[stage] = values
    return {
        "quality": plot_against(first, xs, quality, "percent", f"Accuracy and macro F1 against "
                                f"{first}", percent=True),
        "time": plot_against(first, xs, timing, "seconds", f"Seconds per stage against {first}"
                             + (f" ({next(iter(groups))})" if others else "")),
    }


def write_sweep_report(spark: SparkSession, root: str,
                       parameters: Sequence[tuple[str, Sequence[str]]],
                       points: Sequence[SweepPointResult], table_html: str,
                       best_point: str | None) -> str:
    """Write `root/report.html` (and the curves as PNG files) for the sweep at `root`:
    its table (`table_html`), the curves of `points`, and the sections of `best_point`'s
    run folder (points/<best_point>). Returns the report's path."""
    plots = sweep_plots(parameters, points) if points else {}
    for name, png in plots.items():
        storage.write_bytes(spark, storage.join(root, f"sweep_{name}.png"), png)
    sections = [Section("Sweep table", table_html)]
    if plots:
        sections.append(Section("Curves", '<div class="row"><div>' + png_tag(
            plots["quality"], "quality curve") + "</div><div>" + png_tag(
            plots["time"], "time curve") + "</div></div>"))
    if best_point:
        data = gather_run(spark, storage.join(root, "points", best_point))
        sections.append(Section(f"Best point: {best_point}", "<p class=\"note\">The sections "
                                "below describe the point with the highest accuracy; each "
                                "point's folder has its own report.html.</p>"))
        sections.extend(run_sections(data, level=3))
    keys = ", ".join(key for key, _values in parameters)
    path = storage.join(root, REPORT_NAME)
    storage.write_text(spark, path, page(f"bovw sweep over {keys}", root, sections))
    return path


def write_compare_report(spark: SparkSession, root: str, table_html: str,
                         variants: Sequence[tuple[str, str]]) -> str:
    """Write `root/report.html` for a comparison.

    `variants` lists (name, run folder) of the finished variants, in table order.
    """
    gathered = [(name, gather_run(spark, folder, sample_images=0)) for name, folder in variants]
    sections = [Section("Side by side", table_html)]
    if gathered:
        names = [name for name, _data in gathered]
        sections.append(Section("Accuracy and macro F1", png_tag(plot_bars(
            names, {"accuracy %": [100 * (d.metrics.get("accuracy") or 0) for _n, d in gathered],
                    "macro F1 x100": [100 * (d.metrics.get("macro_f1") or 0)
                                      for _n, d in gathered]},
            "percent", "Test accuracy and macro F1 by feature type"), "accuracy bars")))
        sections.append(Section("F1 per class", per_class_table(gathered)))
        blocks = []
        for name, data in gathered:
            confusion = png_tag(plot_confusion(data.metrics.get("classes", []),
                                               data.metrics.get("confusion_matrix", []),
                                               title=f"{name}: confusion matrix"), name)
            projection = (png_tag(plot_pca(data.pca_points,
                                           sorted({p[0] for p in data.pca_points}),
                                           title=f"{name}: PCA"), name)
                          if data.pca_points else "")
            # Many classes need the full width for a readable matrix: then one below the other.
            layout = "row" if len(data.metrics.get("classes", [])) <= 10 else "stack"
            pairs = (confused_pairs_body(data.metrics.get("classes", []),
                                         data.metrics["confusion_matrix"])
                     if data.metrics.get("confusion_matrix") else "")
            blocks.append(f"<h3>{escape(name)}</h3><div class=\"{layout}\"><div>{confusion}"
                          f"</div><div>{projection}</div></div>{pairs}")
        sections.append(Section("Confusion matrices and PCA projections", "".join(blocks)))
    path = storage.join(root, REPORT_NAME)
    storage.write_text(spark, path, page("bovw comparison: visual words vs CNN features",
                                         root, sections))
    return path


def per_class_table(gathered: Sequence[tuple[str, RunData]]) -> str:
    """Classes down, variants across; the best F1 of each class in bold."""
    classes: list[str] = []
    for _name, data in gathered:
        for label in data.metrics.get("classes", []):
            if label not in classes:
                classes.append(label)
    rows, marks = [], []
    for label in classes:
        values = [data.metrics.get("per_class", {}).get(label, {}).get("f1")
                  for _name, data in gathered]
        best = max((v for v in values if v is not None), default=None)
        rows.append([label, *[fmt(v, 3) for v in values]])
        marks.append(["", *["best" if v is not None and best is not None and
                            math.isclose(v, best) and len(values) > 1 else "" for v in values]])
    return html_table(*class_numbers(["class", *[name for name, _data in gathered]], rows,
                                     marks))

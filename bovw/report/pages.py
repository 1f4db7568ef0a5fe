"""report.html for a run, a sweep or a comparison: one self-contained page, plots embedded.

Only small aggregates reach the driver: the confusion matrix (classes^2 numbers), a capped
sample of PCA points, the keypoint counts grouped by Spark, and at most SAMPLE_IMAGES test
images read one by one for the thumbnail grid.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render to PNG bytes only

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from PIL import Image  # noqa: E402
from pyspark.ml.functions import vector_to_array  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from bovw.config import redacted_settings  # noqa: E402
from bovw.pipeline.ingest import TEST  # noqa: E402
from bovw.pipeline.layout import RunLayout  # noqa: E402
from bovw.spark import storage  # noqa: E402

_NUMBER = re.compile(r"-?[0-9.,]+%?|")
PCA_POINTS = 2000
SAMPLE_IMAGES = 24
THUMBNAIL_SIDE = 120
REPORT_NAME = "report.html"

_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;color:#222;
background:#f6f7f9}
main{max-width:1240px;margin:0 auto;padding:24px 32px;background:#fff}
.scroll{overflow-x:auto;max-width:100%}
h1{font-size:26px;margin:0 0 4px} h2{font-size:20px;margin:32px 0 8px;
border-bottom:2px solid #e3e6ea;padding-bottom:4px} h3{font-size:16px;margin:20px 0 6px}
.sub{color:#666;margin:0 0 16px;font-size:14px;word-break:break-all}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px}
th,td{border:1px solid #dde1e6;padding:4px 8px;text-align:right}
th{background:#eef1f4} td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fafbfc} td.best{font-weight:bold;background:#e3f4e5}
td.low{background:#fde8e8} td.text{text-align:left}
.kv td:first-child{font-weight:600} .kv td{text-align:left}
table.wide{font-size:12px} table.wide th,table.wide td{padding:3px 6px}
img.plot{max-width:100%;border:1px solid #eee;margin:4px 0}
.row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.row>div{flex:1 1 420px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(138px,1fr));gap:10px}
figure{margin:0;padding:6px;border:2px solid #c9e7cd;border-radius:6px;background:#fbfefb;
font-size:11px;text-align:center}
figure.wrong{border-color:#e05656;background:#fff5f5}
figure img{width:120px;height:120px;object-fit:contain;display:block;margin:0 auto 4px}
figure .mark{font-weight:bold;color:#c62828}
.note{color:#555;font-size:13px}
details{margin:8px 0} summary{cursor:pointer;color:#345}
pre{background:#f3f4f6;padding:8px;font-size:12px;overflow:auto;max-height:400px}
"""


@dataclass
class Section:
    """A titled block of HTML."""

    title: str
    body: str
    level: int = 2


@dataclass
class RunData:
    """What a run report shows, all of it small."""

    root: str
    summary: dict[str, Any]
    metrics: dict[str, Any]
    pca_points: list[tuple[str, str, float, float]] = field(default_factory=list)
    keypoint_counts: list[tuple[int, int]] = field(default_factory=list)
    samples: list[tuple[str, str, str, bytes | None]] = field(default_factory=list)


# ---------------------------------------------------------------- HTML pieces

def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def png_tag(png: bytes, alt: str) -> str:
    """An <img> with the PNG embedded as a data URI."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="plot" alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
               classes: Sequence[Sequence[str]] | None = None, css: str = "") -> str:
    """A table; `classes` optionally gives each cell a CSS class (e.g. "best")."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, value in enumerate(row):
            cls = classes[i][j] if classes and classes[i][j] else ""
            if j and not _NUMBER.fullmatch(str(value)):
                cls = (cls + " text").strip()
            attr = f' class="{cls}"' if cls else ""
            cells.append(f"<td{attr}>{escape(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    attr = f' class="{css}"' if css else ""
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    table = f"<table{attr}>{thead}<tbody>{''.join(body)}</tbody></table>"
    return f'<div class="scroll">{table}</div>' if css == "wide" else table


def page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole self-contained HTML document."""
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>",
             f"<h1>{escape(title)}</h1><p class=\"sub\">{escape(subtitle)}</p>"]
    for section in sections:
        parts.append(f"<h{section.level}>{escape(section.title)}</h{section.level}>{section.body}")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}%"


# ---------------------------------------------------------------- plots

def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _class_colours(count: int) -> list:
    if count <= 10:
        return list(plt.get_cmap("tab10").colors)[:count]
    # Dark shades first, then light ones: neighbouring classes never share a hue.
    tab20 = list(plt.get_cmap("tab20").colors)
    palette = tab20[0::2] + tab20[1::2] + list(plt.get_cmap("tab20b").colors)
    return [palette[i % len(palette)] for i in range(count)]


def plot_confusion(classes: Sequence[str], matrix: Sequence[Sequence[int]],
                   title: str = "Confusion matrix (Test)") -> bytes:
    """Heat map coloured by the share of each true class; counts written in the cells."""
    counts = np.asarray(matrix, dtype=float)
    n = len(classes)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    side = max(4.5, 0.42 * n + 2.5)
    figure, axes = plt.subplots(figsize=(side + 1.2, side))
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(n), labels=classes, rotation=90, fontsize=8 if n > 12 else 9)
    axes.set_yticks(range(n), labels=classes, fontsize=8 if n > 12 else 9)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    if n <= 40:
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    axes.text(j, i, int(counts[i, j]), ha="center", va="center",
                              fontsize=7 if n > 12 else 9,
                              color="white" if shares[i, j] > 0.6 else
                              ("#b71c1c" if i != j else "black"))
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of true class")
    return _png(figure)


def plot_pca(points: Sequence[tuple[str, str, float, float]], classes: Sequence[str],
             title: str = "PCA projection (first two components)") -> bytes:
    """Scatter of the first two PCA components, one colour per class; Test rows as x."""
    figure, axes = plt.subplots(figsize=(9, 6.5))
    colours = dict(zip(classes, _class_colours(len(classes)), strict=True))
    for label in classes:
        labelled = False
        for split, marker in (("Training", "o"), (TEST, "x")):
            xs = [p[2] for p in points if p[0] == label and p[1] == split]
            ys = [p[3] for p in points if p[0] == label and p[1] == split]
            if xs:
                axes.scatter(xs, ys, s=12, alpha=0.65, marker=marker, color=colours[label],
                             label=None if labelled else label)
                labelled = True
    axes.set_xlabel("component 1")
    axes.set_ylabel("component 2")
    axes.set_title(f"{title}: {len(points)} images (o Training, x Test)")
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False,
                ncol=1 if len(classes) <= 26 else 2, markerscale=1.5)
    return _png(figure)


def plot_variance(variance: Sequence[float]) -> bytes:
    """Explained variance per component (bars) and its running total (line)."""
    figure, axes = plt.subplots(figsize=(9, 3.6))
    positions = np.arange(1, len(variance) + 1)
    axes.bar(positions, variance, color="#4c78a8", width=0.85)
    axes.set_xlabel("component")
    axes.set_ylabel("explained variance (share)")
    other = axes.twinx()
    other.plot(positions, np.cumsum(variance), color="#e45756", linewidth=2)
    other.set_ylim(0, 1.02)
    other.set_ylabel("cumulative", color="#e45756")
    axes.set_title(f"Explained variance: {len(variance)} components, "
                   f"{100 * float(np.sum(variance)):.1f}% in total")
    return _png(figure)


def plot_keypoints(counts: Sequence[tuple[int, int]], mean: float | None) -> bytes:
    """Histogram of keypoints per image (from Spark's groupBy counts)."""
    figure, axes = plt.subplots(figsize=(9, 3.4))
    values = np.array([c[0] for c in counts], dtype=float)
    weights = np.array([c[1] for c in counts], dtype=float)
    top = values.max() if len(values) else 1.0
    bins = int(min(60, max(10, top + 1)))
    axes.hist(values, bins=bins, weights=weights, color="#72b7b2", edgecolor="white")
    if mean is not None:
        axes.axvline(mean, color="#e45756", linestyle="--", label=f"mean {mean:.1f}")
        axes.legend()
    axes.set_xlabel("keypoints per image")
    axes.set_ylabel("images")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(f"Keypoints per image ({int(weights.sum())} images)")
    return _png(figure)


def _numeric(values: Sequence[str]) -> list[float] | None:
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def plot_against(parameter: str, xs: Sequence[str], series: dict[str, Sequence[float]],
                 ylabel: str, title: str, percent: bool = False) -> bytes:
    """Lines of each series against the parameter's values (log axis for wide ranges)."""
    figure, axes = plt.subplots(figsize=(8, 4))
    numbers = _numeric(xs)
    positions = numbers if numbers is not None else list(range(len(xs)))
    for name, ys in series.items():
        shown = [100 * y if percent and y is not None else y for y in ys]
        axes.plot(positions, shown, marker="o", label=name)
    if numbers is not None and min(numbers) > 0 and max(numbers) / min(numbers) >= 10:
        axes.set_xscale("log")
    axes.set_xticks(positions, labels=list(xs))
    axes.minorticks_off()
    axes.set_xlabel(parameter)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _png(figure)


def plot_bars(names: Sequence[str], series: dict[str, Sequence[float]], ylabel: str,
              title: str) -> bytes:
    """Grouped bars: one group per name, one bar per series."""
    figure, axes = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / max(1, len(series))
    positions = np.arange(len(names))
    for i, (label, values) in enumerate(series.items()):
        bars = axes.bar(positions + i * width - 0.4 + width / 2, values, width, label=label)
        axes.bar_label(bars, fmt="%.1f", fontsize=8)
    axes.set_xticks(positions, labels=list(names))
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.set_ylim(0, max([v for values in series.values() for v in values] + [1]) * 1.12)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    axes.grid(alpha=0.3, axis="y")
    return _png(figure)


# ---------------------------------------------------------------- run data

def gather_run(spark: SparkSession, root: str, pca_points: int = PCA_POINTS,
               sample_images: int = SAMPLE_IMAGES) -> RunData:
    """Read a finished run folder's small outputs, and aggregate its features with Spark."""
    layout = RunLayout(root.rstrip("/"))
    summary = json.loads(storage.read_text(spark, layout.summary))
    metrics = json.loads(storage.read_text(spark, layout.metrics))
    data = RunData(layout.root, summary, metrics)
    if not storage.exists(spark, layout.features):
        return data
    features = spark.read.parquet(layout.features).withColumn(
        "_order", F.xxhash64(F.col("path")))
    if "pca_features" in features.columns:
        coordinates = vector_to_array("pca_features")
        rows = (features.orderBy("_order").limit(pca_points)
                .select("label", "split", coordinates[0].alias("x"),
                        F.when(F.size(coordinates) > 1, coordinates[1]).otherwise(0.0)
                        .alias("y"))
                .collect())
        data.pca_points = [(r["label"], r["split"], float(r["x"]), float(r["y"])) for r in rows]
    if "n_keypoints" in features.columns:
        data.keypoint_counts = sorted(
            (int(r["n_keypoints"]), int(r["count"]))
            for r in features.groupBy("n_keypoints").count().collect())
    test = features.filter(F.col("split") == TEST)
    wrong = (test.filter(F.col("label") != F.col("prediction")).orderBy("_order")
             .limit(sample_images // 2).select("path", "label", "prediction").collect())
    right = (test.filter(F.col("label") == F.col("prediction")).orderBy("_order")
             .limit(sample_images - len(wrong)).select("path", "label", "prediction").collect())
    chosen = sorted(wrong + right, key=lambda r: (r["label"], r["path"]))
    data.samples = [(r["path"], r["label"], r["prediction"], _thumbnail(spark, r["path"]))
                    for r in chosen]
    return data


def _thumbnail(spark: SparkSession, path: str) -> bytes | None:
    """A small PNG of the image at `path`, or None when it cannot be read any more."""
    try:
        image = Image.open(io.BytesIO(storage.read_bytes(spark, path)))
        image.draft("RGB", (THUMBNAIL_SIDE * 2, THUMBNAIL_SIDE * 2))
        image = image.convert("RGB")
        image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    except Exception:  # a moved or unreadable file must not stop the report
        return None


# ---------------------------------------------------------------- run sections

def metrics_rows(summary: dict[str, Any], metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, value) pairs of the run's headline numbers."""
    counts, keypoints = summary.get("counts", {}), summary.get("keypoints", {})
    vocabulary, reduction = summary.get("vocabulary", {}), summary.get("reduction", {})
    timings = summary.get("timings_seconds", {})
    rows = [
        ("accuracy", _pct(metrics.get("accuracy"))),
        ("macro F1", _fmt(metrics.get("macro_f1"))),
        ("weighted precision / recall / F1",
         " / ".join(_fmt(metrics.get(k)) for k in
                    ("weighted_precision", "weighted_recall", "weighted_f1"))),
        ("Test images", _fmt(metrics.get("test_images"))),
    ]
    if counts:
        per_split = ", ".join(f"{k} {v}" for k, v in sorted(counts.get("per_split", {}).items()))
        rows.append(("images read", f"{counts.get('images')} ({counts.get('rejected', 0)} "
                                    f"rejected; {per_split}; {counts.get('classes')} classes)"))
    if counts.get("missing_features") is not None:
        rows.append(("images without features", str(counts["missing_features"])))
    if keypoints:
        rows.append(("keypoints per image",
                     f"mean {keypoints.get('mean')}, median {keypoints.get('median')}, "
                     f"min {keypoints.get('min')}, max {keypoints.get('max')}; "
                     f"{keypoints.get('images_without_keypoints')} images without keypoints"))
    if vocabulary:
        rows.append(("vocabulary", f"k = {vocabulary.get('k')} from "
                                   f"{vocabulary.get('sample_descriptors')} sampled descriptors, "
                                   f"{vocabulary.get('iterations')} KMeans iterations"))
    if summary.get("features"):
        rows.append(("features", str(summary["features"])))
    if reduction:
        rows.append(("PCA", f"{reduction.get('components')} components, "
                            f"{_pct(reduction.get('explained_variance_total'))} of variance"))
    if timings:
        rows.append(("seconds per stage",
                     ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in timings.items())))
        rows.append(("total seconds", f"{sum(timings.values()):.1f}"))
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
            rows.append([label, _fmt(m.get("precision")), _fmt(m.get("recall")),
                         _fmt(m.get("f1")), m.get("support", 0)])
            marks.append(["", "", "", "low" if m.get("f1", 1.0) < 0.5 else "", ""])
        sections.append(Section(prefix + "Per class (Test)", html_table(
            ["class", "precision", "recall", "F1", "support"], rows, marks), level))
    if metrics.get("confusion_matrix"):
        sections.append(Section(prefix + "Confusion matrix", png_tag(
            plot_confusion(classes, metrics["confusion_matrix"]), "confusion matrix"), level))
    if data.samples:
        sections.append(Section(prefix + "Sample Test images", sample_grid(data.samples), level))
    if data.pca_points:
        sections.append(Section(prefix + "PCA projection", png_tag(
            plot_pca(data.pca_points, sorted({p[0] for p in data.pca_points})),
            "PCA projection"), level))
    variance = summary.get("reduction", {}).get("explained_variance")
    if variance:
        sections.append(Section(prefix + "Explained variance per component", png_tag(
            plot_variance(variance), "explained variance"), level))
    if data.keypoint_counts:
        sections.append(Section(prefix + "Keypoints per image",
                                _keypoints_body(data.keypoint_counts, summary), level))
    config = summary.get("config")
    if config:
        # Masked again: a run written by an older bovw saved its secrets in plain text.
        sections.append(Section(prefix + "Configuration",
                                "<details><summary>effective settings</summary><pre>"
                                + escape(json.dumps(redacted_settings(config), indent=2))
                                + "</pre></details>",
                                level))
    return sections


def _keypoints_body(counts: Sequence[tuple[int, int]], summary: dict[str, Any]) -> str:
    """The histogram of keypoints per image, or one sentence when every image has the same
    number (a dense grid on images of one size): a single bar says nothing more."""
    if len(counts) > 1:
        return png_tag(plot_keypoints(counts, summary.get("keypoints", {}).get("mean")),
                       "keypoints per image")
    (count, images), = counts
    orb = summary.get("config", {}).get("orb", {})
    if orb.get("sampling") == "dense":
        scales = ", ".join(str(scale) for scale in orb.get("dense_scales", []))
        why = (f" (orb.sampling = dense: a grid every {orb.get('dense_step')} px at scales "
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
    note = (f'<p class="note">{len(samples)} Test images: {wrong} wrongly classified (red, '
            f'taken first) and {len(samples) - wrong} right ones.</p>')
    return note + '<div class="grid">' + "".join(cells) + "</div>"


def write_run_report(spark: SparkSession, root: str, title: str | None = None) -> str:
    """Write `root/report.html` for a finished run; returns its path."""
    data = gather_run(spark, root)
    accuracy = data.metrics.get("accuracy")
    heading = title or f"bovw run: {_pct(accuracy)} accuracy"
    path = storage.join(root, REPORT_NAME)
    storage.write_text(spark, path, page(heading, data.root, run_sections(data)))
    return path


# ---------------------------------------------------------------- sweep

def sweep_plots(parameters: Sequence[tuple[str, Sequence[str]]],
                rows: Sequence[dict[str, Any]]) -> dict[str, bytes]:
    """`quality` and `time` PNGs: metrics and seconds per stage against the first parameter.

    With several parameters, one line per combination of the others. Failed points have
    no numbers and are left out (a gap in the curves); none left: no plots.
    """
    from bovw.experiments.sweep import STAGE_COLUMNS

    rows = [row for row in rows if row.get("status") != "failed"]
    if not rows:
        return {}
    first, *others = [key for key, _values in parameters]
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        name = ", ".join(f"{k}={row[k]}" for k in others)
        groups.setdefault(name, []).append(row)
    xs = [str(v) for v in dict(parameters)[first]]
    quality: dict[str, list] = {}
    for name, members in groups.items():
        by_x = {str(r[first]): r for r in members}
        suffix = f" ({name})" if name else ""
        quality["accuracy" + suffix] = [by_x[x]["accuracy"] if x in by_x else None for x in xs]
        quality["macro F1" + suffix] = [by_x[x]["macro_f1"] if x in by_x else None for x in xs]
    timing: dict[str, list] = {}
    members = next(iter(groups.values()))
    by_x = {str(r[first]): r for r in members}
    for stage in (*STAGE_COLUMNS, "total"):
        values = [by_x[x][f"seconds_{stage}"] if x in by_x else None for x in xs]
        if any(values):
            timing[stage] = values
    return {
        "quality": plot_against(first, xs, quality, "percent", f"Accuracy and macro F1 against "
                                f"{first}", percent=True),
        "time": plot_against(first, xs, timing, "seconds", f"Seconds per stage against {first}"
                             + (f" ({next(iter(groups))})" if others else "")),
    }


def write_sweep_report(spark: SparkSession, root: str, parameters, rows: Sequence[dict],
                       table_html: str, best_point: str | None) -> str:
    """Write `root/report.html` (and the curves as PNG files); returns the report's path."""
    plots = sweep_plots(parameters, rows) if rows else {}
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


# ---------------------------------------------------------------- comparison

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
            blocks.append(f"<h3>{escape(name)}</h3><div class=\"{layout}\"><div>{confusion}"
                          f"</div><div>{projection}</div></div>")
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
        rows.append([label, *[_fmt(v, 3) for v in values]])
        marks.append(["", *["best" if v is not None and best is not None and
                            math.isclose(v, best) and len(values) > 1 else "" for v in values]])
    return html_table(["class", *[name for name, _data in gathered]], rows, marks)

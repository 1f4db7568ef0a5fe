"""The report's plots, each rendered to PNG bytes with matplotlib (no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display: render to PNG bytes only

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import PowerNorm  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from bovw.columns import TEST, TRAIN  # noqa: E402
from bovw.report.confusion import axis_ticks, numbered  # noqa: E402

__all__ = ["plot_against", "plot_bars", "plot_confusion", "plot_keypoints", "plot_pca",
           "plot_variance"]


# The width of a report page's plots (bovw.report.html: a 1,240 px page less its padding),
# at _png's 100 dpi, colour bar and labels included.
_PAGE_INCHES = 11.0


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
    """Heat map coloured by the share of each true class; up to NAMED_CLASSES_MAX classes
    every class named and its counts written in the cells, beyond that the classes
    numbered as the per-class table numbers them (bovw.report.confusion), at the page's
    width, on a square-root colour scale that keeps a few stray images visible."""
    counts = np.asarray(matrix, dtype=float)
    n = len(classes)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    positions, labels = axis_ticks(classes)
    if numbered(n):
        # 131 named classes made a 4,776 x 4,355 px image (3.7 s to draw) that the page
        # shrinks to a quarter: neither names nor stray images could be made out.
        figure, axes = plt.subplots(figsize=(_PAGE_INCHES, _PAGE_INCHES - 1.2))
        image = axes.imshow(shares, cmap="Blues", norm=PowerNorm(0.5, vmin=0, vmax=1),
                            interpolation="nearest")
        axes.set_xticks(positions, labels=labels, fontsize=9)
        axes.set_yticks(positions, labels=labels, fontsize=9)
        axes.set_xlabel("predicted (class #, as in the per-class table)")
        axes.set_ylabel("true (class #)")
        scale = "share of true class (square-root scale)"
    else:
        side = max(4.5, 0.42 * n + 2.5)
        figure, axes = plt.subplots(figsize=(side + 1.2, side))
        image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        axes.set_xticks(positions, labels=labels, rotation=90, fontsize=8 if n > 12 else 9)
        axes.set_yticks(positions, labels=labels, fontsize=8 if n > 12 else 9)
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    axes.text(j, i, int(counts[i, j]), ha="center", va="center",
                              fontsize=7 if n > 12 else 9,
                              color="white" if shares[i, j] > 0.6 else
                              ("#b71c1c" if i != j else "black"))
        scale = "share of true class"
    axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label=scale)
    return _png(figure)


def plot_pca(points: Sequence[tuple[str, str, float, float]], classes: Sequence[str],
             title: str = "PCA projection (first two components)") -> bytes:
    """Scatter of the first two PCA components, one colour per class; Test rows as x."""
    figure, axes = plt.subplots(figsize=(9, 6.5))
    colours = dict(zip(classes, _class_colours(len(classes)), strict=True))
    for label in classes:
        labelled = False
        for split, marker in ((TRAIN, "o"), (TEST, "x")):
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

"""Accuracy harness for grey-level ORB encodings (issue 14): one process, numpy + OpenCV +
scikit-learn, the pipeline's arithmetic where it has one (Spark KMeans's random init and
Lloyd rounds, Spark's IDF formula, Spark's PCA, which projects without centring, Spark's
regParam as scikit-learn's C), and every lever of the issue as an option.

    python -m bench.encodings DATA --encoding bow --vocabulary bytes --k 1000 --pyramid 2
    python -m bench.encodings DATA --encoding vlad --vocabulary bits --k 32 --power 0.5 \\
        --intra --scales 1,2 --scale-mode resize

Descriptors (and each image's HSV colour block) are computed once per ORB setting and
cached as npz under --cache (default /tmp/accuracy-research-cache), with the time they
took; later runs with the same setting only pay for the vocabulary, the encoding, PCA and
the classifier. Prints accuracy, macro F1, the feature dimension and the time of every
stage; --log FILE appends the result, with the exact command, as one JSON line.

Scale modes: "octave-ignored" is the pipeline as it stands (keypoints of size
patch_size * scale on the full image, every round(step * scale) px: OpenCV ignores the
size, so a larger scale is only a sparser grid of patch_size patches); "resize" describes
the grey image resized by 1 / scale (INTER_AREA) on a grid of `step` px there, positions
mapped back; "octave" gives keypoints an octave of ORB's own pyramid (scale factor =
the second scale; every scale must be a power of it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.binary_codes import (  # noqa: E402
    Vocabulary,
    assign,
    cell_groups,
    encode,
    fit_bmm,
    fit_vocabulary,
    normalise,
    pyramid_cells,
    to_space,
)
from bench.reference import list_images  # noqa: E402
from bovw.config import ColourSettings, OrbSettings  # noqa: E402
from bovw.image.colour import colour_histogram  # noqa: E402
from bovw.image.decode import ImageRejected, open_image, to_grey, to_rgb  # noqa: E402
from bovw.pipeline.reduction import EXACT_MAX_DIMENSION, krylov_components  # noqa: E402

SCALE_MODES = ("resize", "octave-ignored", "octave")
DEFAULT_CACHE = Path("/tmp/accuracy-research-cache")
CACHE_VERSION = 2
# Floats in the largest temporary of one encoding chunk (distances, bits or encodings).
CHUNK_FLOATS = 24_000_000


@dataclass(frozen=True)
class Grid:
    """How an image is described: dense grid every `step` px at each of `scales`."""

    mode: str
    scales: tuple[float, ...]
    step: int
    patch: int = 8
    edge: int = 8

    def key(self) -> str:
        return f"{self.mode}-s{'_'.join(f'{s:g}' for s in self.scales)}-st{self.step}-p{self.patch}"


def _grid(width: int, height: int, step: int, margin: int) -> np.ndarray:
    xs = np.arange(margin, width - margin, step, dtype=np.float32)
    ys = np.arange(margin, height - margin, step, dtype=np.float32)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    return np.column_stack([gx.ravel(), gy.ravel()])


def _orb(grid: Grid, factor: float = 1.2, levels: int = 8):
    return cv2.ORB_create(nfeatures=500, scaleFactor=factor, nlevels=levels,
                          edgeThreshold=grid.edge, patchSize=grid.patch, fastThreshold=20)


def describe(grey: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(n, 32) uint8 descriptors and (n, 2) uint8 relative positions (x * 256 // width)."""
    height, width = grey.shape
    margin = math.ceil(grid.patch / 2) + 1
    descriptors, points = [], []
    if grid.mode == "octave-ignored":
        orb = _orb(grid)
        for scale in grid.scales:
            size = grid.patch * scale
            xy = _grid(width, height, max(1, round(grid.step * scale)), math.ceil(size / 2) + 1)
            kept, d = orb.compute(grey, [cv2.KeyPoint(float(x), float(y), size) for x, y in xy])
            if d is not None and len(d):
                descriptors.append(d)
                points.append(cv2.KeyPoint_convert(kept))
    elif grid.mode == "resize":
        orb = _orb(grid)
        for scale in grid.scales:
            image = grey if scale == 1 else cv2.resize(
                grey, (max(1, round(width / scale)), max(1, round(height / scale))),
                interpolation=cv2.INTER_AREA)
            xy = _grid(image.shape[1], image.shape[0], grid.step, margin)
            kept, d = orb.compute(image, [cv2.KeyPoint(float(x), float(y), grid.patch)
                                          for x, y in xy])
            if d is not None and len(d):
                descriptors.append(d)
                # Pixel centres map back: (x + 0.5) * width / resized width - 0.5.
                ratio = np.array([width / image.shape[1], height / image.shape[0]], np.float32)
                points.append((cv2.KeyPoint_convert(kept) + 0.5) * ratio - 0.5)
    elif grid.mode == "octave":
        factor = grid.scales[1] if len(grid.scales) > 1 else 2.0
        octaves = [round(math.log(s, factor)) for s in grid.scales]
        if any(abs(factor**o - s) > 1e-6 for o, s in zip(octaves, grid.scales, strict=True)):
            raise ValueError(f"octave mode needs scales that are powers of {factor}")
        orb = _orb(grid, factor, max(octaves) + 1)
        keypoints = []
        for octave in octaves:
            scale = factor**octave
            xy = _grid(round(width / scale), round(height / scale), grid.step, margin) * scale
            keypoints += [cv2.KeyPoint(float(x), float(y), grid.patch * scale, -1, 0, octave)
                          for x, y in xy]
        kept, d = orb.compute(grey, keypoints)
        if d is not None and len(d):
            descriptors.append(d)
            points.append(cv2.KeyPoint_convert(kept))
    else:
        raise ValueError(f"unknown scale mode {grid.mode!r}; expected one of {SCALE_MODES}")
    if not descriptors:
        return np.zeros((0, 32), np.uint8), np.zeros((0, 2), np.uint8)
    xy = np.concatenate(points).astype(np.float64)
    positions = np.clip(np.floor(xy * np.array([256.0 / width, 256.0 / height])), 0, 255)
    return np.concatenate(descriptors), positions.astype(np.uint8)


_worker_grid: Grid | None = None
_ORB_SETTINGS = OrbSettings()
_COLOUR = ColourSettings()


def _init(grid: Grid) -> None:
    global _worker_grid
    _worker_grid = grid


def _describe_file(path: str):
    """(descriptors, positions, colour, CPU seconds of grey + ORB) of one file, or None."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        image, _ = open_image(data, _ORB_SETTINGS)  # the pipeline's decoding (Pillow)
    except ImageRejected:
        return None
    start = time.process_time()
    descriptors, positions = describe(to_grey(image), _worker_grid)
    seconds = time.process_time() - start
    return descriptors, positions, colour_histogram(to_rgb(image), _COLOUR), seconds


def load_descriptors(data_dir: str, grid: Grid, cache: Path, processes: int) -> dict:
    """Descriptors of every image of data_dir for `grid`, from the cache or computed (and
    cached). Keys: descriptors (N, 32) uint8, positions (N, 2) uint8, offsets (n + 1,),
    labels (n,), train (n,) bool, colour (n, d) float32 (bovw's default colour block,
    d = 512), seconds (wall), orb_seconds (summed per-image grey + ORB CPU time),
    processes. The cache key holds the colour settings: a changed default is not served
    blocks of the old one."""
    entries = list_images(data_dir, ("jpg", "jpeg", "png"))
    digest = hashlib.sha1(
        "\n".join([str(Path(data_dir).resolve()), str(len(entries)), grid.key(),
                   str(CACHE_VERSION), repr(_COLOUR)]).encode()).hexdigest()[:12]
    path = cache / f"descriptors-{grid.key()}-{digest}.npz"
    if path.exists():
        with np.load(path) as stored:
            return {name: stored[name] for name in stored.files}
    cv2.setNumThreads(1)  # before the fork, as bench/reference.py does
    start = time.perf_counter()
    with multiprocessing.Pool(processes, initializer=_init, initargs=(grid,)) as pool:
        results = pool.map(_describe_file, [p for p, _, _ in entries], chunksize=64)
    seconds = time.perf_counter() - start
    kept = [(entry, r) for entry, r in zip(entries, results, strict=True) if r is not None]
    counts = np.array([len(r[0]) for _, r in kept])
    out = {
        "descriptors": np.concatenate([r[0] for _, r in kept]),
        "positions": np.concatenate([r[1] for _, r in kept]),
        "offsets": np.concatenate([[0], np.cumsum(counts)]),
        "labels": np.array([label for (_, _, label), _ in kept]),
        "train": np.array([split == "Training" for (_, split, _), _ in kept]),
        "colour": np.stack([r[2] for _, r in kept]).astype(np.float32),
        "seconds": np.float64(seconds),
        "orb_seconds": np.float64(sum(r[3] for _, r in kept)),
        "processes": np.int64(processes),
    }
    cache.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npz")
    np.savez(temporary, **out)
    temporary.rename(path)
    return out


GREY_BACKGROUND = 0.9 * 255  # as bovw.image.colour's value threshold; grey cannot see saturation


def grey_histogram(grey: np.ndarray, bins: int, levels: int = 1) -> np.ndarray:
    """(bins * cells,) float32: histograms of the grey levels of the pixels darker than
    GREY_BACKGROUND (the fruit, on Fruits-360's white background), one per spatial-pyramid
    cell of `levels` levels (cells as in binary_codes.cell_groups, from pixel centres),
    each level's cells divided by the image's fruit-pixel count (each level sums to 1);
    zeros if no pixel is fruit.
    ORB's binary tests compare pixels with each other, so they never see how bright or
    dark a fruit is: this block gives that back, from the grey image alone."""
    height, width = grey.shape
    rows, columns = np.nonzero(grey <= GREY_BACKGROUND)
    values = grey[rows, columns].astype(np.int64) * bins // 256
    positions = np.column_stack([(columns * 256) // width, (rows * 256) // height])
    cells = cell_groups(positions.astype(np.uint8), levels)
    flat = (cells * bins + values[:, None]).ravel()
    counts = np.bincount(flat, minlength=pyramid_cells(levels) * bins).astype(np.float64)
    total = len(values)
    return (counts / total if total else counts).astype(np.float32)


def _grey_file(path: str, bins: int, levels: int) -> np.ndarray | None:
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        image, _ = open_image(data, _ORB_SETTINGS)
    except ImageRejected:
        return None
    return grey_histogram(to_grey(image), bins, levels)


def load_grey_blocks(data_dir: str, cache: Path, bins: int, levels: int) -> np.ndarray:
    """(n, bins) grey_histogram of every readable image, in load_descriptors' order,
    cached like the descriptors."""
    entries = list_images(data_dir, ("jpg", "jpeg", "png"))
    digest = hashlib.sha1("\n".join([str(Path(data_dir).resolve()), str(len(entries)),
                                     str(bins), str(levels)]).encode()).hexdigest()[:12]
    path = cache / f"grey-{bins}-{levels}-{digest}.npy"
    if path.exists():
        return np.load(path)
    blocks = [_grey_file(p, bins, levels) for p, _, _ in entries]
    out = np.stack([b for b in blocks if b is not None])
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def vocabulary_sample(store: dict, size: int, seed: int) -> np.ndarray:
    """About `size` Training descriptors drawn with `seed`, duplicates removed (as the
    pipeline's sample: dense grids repeat the plain-background code many times)."""
    offsets, train = store["offsets"], store["train"]
    rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in np.flatnonzero(train)])
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(rows, size=min(size, len(rows)), replace=False))
    sample = store["descriptors"][chosen]
    _, first = np.unique(sample.view(np.dtype((np.void, 32))).ravel(), return_index=True)
    return sample[np.sort(first)]


def encode_all(store: dict, vocabulary: Vocabulary, args: argparse.Namespace) -> np.ndarray:
    """(n_images, D) float32 raw encodings (normalised too, except bow, which waits for its
    IDF), chunk by chunk."""
    offsets = store["offsets"]
    n_images = len(offsets) - 1
    n_cells = pyramid_cells(args.pyramid)
    space = "bits" if vocabulary.space in ("bmm", "kmajority") else vocabulary.space
    width = 32 if space == "bytes" else 256
    per_image = max(1.0, offsets[-1] / max(n_images, 1))
    encoded = n_cells * vocabulary.k * {"bow": 1, "vlad": width, "fisher": width + 1}[
        args.encoding]
    chunk = int(max(1, min(CHUNK_FLOATS / (per_image * max(vocabulary.k, width)),
                           CHUNK_FLOATS / encoded)))
    out = None
    for first in range(0, n_images, chunk):
        last = min(n_images, first + chunk)
        lo, hi = offsets[first], offsets[last]
        points = to_space(store["descriptors"][lo:hi], space)
        image_of = np.repeat(np.arange(last - first), np.diff(offsets[first:last + 1]))
        triples = assign(points, vocabulary, args.nearest, args.sigma, args.soft_weight)
        cells = cell_groups(store["positions"][lo:hi], args.pyramid)
        block = encode(points, image_of, last - first, cells, n_cells, triples, vocabulary,
                       args.encoding)
        if args.encoding != "bow":
            normalise(block, n_cells, vocabulary.k, args.power, args.intra, args.norm,
                      args.pyramid)
        if out is None:
            out = np.empty((n_images, block.shape[1]), np.float32)
        out[first:last] = block
    return out


def weight_bow(features: np.ndarray, train: np.ndarray, args: argparse.Namespace, k: int
               ) -> np.ndarray:
    """Spark's IDF (log((m + 1) / (df + 1)), fitted on Training), then power and L2."""
    if args.tfidf:
        df = np.count_nonzero(features[train], axis=0)
        features *= np.log((train.sum() + 1.0) / (df + 1.0)).astype(np.float32)
    return normalise(features, pyramid_cells(args.pyramid), k, args.power, False, args.norm,
                     args.pyramid)


def pca_axes(train_x: np.ndarray, components: int, seed: int) -> np.ndarray:
    """(D, c) principal axes of the Training rows, as bovw/pipeline/reduction.py finds them: the
    centred covariance decomposed exactly up to 512 columns, else the pipeline's own block
    Krylov iteration (krylov_components) with the products computed here in NumPy."""
    n, dimension = train_x.shape
    c = min(components, dimension)
    mean = train_x.mean(axis=0, dtype=np.float64)
    if dimension <= EXACT_MAX_DIMENSION:
        centred = train_x.astype(np.float64) - mean
        _, vectors = np.linalg.eigh(centred.T @ centred / (n - 1))
        return vectors[:, ::-1][:, :c]
    squares = float(np.einsum("ij,ij->", train_x, train_x, dtype=np.float64))
    trace = (squares - n * mean @ mean) / (n - 1)

    def times(basis: np.ndarray) -> tuple[np.ndarray, float]:
        product = (train_x.T @ (train_x @ basis.astype(np.float32))).astype(np.float64)
        return (product - n * np.outer(mean, mean @ basis)) / (n - 1), trace

    return krylov_components(times, c, dimension, seed)[0]


def run(args: argparse.Namespace) -> list[dict]:
    grid = Grid(args.scale_mode, tuple(args.scales), args.step)
    # CPU seconds (this process; BLAS runs on --threads threads of it) say what a stage
    # costs on a shared machine much better than wall time; both are reported.
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}
    clock, cpu_clock = time.perf_counter(), time.process_time()

    def lap(stage: str) -> None:
        nonlocal clock, cpu_clock
        now, cpu_now = time.perf_counter(), time.process_time()
        times[stage] = round(now - clock, 3)
        cpu[stage] = round(cpu_now - cpu_clock, 3)
        clock, cpu_clock = now, cpu_now

    store = load_descriptors(args.data, grid, Path(args.cache), args.processes)
    lap("load")
    train = store["train"]
    with threadpool_limits(limits=args.threads):
        sample = vocabulary_sample(store, args.sample_size, args.seed)
        if args.encoding == "fisher":
            vocabulary = fit_bmm(sample, args.k, args.iterations, args.seed)
        else:
            vocabulary = fit_vocabulary(sample, args.vocabulary, args.k, args.iterations,
                                        args.seed)
        lap("vocabulary")
        features = encode_all(store, vocabulary, args)
        if args.encoding == "bow":
            features = weight_bow(features, train, args, vocabulary.k)
        if args.grey > 0:
            grey = load_grey_blocks(args.data, Path(args.cache), args.grey_bins,
                                    args.grey_pyramid)
            features = np.hstack([features, args.grey * np.sqrt(grey)])
        if args.colour > 0:
            features = np.hstack([features, args.colour * np.sqrt(store["colour"])])
        lap("encoding")
        base_times, base_cpu = dict(times), dict(cpu)
        labels = store["labels"]
        n_images = len(labels)
        common = {
            "dimension": int(features.shape[1]),
            "k": vocabulary.k,
            "distinct_sample": len(sample),
            "descriptors_per_image": round(len(store["descriptors"]) / n_images, 1),
            "descriptor_seconds": round(float(store["seconds"]), 2),
            "descriptor_processes": int(store["processes"]),
            "orb_ms_per_image": round(1000 * float(store["orb_seconds"]) / n_images, 3),
            "encoding_ms_per_image": round(1000 * cpu["encoding"] / n_images, 3),
        }
        results = []
        for components in args.pca:
            axes = (pca_axes(features[train], components, args.seed).astype(np.float32)
                    if components > 0 else None)
            lap("pca")
            pca_times = (times["pca"], cpu["pca"])
            for projection in args.projection:
                if axes is None:
                    reduced = features
                elif projection == "centred":
                    reduced = (features - features[train].mean(axis=0)) @ axes
                else:  # Spark's PCAModel: x @ pc, no centring
                    reduced = features @ axes
                for reg_param in args.reg:
                    lap("projection")
                    results.append(_classify(reduced, labels, train, reg_param, args) | common | {
                        "pca": components, "projection": projection, "reg": reg_param,
                        "times": base_times | {"pca": pca_times[0]},
                        "cpu": base_cpu | {"pca": pca_times[1]}})
                    lap("classifier")
                    results[-1]["times"]["classifier"] = times["classifier"]
                    results[-1]["cpu"]["classifier"] = cpu["classifier"]
                if axes is None:
                    break
    return results


def _classify(features: np.ndarray, labels: np.ndarray, train: np.ndarray, reg_param: float,
              args: argparse.Namespace) -> dict:
    """Spark's multinomial LogisticRegression (unstandardised, elastic net 0, regParam r:
    mean loss + r / 2 ||w||^2) as scikit-learn's lbfgs one with C = 1 / (r n)."""
    reg = reg_param * int(train.sum())
    model = LogisticRegression(C=1.0 / reg if reg > 0 else 1e12, solver="lbfgs",
                               max_iter=args.max_iter, tol=args.tol)
    model.fit(features[train], labels[train])
    predicted = model.predict(features[~train])
    truth = labels[~train]
    pairs, counts = np.unique(np.stack([truth, predicted], axis=1)[truth != predicted], axis=0,
                              return_counts=True)
    confusions = [f"{a} -> {b}: {n}" for (a, b), n in sorted(
        zip(pairs.tolist(), counts.tolist(), strict=True), key=lambda item: -item[1])[:6]]
    return {
        "top_confusions": confusions,
        "accuracy": round(float(accuracy_score(labels[~train], predicted)), 4),
        "macro_f1": round(float(f1_score(labels[~train], predicted, average="macro")), 4),
        "train_accuracy": round(float(model.score(features[train], labels[train])), 4),
        "iterations": int(np.max(model.n_iter_)),
    }


def _values(kind):
    return lambda text: [kind(value) for value in text.split(",")]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="folder holding Training/<Class>/ and Test/<Class>/")
    parser.add_argument("--encoding", choices=("bow", "vlad", "fisher"), default="bow")
    parser.add_argument("--vocabulary", choices=("bytes", "bits", "kmajority"),
                        default="bytes", help="k-means space (fisher: always a Bernoulli "
                        "mixture of the bits)")
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=3, help="Lloyd or EM rounds")
    parser.add_argument("--sample-size", type=int, default=50_000)
    parser.add_argument("--assign", default="hard", help="hard, or soft:N (N nearest words)")
    parser.add_argument("--soft-weight", choices=("gauss", "rank", "equal"), default="gauss")
    parser.add_argument("--sigma", type=float, default=0.0,
                        help="gauss soft weights: sigma (0: sqrt of the mean squared "
                        "distance to the nearest word)")
    parser.add_argument("--pyramid", type=int, default=2, choices=(1, 2, 3))
    parser.add_argument("--scales", default="1,2", type=lambda t: [float(s) for s in t.split(",")])
    parser.add_argument("--scale-mode", choices=SCALE_MODES, default="octave-ignored")
    parser.add_argument("--step", type=int, default=5)
    parser.add_argument("--no-tfidf", dest="tfidf", action="store_false", help="bow only")
    parser.add_argument("--power", type=float, default=1.0, help="signed power (0.5 = sqrt)")
    parser.add_argument("--intra", action="store_true", help="L2 of each word's block first")
    parser.add_argument("--norm", choices=("global", "level", "cell", "none"), default="global",
                        help="L2 per block before the final L2")
    parser.add_argument("--grey", type=float, default=0.0,
                        help="append weight * sqrt(grey-level histogram of the fruit "
                        "pixels) (0: none); not ORB, but grey only")
    parser.add_argument("--grey-bins", type=int, default=32)
    parser.add_argument("--grey-pyramid", type=int, default=1, choices=(1, 2, 3),
                        help="grey histograms per pyramid cell of this many levels")
    parser.add_argument("--colour", type=float, default=0.0,
                        help="append weight * sqrt(HSV colour block) (0: grey only)")
    # PCA, projection and classifier settings take lists: every combination is measured
    # on the same encoding, one result (and log line) each.
    parser.add_argument("--pca", type=_values(int), default=[100],
                        help="components, e.g. 100,200 (0: no PCA)")
    parser.add_argument("--projection", type=_values(str), default=["uncentred"],
                        help="uncentred (Spark's PCAModel: x @ pc) and/or centred")
    parser.add_argument("--reg", type=_values(float), default=[1e-6],
                        help="Spark regParam(s), e.g. 1e-6,1e-5")
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--tol", type=float, default=1e-4, help="classifier tolerance")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--processes", type=int, default=2, help="descriptor pool")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE))
    parser.add_argument("--log", help="append the result as one JSON line to this file")
    args = parser.parse_args(argv)
    if args.assign == "hard":
        args.nearest = 1
    elif args.assign.startswith("soft:") and args.assign[5:].isdigit():
        args.nearest = int(args.assign[5:])
    else:
        parser.error(f"--assign must be hard or soft:N, got {args.assign!r}")
    if set(args.projection) - {"uncentred", "centred"}:
        parser.error("--projection takes uncentred and/or centred")
    return args


def _single_command(argv: list[str], result: dict) -> str:
    """The command that measures this one result: list options narrowed to its values."""
    narrowed, skip = [], False
    for word in argv:
        if skip:
            skip = False
            continue
        if word in ("--pca", "--projection", "--reg"):
            skip = True
            continue
        narrowed.append(word)
    narrowed += ["--pca", str(result["pca"])]
    if result["pca"] and result["projection"] != "uncentred":
        narrowed += ["--projection", result["projection"]]
    if result["reg"] != 1e-6:
        narrowed += ["--reg", f"{result['reg']:g}"]
    return "python -m bench.encodings " + shlex.join(narrowed)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    words = sys.argv[1:] if argv is None else list(argv)
    for result in run(args):
        result["command"] = _single_command(words, result)
        t = result["cpu"]
        print(f"accuracy {result['accuracy']:.4f}  macro F1 {result['macro_f1']:.4f}  "
              f"(train {result['train_accuracy']:.4f}, {result['iterations']} LR iterations)  "
              f"dimension {result['dimension']}  pca {result['pca']} {result['projection']}  "
              f"reg {result['reg']:g}")
        print(f"  descriptors {result['descriptor_seconds']} s on "
              f"{result['descriptor_processes']} processes ({result['descriptors_per_image']}"
              f"/image, ORB {result['orb_ms_per_image']} ms/image CPU)")
        print(f"  CPU s: vocabulary {t['vocabulary']}  encoding {t['encoding']} "
              f"({result['encoding_ms_per_image']} ms/image)  pca {t['pca']}  "
              f"classifier {t['classifier']}  (wall: {result['times']})")
        if args.log:
            with open(args.log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

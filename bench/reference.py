"""Single-process reference for the bovw task: OpenCV + scikit-learn + numpy, no Spark.

It reads the same Fruits-360 layout (`Training/<Class>/*`, `Test/<Class>/*`) with the same
`bovw.config.Config` and reports wall time per stage, accuracy and macro F1, so the Spark
pipeline has a baseline to be compared with (see bench/compare.py).

    python bench/reference.py /path/to/fruits360 --k 500 --processes 2 [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy import sparse
from sklearn.cluster import MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.preprocessing import StandardScaler, normalize
from threadpoolctl import threadpool_limits

if __package__ in (None, ""):  # run as `python bench/reference.py`: make `bovw` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.config_args import add_config_arguments, config_from_args  # noqa: E402
from bovw.config import (  # noqa: E402
    ClassifierSettings,
    Config,
    ConfigError,
    HistogramSettings,
    OrbSettings,
    ToneSettings,
    VocabularySettings,
)
from bovw.image.orb import describe_keypoints  # noqa: E402
from bovw.image.tone import tone_histogram  # noqa: E402

SPLITS = ("Training", "Test")
DESCRIPTOR_BYTES = 32
# Without regularisation sklearn still needs a finite C that works on every supported version.
UNREGULARISED_C = 1e12


# scikit-learn's own default stop for lbfgs (see classify).
REFERENCE_TOL = 1e-4


def list_images(input_dir: str | Path, extensions: Sequence[str]) -> list[tuple[str, str, str]]:
    """Return sorted (path, split, label) for every image under <input_dir>/<split>/<label>/.

    Extensions match in any case. Raises FileNotFoundError when a split folder is missing.
    """
    wanted = {"." + ext.lower().lstrip(".") for ext in extensions}
    entries = []
    for split in SPLITS:
        split_dir = Path(input_dir) / split
        if not split_dir.is_dir():
            raise FileNotFoundError(
                f"{split_dir} not found: the input folder must hold Training/<Class>/ and "
                "Test/<Class>/ image folders"
            )
        for label_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            for path in sorted(label_dir.iterdir()):
                if path.suffix.lower() in wanted and path.is_file():
                    entries.append((str(path), split, label_dir.name))
    return entries


_worker_settings: OrbSettings | None = None  # set once per pool process by _init_worker
_worker_positions = False
_worker_tone: ToneSettings | None = None


def _init_worker(orb: OrbSettings, positions: bool, tone: ToneSettings | None = None) -> None:
    global _worker_settings, _worker_positions, _worker_tone
    _worker_settings = orb
    _worker_positions = positions
    _worker_tone = tone


def describe_grey_image(grey: np.ndarray, orb: OrbSettings, positions: bool
                        ) -> tuple[np.ndarray, np.ndarray | None]:
    """(n, 32) uint8 ORB descriptors of a grey image and, if asked, their (n, 2) positions.

    The pipeline's own per-image function (`bovw.image.orb.describe_keypoints`: the same
    grid, scales, resizing and ORB settings, the same bovw.image.dense_orb or OpenCV
    code), so the two time the same per-image work.
    """
    descriptors, points = describe_keypoints(grey, orb)
    return descriptors, (points if positions else None)


def describe_image(path: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None:
    """ORB descriptors (and positions, if the pool was asked for them) of one image file,
    and its tone block (bovw.image.tone) when the pool was given enabled tone settings, or None
    if it cannot be decoded."""
    with open(path, "rb") as handle:
        encoded = np.frombuffer(handle.read(), dtype=np.uint8)
    grey = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE) if encoded.size else None
    if grey is None:
        return None
    tone = (tone_histogram(grey, _worker_tone) if _worker_tone is not None
            and _worker_tone.enabled else None)
    return (*describe_grey_image(grey, _worker_settings, _worker_positions), tone)


def describe_images(paths: Sequence[str], orb: OrbSettings, processes: int,
                    positions: bool = False, tone: ToneSettings | None = None) -> list:
    """(descriptors, positions or None, tone block or None) for every path (None for
    unreadable files), in order."""
    chunk = max(1, min(256, len(paths) // (processes * 8) or 1))
    # The pool already uses every core; OpenCV's own threads would only compete with it.
    # Set here, before the fork: a forked child resizing a thread pool its parent had
    # running deadlocks.
    cv2.setNumThreads(1)
    with multiprocessing.Pool(processes, initializer=_init_worker,
                              initargs=(orb, positions, tone)) as pool:
        return list(pool.imap(describe_image, paths, chunksize=chunk))


def fit_vocabulary(train_descriptors: np.ndarray, settings: VocabularySettings, seed: int):
    """Fit MiniBatchKMeans on a seeded sample of uint8 descriptors; returns (k, 32) float32."""
    total = len(train_descriptors)
    if total < settings.k:
        raise ValueError(
            f"only {total} Training descriptors for vocabulary.k = {settings.k}; "
            "lower vocabulary.k or loosen the ORB settings"
        )
    rng = np.random.default_rng(seed)
    chosen = rng.choice(total, size=min(settings.sample_size, total), replace=False)
    sample = train_descriptors[np.sort(chosen)].astype(np.float32)
    kmeans = MiniBatchKMeans(
        n_clusters=settings.k,
        max_iter=settings.max_iter,
        batch_size=1024,
        n_init=1,
        random_state=seed,
    )
    return kmeans.fit(sample).cluster_centers_.astype(np.float32)


def nearest_words(descriptors: np.ndarray, centers: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """Index of the nearest center (Euclidean) for every row of `descriptors`."""
    # argmin ||x - c||^2 = argmin (||c||^2 - 2 x.c): ||x||^2 is the same for every center.
    # Chunks keep the distance block cache-sized; in-place adds avoid a second temporary.
    center_norms = np.einsum("ij,ij->i", centers, centers)
    minus_two_centers_t = (-2.0 * centers.T).astype(np.float32)
    words = np.empty(len(descriptors), dtype=np.int64)
    for start in range(0, len(descriptors), chunk):
        distances = descriptors[start : start + chunk].astype(np.float32) @ minus_two_centers_t
        distances += center_norms
        words[start : start + chunk] = distances.argmin(axis=1)
    return words


def histogram_bins(words: np.ndarray, positions: np.ndarray | None, k: int, levels: int
                   ) -> np.ndarray:
    """The spatial-pyramid bin of every (descriptor, level) pair, level by level.

    Level L cuts the image into 2^L x 2^L cells, numbered row by row; its bins start after
    the k * (1 + 4 + ... + 4^(L-1)) bins of the coarser levels, k per cell. Level 0 is the
    plain word histogram. `positions` are (n, 2) uint8 relative (x, y), 0..255.
    """
    if levels == 1:
        return words
    per_level = [words]
    for level in range(1, levels):
        cells_per_side = 2**level
        first_bin = k * (4**level - 1) // 3
        column = positions[:, 0].astype(np.int64) * cells_per_side // 256
        row = positions[:, 1].astype(np.int64) * cells_per_side // 256
        per_level.append(first_bin + (row * cells_per_side + column) * k + words)
    return np.concatenate(per_level)


def word_histograms(per_image: Sequence[np.ndarray], centers: np.ndarray,
                    per_image_positions: Sequence[np.ndarray] | None = None,
                    pyramid_levels: int = 1) -> sparse.csr_matrix:
    """(n_images, k * (1 + 4 + ...)) float64 bin counts, sparse (CSR); images without
    descriptors get an empty row.

    With pyramid_levels > 1, `per_image_positions` gives each image's (n, 2) keypoint positions.
    Sparse because a dense matrix does not fit at the sizes the bench runs: 155k images x
    21,000 bins (3 levels) would be 26 GB of float64, most of it zeros (an image has at most
    ~290 descriptors per level).
    """
    k = len(centers)
    length = k * sum(4**level for level in range(pyramid_levels))
    counts = np.array([len(d) for d in per_image], dtype=np.int64)
    stacked = np.concatenate(per_image) if counts.sum() else np.empty((0, DESCRIPTOR_BYTES))
    words = nearest_words(stacked, centers)
    positions = None
    if pyramid_levels > 1:
        positions = (np.concatenate(per_image_positions) if counts.sum()
                     else np.empty((0, 2), dtype=np.uint8))
    bins = histogram_bins(words, positions, k, pyramid_levels)
    image_of_bin = np.tile(np.repeat(np.arange(len(per_image)), counts), pyramid_levels)
    # COO -> CSR adds up the repeated (image, bin) pairs: the counts.
    return sparse.coo_matrix((np.ones(len(bins)), (image_of_bin, bins)),
                             shape=(len(counts), length)).tocsr()


def weight_histograms(train: sparse.spmatrix, test: sparse.spmatrix,
                      settings: HistogramSettings) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """TF-IDF (Spark ML's idf = log((m + 1) / (df + 1)), fitted on train), then each value
    to the power histograms.power, then L2 rows; counts in, CSR out."""
    train, test = (sparse.csr_matrix(side, dtype=np.float64) for side in (train, test))
    if settings.tfidf:
        document_frequency = (train != 0).sum(axis=0).A1
        idf = sparse.diags(np.log((train.shape[0] + 1.0) / (document_frequency + 1.0)))
        train, test = (train @ idf).tocsr(), (test @ idf).tocsr()
    if settings.power != 1.0:
        # Counts times a non-negative IDF: the stored values are >= 0, and zeros stay zero.
        train, test = train.power(settings.power), test.power(settings.power)
    if settings.l2:
        train, test = normalize(train), normalize(test)
    return train, test


def append_tone(features: sparse.spmatrix, tones: Sequence[np.ndarray], settings: ToneSettings
                ) -> sparse.csr_matrix:
    """Each row of `features` followed by weight * sqrt(its image's tone block), as the
    pipeline appends it after the L2-normalised words (bovw.image.tone)."""
    block = np.stack(tones).astype(np.float64) if len(tones) else np.zeros((0, settings.bins))
    return sparse.hstack([features, settings.weight * np.sqrt(block)], format="csr")


def project(train: sparse.spmatrix, test: sparse.spmatrix, components: int, seed: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """PCA fitted on train (components capped by the histogram length and row count);
    (n, components) dense projections of both.

    The histograms stay sparse: scikit-learn centres them implicitly with its ARPACK
    solver (its randomized one refuses sparse input). On fruits360-dev, one BLAS thread,
    ARPACK on the sparse rows took 5.9 s (5,032 columns) and 10.8 s (21,032) where the
    randomized solver on the same rows made dense took 8.7 s and 36.3 s, for the same
    variance (30.6% / 30.5%, 23.9% / 23.8%).
    """
    count = min(components, train.shape[1], train.shape[0])
    # ARPACK finds fewer than min(rows, columns) axes only; the full solver otherwise.
    solver = "arpack" if count < min(train.shape) else "full"
    if solver == "full":
        train, test = train.toarray(), test.toarray()
    pca = PCA(n_components=count, svd_solver=solver, random_state=seed)
    return pca.fit_transform(train), pca.transform(test)


def classify(train_x, train_y, test_x, settings: ClassifierSettings, seed: int) -> np.ndarray:
    """Multinomial logistic regression (lbfgs); returns Test predictions.

    C = 1 / (reg_param * n_train) makes sklearn's objective Spark's up to a constant factor.
    Features are standardised first when classifier.standardize is set, as in Spark.
    `classifier.tol` is not passed on: Spark's LBFGS stops on the loss's relative change,
    scikit-learn's lbfgs on the gradient's largest component, so one number is two different
    stops. With bovw's default 1e-3, scikit-learn stopped at 92.57% Test accuracy on
    fruits360-dev where Spark reached 96.67%; it keeps its own default, REFERENCE_TOL
    (96.23% there, and the reference's classifier as timed before the default changed).
    """
    if settings.elastic_net > 0:
        raise ValueError(
            "the reference supports classifier.elastic_net = 0 only (lbfgs, L2); "
            f"got {settings.elastic_net}"
        )
    reg = settings.reg_param * len(train_x)
    scaler = StandardScaler(with_mean=settings.standardize, with_std=settings.standardize
                            ).fit(train_x)
    model = LogisticRegression(
        C=1.0 / reg if reg > 0 else UNREGULARISED_C,
        solver="lbfgs",
        max_iter=settings.max_iter,
        tol=REFERENCE_TOL,
        random_state=seed,
    )
    model.fit(scaler.transform(train_x), train_y)
    return model.predict(scaler.transform(test_x))


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the descriptor pool).

    On a shared machine wall time depends on the neighbours; CPU time much less so.
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_memory_mb() -> dict[str, float]:
    """Peak RSS (MB) of this process and of its largest finished child (Linux: KB units)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "self": round(own, 1), "children": round(children, 1), "total": round(own + children, 1)
    }


def run_reference(input_dir: str | Path, config: Config, processes: int | None = None) -> dict:
    """Run the whole task once; returns timings (s), metrics, counts and peak memory.

    `processes` (default: all cores) sizes the descriptor pool, the only parallel stage.
    """
    # The numeric stages run on one BLAS/OpenMP thread: those threads spin-wait at every
    # small step, and on a busy 2-core box two of them made MiniBatchKMeans 8x and the
    # classifier 15x slower in wall time than one (measured); the histogram matmul was no
    # faster on two threads either.
    with threadpool_limits(limits=1):
        return _run(input_dir, config, processes or os.cpu_count() or 1)


def _run(input_dir: str | Path, config: Config, processes: int) -> dict:
    timings: dict[str, float] = {}
    cpu_timings: dict[str, float] = {}
    clock, cpu_clock = time.perf_counter(), cpu_seconds()
    start = clock

    def lap(stage: str) -> None:
        nonlocal clock, cpu_clock
        now, cpu_now = time.perf_counter(), cpu_seconds()
        timings[stage] = round(now - clock, 3)
        cpu_timings[stage] = round(cpu_now - cpu_clock, 3)
        clock, cpu_clock = now, cpu_now

    if (config.colour.enabled or config.histograms.assignment != "hard"
            or config.vocabulary.space != "bytes" or config.histograms.encoding != "words"):
        raise ValueError("the reference implements neither colour.enabled = true, "
                         "histograms.assignment = \"soft\", vocabulary.space = \"bits\" nor "
                         "a histograms.encoding other than \"words\"; leave them at false, "
                         "\"hard\", \"bytes\" and \"words\" to benchmark")
    entries = list_images(input_dir, config.ingest.extensions)
    lap("ingest")

    levels = config.histograms.pyramid_levels
    described = describe_images([path for path, _, _ in entries], config.orb, processes,
                                positions=levels > 1, tone=config.tone)
    kept = [(entry, d) for entry, d in zip(entries, described, strict=True) if d is not None]
    train = [(label, d) for (_, split, label), d in kept if split == "Training"]
    test = [(label, d) for (_, split, label), d in kept if split == "Test"]
    if not train or not test:
        raise ValueError(f"{input_dir}: need readable images in both Training and Test")
    lap("descriptors")

    centers = fit_vocabulary(np.concatenate([d for _, (d, _, _) in train]), config.vocabulary,
                             config.seed)
    lap("vocabulary")

    train_hist, test_hist = (
        word_histograms([d for _, (d, _, _) in side], centers,
                        [p for _, (_, p, _) in side], levels)
        for side in (train, test)
    )
    lap("histograms")

    train_x, test_x = weight_histograms(train_hist, test_hist, config.histograms)
    if config.tone.enabled:
        train_x, test_x = (append_tone(x, [t for _, (_, _, t) in side], config.tone)
                           for x, side in ((train_x, train), (test_x, test)))
    train_x, test_x = project(train_x, test_x, config.pca.components, config.seed)
    lap("reduction")

    train_y = [label for label, _ in train]
    test_y = [label for label, _ in test]
    predicted = classify(train_x, train_y, test_x, config.classifier, config.seed)
    lap("classifier")

    total = time.perf_counter() - start
    keypoints = [len(d) for _, (d, _, _) in kept]
    return {
        "timings": timings,
        "cpu_seconds": cpu_timings,
        "total_seconds": round(total, 3),
        "images_per_second": round(len(entries) / total, 1),
        "accuracy": float(accuracy_score(test_y, predicted)),
        "macro_f1": float(f1_score(test_y, predicted, average="macro")),
        "n_images": len(entries),
        "n_train": len(train),
        "n_test": len(test),
        "n_unreadable": len(entries) - len(kept),
        "n_without_keypoints": sum(1 for n in keypoints if n == 0),
        "mean_keypoints": float(np.mean(keypoints)),
        "processes": processes,
        "peak_memory_mb": peak_memory_mb(),
    }


def task_settings(config: Config) -> dict[str, Any]:
    """The settings that shape the task, as plain JSON-friendly values."""
    # Not Config.to_dict(): it cannot deep-copy the read-only spark.conf of a loaded Config.
    sections = ("ingest", "orb", "tone", "vocabulary", "histograms", "pca", "classifier")
    return {"seed": config.seed, **{name: asdict(getattr(config, name)) for name in sections}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Single-process BoVW reference (no Spark).")
    parser.add_argument("input_dir", help="folder holding Training/<Class>/ and Test/<Class>/")
    add_config_arguments(parser)
    parser.add_argument("--processes", type=int, help="descriptor pool size (default: all cores)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        result = run_reference(args.input_dir, config, args.processes)
    except (ConfigError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result["config"] = task_settings(config)
    if args.json:
        print(json.dumps(result))
        return 0
    for stage, seconds in result["timings"].items():
        print(f"{stage:>12}: {seconds:8.3f} s")
    print(f"{'total':>12}: {result['total_seconds']:8.3f} s  ({result['images_per_second']} img/s)")
    print(f"images {result['n_images']} (train {result['n_train']}, test {result['n_test']}, "
          f"unreadable {result['n_unreadable']}), mean keypoints {result['mean_keypoints']:.1f}")
    print(f"accuracy {result['accuracy']:.4f}, macro F1 {result['macro_f1']:.4f}, "
          f"peak memory {result['peak_memory_mb']['total']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

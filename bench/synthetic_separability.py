"""How well grey-level ORB bag-of-words separates the synthetic fruit classes.

Generates a dataset with bovw.image.synthetic, then (without Spark) runs ORB with the project's
default settings, a k-word scikit-learn KMeans vocabulary, L2-normalised word histograms
and a logistic regression; prints keypoints per image and class, test accuracy and timings.

    python bench/synthetic_separability.py --classes 6 --train 40 --test 15 --k 50
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix

from bovw.image.synthetic import generate_dataset


def describe(path: Path, orb: cv2.ORB) -> np.ndarray:
    grey = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_GRAYSCALE)
    _, descriptors = orb.detectAndCompute(grey, None)
    return np.zeros((0, 32), np.uint8) if descriptors is None else descriptors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--train", type=int, default=40)
    parser.add_argument("--test", type=int, default=15)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        summary = generate_dataset(root, args.classes, args.train, args.test, seed=args.seed)
        generated = time.perf_counter() - start
        images = sum(summary["counts"].values())
        print(f"generated {images} images in {generated:.2f} s "
              f"({generated / images * 1e3:.2f} ms/image)")

        orb = cv2.ORB_create(nfeatures=200, edgeThreshold=8, patchSize=8, fastThreshold=20)
        data = {}
        for split in ("Training", "Test"):
            rows = []
            for label, name in enumerate(summary["classes"]):
                for path in sorted((root / split / name).glob("*.jpg")):
                    rows.append((label, describe(path, orb)))
            data[split] = rows

    for label, name in enumerate(summary["classes"]):
        counts = [len(d) for split in data.values() for lab, d in split if lab == label]
        print(f"  {name:<12} keypoints/image mean {np.mean(counts):6.1f} "
              f"min {min(counts):3d} max {max(counts):3d}")
    every = [len(d) for split in data.values() for _, d in split]
    print(f"all: mean {np.mean(every):.1f} keypoints/image, min {min(every)}")

    # Binary descriptors unpacked to bits so Euclidean KMeans approximates Hamming.
    train_bits = np.unpackbits(np.vstack([d for _, d in data["Training"]]), axis=1)
    kmeans = KMeans(args.k, n_init=1, random_state=args.seed).fit(train_bits.astype(np.float32))

    def histograms(rows):
        features = np.zeros((len(rows), args.k))
        for i, (_, d) in enumerate(rows):
            if len(d):
                words = kmeans.predict(np.unpackbits(d, axis=1).astype(np.float32))
                features[i] = np.bincount(words, minlength=args.k)
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        return features / np.maximum(norms, 1e-9), np.array([label for label, _ in rows])

    x_train, y_train = histograms(data["Training"])
    x_test, y_test = histograms(data["Test"])
    model = LogisticRegression(C=10, max_iter=2000).fit(x_train, y_train)
    print(f"train accuracy {model.score(x_train, y_train):.3f}")
    print(f"test accuracy  {model.score(x_test, y_test):.3f}")
    print(confusion_matrix(y_test, model.predict(x_test)))


if __name__ == "__main__":
    main()

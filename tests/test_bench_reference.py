"""The single-process reference: its numeric helpers on hand-checkable inputs, and one tiny run."""

import cv2
import numpy as np
import pytest

from bench.reference import (
    list_images,
    nearest_words,
    run_reference,
    weight_histograms,
    word_histograms,
)
from bovw.config import HistogramSettings, load_config


def test_nearest_words_picks_the_closest_center_across_chunks():
    centers = np.array([[0.0] * 32, [10.0] * 32, [20.0] * 32], dtype=np.float32)
    descriptors = np.array([[9] * 32, [1] * 32, [16] * 32, [14] * 32], dtype=np.uint8)
    assert nearest_words(descriptors, centers, chunk=3).tolist() == [1, 0, 2, 1]


def test_histograms_count_words_and_keep_empty_images_at_zero():
    centers = np.array([[0.0] * 32, [10.0] * 32], dtype=np.float32)
    images = [
        np.array([[0] * 32, [9] * 32, [11] * 32], dtype=np.uint8),
        np.empty((0, 32), dtype=np.uint8),
        np.array([[1] * 32], dtype=np.uint8),
    ]
    assert word_histograms(images, centers).tolist() == [[1, 2], [0, 0], [1, 0]]


def test_tfidf_uses_spark_idf_fitted_on_train_then_l2():
    train = np.array([[2.0, 0.0], [1.0, 3.0]])
    test = np.array([[0.0, 4.0]])
    idf = [np.log(3 / 3), np.log(3 / 2)]  # log((m + 1) / (df + 1)) with m = 2, df = (2, 1)
    weighted_train, weighted_test = weight_histograms(train, test, HistogramSettings(True, False))
    assert np.allclose(weighted_train, [[0.0, 0.0], [0.0, 3 * idf[1]]])
    assert np.allclose(weighted_test, [[0.0, 4 * idf[1]]])
    _, normalised_test = weight_histograms(train, np.array([[3.0, 4.0]]), HistogramSettings(False))
    assert np.allclose(normalised_test, [[0.6, 0.8]])


def test_list_images_matches_extensions_in_any_case(tmp_path):
    for relative in ("Training/B/1.JPG", "Training/A/2.png", "Test/A/3.Jpeg", "Test/A/n.txt"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    assert [(split, label, path.rsplit("/", 1)[1]) for path, split, label in
            list_images(tmp_path, ("jpg", "jpeg", "png"))] == [
        ("Training", "A", "2.png"), ("Training", "B", "1.JPG"), ("Test", "A", "3.Jpeg"),
    ]


def test_list_images_names_the_missing_split(tmp_path):
    (tmp_path / "Training" / "A").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"Test not found: the input folder must hold"):
        list_images(tmp_path, ("jpg",))


def _write_shapes(path, shape, rng):
    image = np.full((100, 100, 3), 255, np.uint8)
    for _ in range(5):
        x, y = (int(v) for v in rng.integers(20, 80, 2))
        if shape == "circle":
            cv2.circle(image, (x, y), 8, (0, 0, 200), -1)
        else:
            cv2.rectangle(image, (x - 7, y - 7), (x + 7, y + 7), (200, 0, 0), -1)
    cv2.imwrite(str(path), image)


def test_tiny_run_counts_splits_and_skips_unreadable_files(tmp_path):
    rng = np.random.default_rng(0)
    for split, count in (("Training", 6), ("Test", 3)):
        for shape in ("circle", "square"):
            folder = tmp_path / split / shape
            folder.mkdir(parents=True)
            for index in range(count):
                _write_shapes(folder / f"{index}.png", shape, rng)
    (tmp_path / "Training" / "circle" / "broken.jpg").write_bytes(b"not an image")
    config = load_config(None, {"vocabulary.k": 8, "pca.components": 4})
    result = run_reference(tmp_path, config, processes=1)
    assert list(result["timings"]) == [
        "list_files", "descriptors", "vocabulary", "histograms", "tfidf_pca", "classifier",
    ]
    counts = {key: result[key] for key in ("n_images", "n_train", "n_test", "n_unreadable")}
    assert counts == {"n_images": 19, "n_train": 12, "n_test": 6, "n_unreadable": 1}
    assert result["mean_keypoints"] > 0

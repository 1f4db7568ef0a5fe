"""The synthetic fruit dataset: layout, determinism, image format, and ORB-separability."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression

from bovw.image.synthetic import CLASS_NAMES, encode_jpeg, generate_dataset, render_fruit


def orb():
    """ORB with the project's defaults for 100x100 photos."""
    return cv2.ORB_create(nfeatures=200, edgeThreshold=8, patchSize=8, fastThreshold=20)


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.jpg"))}


def test_layout_counts_and_summary(tmp_path):
    summary = generate_dataset(tmp_path, classes=3, train_per_class=4, test_per_class=2, seed=1)

    names = ["Apple Red 1", "Banana", "Orange"]
    assert summary == {
        "root": str(tmp_path),
        "classes": names,
        "counts": {"Training": 12, "Test": 6},
        "per_class": {"Training": 4, "Test": 2},
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Test", "Training"]
    for split, count in (("Training", 4), ("Test", 2)):
        assert sorted(p.name for p in (tmp_path / split).iterdir()) == sorted(names)
        for name in names:
            files = sorted(p.name for p in (tmp_path / split / name).iterdir())
            assert files == sorted(f"{n}_100.jpg" for n in range(count))


def test_class_names_look_like_fruits_360():
    assert len(CLASS_NAMES) >= 10
    assert len(set(CLASS_NAMES)) == len(CLASS_NAMES)
    assert CLASS_NAMES[0] == "Apple Red 1"
    assert sum(" " in name for name in CLASS_NAMES) >= 2


def test_every_file_decodes_to_size_by_size_rgb(tmp_path):
    generate_dataset(tmp_path, classes=len(CLASS_NAMES), train_per_class=2, test_per_class=1,
                     size=64)
    paths = sorted(tmp_path.rglob("*.jpg"))
    assert len(paths) == 3 * len(CLASS_NAMES)
    for path in paths:
        assert path.name.endswith("_64.jpg")
        image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
        assert image.shape == (64, 64, 3)
        assert image.dtype == np.uint8


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path):
    first = file_bytes(Path(generate_dataset(tmp_path / "a", 4, 3, 2, seed=7)["root"]))
    again = file_bytes(Path(generate_dataset(tmp_path / "b", 4, 3, 2, seed=7)["root"]))
    other = file_bytes(Path(generate_dataset(tmp_path / "c", 4, 3, 2, seed=8)["root"]))

    assert len(first) == 20
    assert first == again
    assert first.keys() == other.keys()
    assert all(first[name] != other[name] for name in first)


def test_asking_for_more_classes_keeps_the_first_ones_identical(tmp_path):
    fewer = file_bytes(Path(generate_dataset(tmp_path / "two", 2, 3, 2)["root"]))
    more = file_bytes(Path(generate_dataset(tmp_path / "three", 3, 3, 2)["root"]))

    assert {name: more[name] for name in fewer} == fewer
    assert len(more) == len(fewer) + 5


def test_render_fruit_is_deterministic_rgb_on_white():
    for name in CLASS_NAMES:
        for n in range(4):
            image = render_fruit(name, np.random.default_rng([3, n]))
            again = render_fruit(name, np.random.default_rng([3, n]))
            assert image.shape == (100, 100, 3)
            assert image.dtype == np.uint8
            assert np.array_equal(image, again)
            for corner in (image[:4, :4], image[:4, -4:], image[-4:, :4], image[-4:, -4:]):
                assert (corner == 255).all(), name
            fruit_fraction = (image.min(axis=2) < 230).mean()
            assert 0.15 < fruit_fraction < 0.8, (name, fruit_fraction)


def test_render_fruit_rejects_an_unknown_class():
    with pytest.raises(ValueError, match=re.escape("unknown synthetic fruit class 'Durian'; known: "
                                                   "Apple Red 1, Banana, Orange")):
        render_fruit("Durian", np.random.default_rng(0))


def test_every_class_gives_orb_keypoints():
    detector = orb()
    for name in CLASS_NAMES:
        counts = []
        for n in range(6):
            jpeg = encode_jpeg(render_fruit(name, np.random.default_rng([11, n])))
            grey = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
            counts.append(len(detector.detect(grey, None)))
        assert min(counts) >= 10, (name, counts)
        assert np.mean(counts) >= 25, (name, counts)


def test_classes_are_separable_by_grey_orb_bag_of_words():
    detector = orb()
    classes = CLASS_NAMES[:6]

    def descriptors(split, per_class):
        rows = []
        for label, name in enumerate(classes):
            for n in range(per_class):
                image = render_fruit(name, np.random.default_rng([split, label, n]))
                grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
                _, found = detector.detectAndCompute(grey, None)
                rows.append((label, np.unpackbits(found, axis=1).astype(np.float32)))
        return rows

    train, test = descriptors(0, 12), descriptors(1, 6)
    every = np.vstack([d for _, d in train])
    sample = every[np.random.default_rng(0).choice(len(every), 3000, replace=False)]
    vocabulary = KMeans(30, n_init=1, random_state=0).fit(sample)

    def histograms(rows):
        counts = np.array([np.bincount(vocabulary.predict(d), minlength=30) for _, d in rows])
        return counts / np.linalg.norm(counts, axis=1, keepdims=True), [lab for lab, _ in rows]

    model = LogisticRegression(C=10, max_iter=2000).fit(*histograms(train))
    assert model.score(*histograms(test)) >= 0.8


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"classes": len(CLASS_NAMES) + 1},
            f"classes must be between 1 and {len(CLASS_NAMES)} (got {len(CLASS_NAMES) + 1}): "
            f"the synthetic dataset has only {len(CLASS_NAMES)} fruit classes",
        ),
        ({"classes": 0}, f"classes must be between 1 and {len(CLASS_NAMES)} (got 0)"),
        ({"test_per_class": 0}, "train_per_class and test_per_class must be >= 1 (got 40 and 0)"),
        ({"size": 16}, "size must be >= 32 pixels (got 16)"),
        ({"seed": -1}, "seed must be a non-negative integer (got -1)"),
    ],
)
def test_bad_arguments_raise_value_error_and_write_nothing(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        generate_dataset(tmp_path / "out", **arguments)
    assert not (tmp_path / "out").exists()


def test_refuses_to_write_into_a_non_empty_split(tmp_path):
    (tmp_path / "Training" / "Mine").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="Training is not empty; choose a new root"):
        generate_dataset(tmp_path, classes=1, train_per_class=1, test_per_class=1)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["Mine", "Training"]

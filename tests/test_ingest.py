"""Ingest: which files are images, their labels and splits."""

from __future__ import annotations

from collections import Counter

import pytest

from bovw.config import IngestSettings
from bovw.pipeline.ingest import (
    InputError,
    assign_splits,
    check_local_input,
    extension_glob,
    list_files,
    with_labels,
)
from tests import imagefiles

SETTINGS = IngestSettings()


def write(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_extension_glob_matches_any_case():
    assert extension_glob(("jpg", ".png")) == "*.{[jJ][pP][gG],[pP][nN][gG]}"


def test_labels_and_splits_from_folders_with_spaces(spark, tmp_path):
    write(tmp_path / "Training" / "Apple Red 1" / "r_0_100.jpg", imagefiles.jpeg())
    write(tmp_path / "Training" / "Apple Red 1" / "UPPER.JPEG", imagefiles.jpeg())
    write(tmp_path / "Test" / "Apple Red 1" / "0_100.Png", imagefiles.rgba_png())
    write(tmp_path / "Test" / "Kiwi" / "notes.txt", b"not listed")
    files = with_labels(list_files(spark, str(tmp_path), SETTINGS))
    rows = sorted((r["path"].rsplit("/", 1)[1], r["label"], r["split_folder"])
                  for r in files.collect())
    assert rows == [
        ("0_100.Png", "Apple Red 1", "Test"),
        ("UPPER.JPEG", "Apple Red 1", "Training"),
        ("r_0_100.jpg", "Apple Red 1", "Training"),
    ]


def test_stratified_split_without_split_folders(spark, tmp_path):
    for label, count in (("Lemon", 8), ("Grape Blue", 4)):
        for i in range(count):
            write(tmp_path / label / f"{i}.jpg")
    files = with_labels(list_files(spark, str(tmp_path), SETTINGS))
    split = assign_splits(files, test_fraction=0.25, seed=1, has_split_folders=False)
    counts = Counter((r["label"], r["split"]) for r in split.collect())
    assert counts == {("Lemon", "Training"): 6, ("Lemon", "Test"): 2,
                      ("Grape Blue", "Training"): 3, ("Grape Blue", "Test"): 1}
    again = assign_splits(files, test_fraction=0.25, seed=1, has_split_folders=False)
    assert sorted(map(tuple, split.select("path", "split").collect())) == sorted(
        map(tuple, again.select("path", "split").collect()))
    other_seed = assign_splits(files, test_fraction=0.25, seed=2, has_split_folders=False)
    assert sorted(map(tuple, split.select("path", "split").collect())) != sorted(
        map(tuple, other_seed.select("path", "split").collect()))


def test_missing_input_folder(tmp_path):
    with pytest.raises(InputError, match=r"^input folder not found: .*nowhere$"):
        check_local_input(str(tmp_path / "nowhere"), SETTINGS)


def test_input_folder_without_images(tmp_path):
    write(tmp_path / "Training" / "Kiwi" / "readme.txt")
    with pytest.raises(InputError, match="holds no image files"):
        check_local_input(str(tmp_path), SETTINGS)

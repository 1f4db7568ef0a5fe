"""Benchmark inputs built from a Fruits-360 folder with links (bench/datasets.py)."""

import errno
import os
from pathlib import Path

import pytest

from bench import datasets
from bench.datasets import DatasetError, build_copies, build_subset, choose_subset


def _source(root: Path) -> Path:
    for relative in ("Training/A/1.jpg", "Training/A/2.jpg", "Training/B/3.jpg",
                     "Test/A/4.jpg", "Test/B/5.jpg"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(relative.encode())
    return root


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_copies_are_hard_links_under_new_names_and_reused(tmp_path):
    source = _source(tmp_path / "fruits")
    built = build_copies(source, tmp_path / "work", copies=2)
    assert built == tmp_path / "work" / "fruits-x2"
    assert _tree(built) == [
        ".complete",
        "Test/A/copy0_4.jpg", "Test/A/copy1_4.jpg", "Test/B/copy0_5.jpg", "Test/B/copy1_5.jpg",
        "Training/A/copy0_1.jpg", "Training/A/copy0_2.jpg",
        "Training/A/copy1_1.jpg", "Training/A/copy1_2.jpg",
        "Training/B/copy0_3.jpg", "Training/B/copy1_3.jpg",
    ]
    link = built / "Training" / "B" / "copy1_3.jpg"
    assert link.stat().st_ino == (source / "Training" / "B" / "3.jpg").stat().st_ino
    marker_inode = (built / ".complete").stat().st_ino
    assert build_copies(source, tmp_path / "work", copies=2) == built
    assert (built / ".complete").stat().st_ino == marker_inode  # reused, not rebuilt


def test_an_unfinished_build_is_started_again(tmp_path):
    source = _source(tmp_path / "fruits")
    leftover = tmp_path / "work" / "fruits-x3" / "Training" / "A" / "copy0_1.jpg"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"stale")
    built = build_copies(source, tmp_path / "work", copies=3)
    assert len(_tree(built)) == 5 * 3 + 1
    assert leftover.read_bytes() == b"Training/A/1.jpg"


def test_symbolic_links_when_hard_links_fail(tmp_path, monkeypatch):
    def refuse(source, link):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(datasets.os, "link", refuse)
    warnings = []
    built = build_copies(_source(tmp_path / "fruits"), tmp_path / "work", 1, warnings.append)
    assert (built / "Test" / "B" / "copy0_5.jpg").is_symlink()
    assert (built / "Test" / "B" / "copy0_5.jpg").read_bytes() == b"Test/B/5.jpg"
    assert warnings == ["hard links failed (Invalid cross-device link); "
                        "making symbolic links instead"]


def test_refuses_a_work_folder_inside_the_git_tree(tmp_path):
    with pytest.raises(DatasetError, match=r"is inside the git tree .*; give a work folder"):
        build_copies(_source(tmp_path / "fruits"), datasets.REPO_ROOT / "bench" / "x", 2)


def test_subset_is_seeded_and_keeps_relative_paths(tmp_path):
    files = [Path(p) for p in ("Training/A/1.jpg", "Training/A/2.jpg", "Training/B/3.jpg",
                               "Test/A/4.jpg", "Test/B/5.jpg")]
    assert choose_subset(files, 3, None, seed=0) == choose_subset(files, 3, None, seed=0)
    assert len(choose_subset(files, 3, None, seed=0)) == 3
    one_class = choose_subset(files, None, 1, seed=0)
    assert len({path.parts[1] for path in one_class}) == 1
    built = build_subset(_source(tmp_path / "fruits"), tmp_path / "work", max_images=3)
    assert built.name == "fruits-sample3-classesall-seed0"
    assert _tree(built) == [".complete", *sorted(str(p) for p in choose_subset(files, 3, None, 0))]

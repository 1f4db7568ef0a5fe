"""bench/dense_grid.py: a dense grid's descriptors by dense_orb and by ORB.compute, timed."""

from __future__ import annotations

import pytest

from bench import dense_grid
from bovw.image import orb
from tests import imagefiles


def jpegs(folder, count: int = 4) -> None:
    for seed in range(count):
        path = folder / "Training" / f"Class{seed % 2}" / f"{seed}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(imagefiles.jpeg(seed=seed))


def test_it_checks_the_bytes_and_times_every_way(tmp_path, capsys):
    jpegs(tmp_path)
    assert dense_grid.main([str(tmp_path), "--every", "1", "--repeat", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"4 JPEGs of {tmp_path}, 2 rounds; ORB.compute's bytes")
    for name in ("grid_descriptors", "ORB.compute", "extract_descriptors ",
                 "extract_descriptors, OpenCV"):
        assert f"  {name}" in printed
    assert orb.grid_descriptors is dense_grid.grid_descriptors  # switched back on


def test_bytes_other_than_opencvs_are_reported(tmp_path, monkeypatch, capsys):
    jpegs(tmp_path, 1)
    fast = dense_grid.grid_descriptors
    monkeypatch.setattr(dense_grid, "grid_descriptors", lambda *args: (
        lambda described: (described[0] ^ 1, described[1]))(fast(*args)))
    assert dense_grid.main([str(tmp_path), "--every", "1", "--repeat", "1"]) == 1
    assert "grid_descriptors differs from ORB.compute" in capsys.readouterr().err


def test_a_folder_without_jpegs_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        dense_grid.main([str(tmp_path)])
    assert f"no .jpg files under {tmp_path}" in capsys.readouterr().err

"""bench/dense_grid.py: a dense grid's descriptors by dense_orb and by ORB.compute, timed."""

from __future__ import annotations

import pytest

from bench import dense_grid
from bovw.image import orb
from tests import imagefiles, per_image_bench


def test_it_checks_the_bytes_and_times_every_way(tmp_path, capsys):
    per_image_bench.check_table(dense_grid.main, tmp_path, capsys, "ORB.compute's bytes",
                                ("grid_descriptors", "ORB.compute", "extract_descriptors ",
                                 "extract_descriptors, OpenCV"))
    assert orb.grid_descriptors is dense_grid.grid_descriptors  # switched back on


def test_bytes_other_than_opencvs_are_reported(tmp_path, monkeypatch, capsys):
    imagefiles.jpeg_folder(tmp_path, 1)
    fast = dense_grid.grid_descriptors
    monkeypatch.setattr(dense_grid, "grid_descriptors", lambda *args: (
        lambda described: (described[0] ^ 1, described[1]))(fast(*args)))
    assert dense_grid.main([str(tmp_path), "--every", "1", "--repeat", "1"]) == 1
    assert "grid_descriptors differs from ORB.compute" in capsys.readouterr().err


def test_a_folder_without_jpegs_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        dense_grid.main([str(tmp_path)])
    assert f"no .jpg files under {tmp_path}" in capsys.readouterr().err

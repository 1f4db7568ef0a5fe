"""bench/jpeg_headers.py: decode_grey timed with and without its JPEG header reader."""

from __future__ import annotations

import pytest

from bench import jpeg_headers
from tests import imagefiles


def test_it_times_every_way_and_checks_the_same_images(tmp_path, capsys):
    for seed in range(4):
        folder = tmp_path / "Training" / f"Class{seed % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{seed}.jpg").write_bytes(imagefiles.jpeg(seed=seed))
    assert jpeg_headers.main([str(tmp_path), "--every", "1", "--repeat", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"4 JPEGs of {tmp_path}, 2 rounds; the same grey images")
    for name in ("decode_grey ", "decode_grey, Pillow's header", "Image.open",
                 "plain_jpeg_frame"):
        assert f"  {name}" in printed


def test_a_folder_without_jpegs_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        jpeg_headers.main([str(tmp_path)])
    assert f"no .jpg files under {tmp_path}" in capsys.readouterr().err

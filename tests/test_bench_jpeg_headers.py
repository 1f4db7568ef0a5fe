"""bench/jpeg_headers.py: decode_grey timed with and without its JPEG header reader."""

from __future__ import annotations

import pytest

from bench import jpeg_headers
from tests import per_image_bench


def test_it_times_every_way_and_checks_the_same_images(tmp_path, capsys):
    per_image_bench.check_table(jpeg_headers.main, tmp_path, capsys, "the same grey images",
                                ("decode_grey ", "decode_grey, Pillow's header", "Image.open",
                                 "plain_jpeg_frame"))


def test_a_folder_without_jpegs_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        jpeg_headers.main([str(tmp_path)])
    assert f"no .jpg files under {tmp_path}" in capsys.readouterr().err

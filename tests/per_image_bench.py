"""The shared check of the per-image bench scripts (bench/jpeg_headers.py,
bench/dense_grid.py): their table over a few generated JPEGs."""

from __future__ import annotations

from tests import imagefiles


def check_table(main, root, capsys, heading: str, rows: tuple[str, ...]) -> str:
    """Run a bench's `main` over 4 generated JPEGs under `root`, 2 rounds; assert it
    succeeds, prints `heading` after "4 JPEGs of ROOT, 2 rounds; " and a line per row.
    Returns what it printed."""
    imagefiles.jpeg_folder(root, 4)
    assert main([str(root), "--every", "1", "--repeat", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"4 JPEGs of {root}, 2 rounds; {heading}")
    for row in rows:
        assert f"  {row}" in printed
    return printed

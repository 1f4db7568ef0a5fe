"""What a Parquet folder's files say about themselves (their footers, read by pyarrow)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq


def parquet_codecs(folder: Path) -> set[str]:
    """The codec of every column chunk of every Parquet file in `folder`."""
    codecs = set()
    for path in folder.glob("*.parquet"):
        metadata = pq.ParquetFile(path).metadata
        codecs |= {metadata.row_group(group).column(column).compression
                   for group in range(metadata.num_row_groups)
                   for column in range(metadata.num_columns)}
    return codecs

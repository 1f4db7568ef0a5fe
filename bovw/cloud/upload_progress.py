"""The text progress bar of `bovw s3 upload` (bovw.cloud.s3.upload)."""

from __future__ import annotations

import threading
import time
from typing import Any, TextIO

__all__ = ["ProgressBar", "human_bytes"]


def human_bytes(count: float) -> str:
    """`count` bytes as text in B, KB, MB or GB (powers of 1024): "1.5 MB"."""
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


class ProgressBar:
    """A one-line text bar: redrawn in place on a terminal, a line per 10% elsewhere."""

    WIDTH = 30

    def __init__(self, total_files: int, total_bytes: int, stream: TextIO | None) -> None:
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.stream = stream
        self.interactive = bool(stream is not None and stream.isatty())
        self.files_done = 0
        self.skipped = 0
        self.failed = 0
        self.bytes_done = 0
        self.last_decile = -1
        self.last_draw = 0.0
        self.lock = threading.Lock()

    def skip(self, count: int) -> None:
        with self.lock:
            self.skipped += count
            self.files_done += count
            self._draw()

    def add_bytes(self, count: int) -> None:
        with self.lock:
            self.bytes_done += count
            if self.interactive:
                self._draw()

    def file_done(self, ok: bool) -> None:
        with self.lock:
            self.files_done += 1
            self.failed += 0 if ok else 1
            self._draw()

    def _line(self) -> str:
        fraction = self.files_done / self.total_files if self.total_files else 1.0
        filled = int(fraction * self.WIDTH)
        return (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] "
            f"{self.files_done}/{self.total_files} files, "
            f"{human_bytes(self.bytes_done)}/{human_bytes(self.total_bytes)}"
            f" (skipped {self.skipped}, failed {self.failed})"
        )

    def _draw(self, final: bool = False) -> None:
        if self.stream is None:
            return
        if self.interactive:
            now = time.monotonic()
            if final or now - self.last_draw >= 0.1:
                self.last_draw = now
                self.stream.write("\r" + self._line())
                self.stream.flush()
            return
        decile = 10 * self.files_done // self.total_files if self.total_files else 10
        if decile > self.last_decile and not final:
            self.last_decile = decile
            self.stream.write(self._line() + "\n")

    def finish(self, report: Any) -> None:
        if self.stream is None:
            return
        with self.lock:
            if self.interactive:
                self._draw(final=True)
                self.stream.write("\n")
            self.stream.write(report.summary() + "\n")
            self.stream.flush()

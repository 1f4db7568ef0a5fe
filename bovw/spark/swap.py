"""Replacing a bovw output by its complete successor, built beside it.

`--overwrite` of an existing bovw output never deletes it up front: the new output is built
in the hidden sibling `DIR/.NAME.bovw-new` and swapped in once complete. Until then the old
output stays whole and readable; a failed or killed new one leaves it untouched, and the
same command again resumes the staged one (same spec) or starts it afresh (another spec).
The swap first writes its journal `DIR/.NAME.bovw-swap`, then:
- rewrites the staged files' own paths (summary, stage markers, reports) to the final
  name, so the swapped output names itself;
- local disks, HDFS: renames NAME to `.NAME.bovw-old`, `.NAME.bovw-new` to NAME (both
  atomic), deletes `.NAME.bovw-old`;
- object stores (S3A, where a folder rename is a copy of every file, then deletes): deletes
  the old output, then moves the new one file by file (one server-side copy and delete
  each), the marker and summary.json last, then removes the staging folder.
A command killed in the middle leaves the journal; the next bovw command on that output
finishes the swap before anything else. At every step the complete new output exists in
full in one place or the other, so the two are never both lost.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable

from pyspark.sql import SparkSession

from bovw.errors import OutputError
from bovw.spark import storage

__all__ = ["OLD_SUFFIX", "SWAP_SUFFIX", "Swap"]

OLD_SUFFIX = ".bovw-old"
SWAP_SUFFIX = ".bovw-swap"
# Text files that may name their own folder (summaries, stage records, specs, reports, tables).
_TEXT_SUFFIXES = (".json", ".html", ".md", ".csv")


class Swap:
    """Puts the complete staged output `staging` in place of `final` (see the module doc).

    `last` are the files whose presence says "finished": a file-by-file swap removes them
    first from the old output and publishes them last."""

    def __init__(self, spark: SparkSession, final: str, staging: str,
                 log: Callable[[str], None], last: tuple[str, ...]):
        self.spark, self.final, self.staging, self.log = spark, final, staging, log
        self.last = last
        name = storage.base_name(spark, final)
        self.old = storage.sibling(spark, final, f".{name}{OLD_SUFFIX}")
        self.journal = storage.sibling(spark, final, f".{name}{SWAP_SUFFIX}")

    def _record(self, phase: str) -> None:
        storage.write_text(self.spark, self.journal, json.dumps(
            {"format": "bovw-swap", "output": self.final, "staging": self.staging,
             "old": self.old, "phase": phase}, indent=2))

    def publish(self) -> None:
        """Record the swap in the journal, then carry it out."""
        self._record("relocate")
        self.finish()

    def pending(self) -> bool:
        """True when a journal says a swap was begun and not finished."""
        return storage.exists(self.spark, self.journal)

    def finish(self) -> None:
        """Carry the swap recorded in the journal to its end (idempotent)."""
        phase = json.loads(storage.read_text(self.spark, self.journal))["phase"]
        if phase == "relocate":
            self._relocate()
            phase = "swap"
            self._record(phase)
        if storage.has_atomic_rename(self.spark, self.final):
            self._rename_folders()
        else:
            if phase == "swap":
                self._clear_final()
                self._record("move")
            self._move_files()
        storage.delete(self.spark, self.journal)

    def _relocate(self) -> None:
        forms = [(self.staging, self.final),
                 (json.dumps(self.staging)[1:-1], json.dumps(self.final)[1:-1]),
                 (html.escape(self.staging), html.escape(self.final))]
        for relative in storage.list_files(self.spark, self.staging):
            if not relative.endswith(_TEXT_SUFFIXES):
                continue
            path = storage.join(self.staging, relative)
            text = original = storage.read_text(self.spark, path)
            for staged, final in forms:
                text = text.replace(staged, final)
            if text != original:
                storage.write_text(self.spark, path, text)

    def _rename_folders(self) -> None:
        spark, final, staging, old = self.spark, self.final, self.staging, self.old
        if storage.exists(spark, staging):
            if storage.exists(spark, final):
                if storage.exists(spark, old):
                    raise OutputError(
                        f"cannot finish replacing {final}: {old} (the previous output) and "
                        f"{staging} (the new one) both exist as well; keep the one you want "
                        f"as {final} and delete the others and {self.journal}")
                storage.rename(spark, final, old)
            storage.rename(spark, staging, final)
        elif not storage.exists(spark, final):
            raise OutputError(
                f"cannot finish replacing {final}: neither it nor the new output "
                f"{staging} exists" + (f"; the previous output is in {old}"
                                       if storage.exists(spark, old) else ""))
        storage.delete(spark, old)

    def _clear_final(self) -> None:
        for name in self.last:
            storage.delete(self.spark, storage.join(self.final, name))
        storage.delete(self.spark, self.final)

    def _move_files(self) -> None:
        files = storage.list_files(self.spark, self.staging)
        files.sort(key=lambda relative: relative in self.last)
        for relative in files:
            target = storage.join(self.final, relative)
            # Only a copy of this very file, from a move cut short, can be there.
            storage.delete(self.spark, target)
            storage.rename(self.spark, storage.join(self.staging, relative), target)
        storage.delete(self.spark, self.staging)

"""bovw's own output folders: recognised, locked, and replaced only by a complete successor.

Every output a bovw command writes (a run, sweep, comparison or predictions folder) gets
the marker `_bovw.json` ({"format": "bovw-output", "format_version": 1, "kind": ...})
before anything else, under the output's lock (bovw.spark.leases). A folder is bovw's when it
holds that marker, or, for folders made before the marker existed, its spec file
(run.json, sweep.json, compare.json) or the layout of a predictions table. Anything else,
a regular file, or a non-empty folder of other files, is never written into or deleted,
with or without --overwrite. A bovw folder that also holds files bovw does not write
(say a thesis.txt put into a run folder) is resumed but never replaced: --overwrite would
delete them.

`--overwrite` of an existing bovw output never deletes it up front: the new output is built
in the hidden sibling `DIR/.NAME.bovw-new` and swapped in once complete (bovw.spark.swap).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import SparkSession

from bovw.errors import OutputError
from bovw.locations import within
from bovw.spark import leases, storage
from bovw.spark.swap import Swap
from bovw.version import __version__

__all__ = ["KINDS", "MARKER", "STAGING_SUFFIX", "TEMPORARY", "Found", "OutputFolder",
           "OutputKind", "foreign_names", "inspect", "open_output", "write_marker"]

MARKER = "_bovw.json"
MARKER_FORMAT = "bovw-output"
MARKER_VERSION = 1
STAGING_SUFFIX = ".bovw-new"
# Files whose presence says "finished": removed first and published last by a file-by-file swap.
_LAST = (MARKER, "summary.json")
# Temporary names of bovw's own writes (bovw.spark.storage) and the local filesystem's checksums.
TEMPORARY = ("._tmp_*",)


@dataclass(frozen=True)
class OutputKind:
    """One kind of bovw output: how it is named in messages and what it may hold."""

    name: str
    noun: str
    command: str
    spec_file: str | None
    patterns: tuple[str, ...]

    def made_by_bovw(self, name: str) -> bool:
        """True when an entry called `name` is one bovw writes in this kind of output."""
        if name.startswith(".") and name.endswith(".crc"):
            name = name[1:-4]
        return any(fnmatch.fnmatchcase(name, pattern)
                   for pattern in (MARKER, *TEMPORARY, *self.patterns))


KINDS = {kind.name: kind for kind in (
    OutputKind("run", "run folder", "bovw run", "run.json", (
        "run.json", "_stages", "descriptors", "rejects", "histograms", "projections", "features",
        "models", "metrics.json", "summary.json", "report.html", "model.npz", "cnn_features",
        "cnn_raw")),
    OutputKind("sweep", "sweep folder", "bovw sweep", "sweep.json", (
        "sweep.json", "points", "sweep.csv", "sweep.md", "sweep_*.png", "report.html")),
    OutputKind("comparison", "comparison folder", "bovw compare", "compare.json", (
        "compare.json", "variants", "comparison.csv", "comparison_per_class.csv",
        "comparison.md", "report.html")),
    OutputKind("predictions", "predictions folder", "bovw predict", None, (
        "_SUCCESS", "part-*", "_temporary")),
)}


@dataclass(frozen=True)
class Found:
    """What lies at a path: "absent", "empty" (a folder with nothing of note), "file",
    "bovw" (a bovw output of `kind`) or "other" (a folder bovw did not make)."""

    state: str
    kind: str | None = None
    names: tuple[str, ...] = ()


def _read_marker(spark: SparkSession, folder: str) -> str | None:
    try:
        marker = json.loads(storage.read_text(spark, storage.join(folder, MARKER)))
    except ValueError:
        return None
    if not isinstance(marker, dict) or marker.get("format") != MARKER_FORMAT:
        return None
    if marker.get("format_version") != MARKER_VERSION or marker.get("kind") not in KINDS:
        raise OutputError(
            f"output {folder} was made by another bovw version (output format "
            f"{marker.get('format_version')!r}, kind {marker.get('kind')!r}); bovw "
            f"{__version__} reads format {MARKER_VERSION}: use that version or another --output")
    return marker["kind"]


def inspect(spark: SparkSession, path: str,
            legacy: Callable[[str], str | None] | None = None) -> Found:
    """What lies at `path`. `legacy(path)` names the kind of an output made before the
    marker existed that has no spec file (a predictions table), or returns None."""
    if not storage.exists(spark, path):
        return Found("absent")
    if storage.is_file(spark, path):
        return Found("file")
    names = tuple(storage.list_names(spark, path))
    if not [name for name in names
            if not any(fnmatch.fnmatchcase(name, pattern) for pattern in TEMPORARY)]:
        return Found("empty", names=names)
    kind = _read_marker(spark, path) if MARKER in names else None
    if kind is None:
        kind = next((kind.name for kind in KINDS.values() if kind.spec_file in names), None)
    if kind is None and legacy is not None:
        kind = legacy(path)
    return Found("other" if kind is None else "bovw", kind, names)


def foreign_names(found: Found) -> list[str]:
    """The entries of a bovw output that bovw does not write there."""
    kind = KINDS[found.kind]
    return [name for name in found.names if not kind.made_by_bovw(name)]


def _listed(names: list[str] | tuple[str, ...], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def write_marker(spark: SparkSession, folder: str, kind: str) -> None:
    """Write the marker that says `folder` is a bovw output of `kind` (one of KINDS)."""
    storage.write_text(spark, storage.join(folder, MARKER), json.dumps(
        {"format": MARKER_FORMAT, "format_version": MARKER_VERSION, "kind": kind,
         "bovw_version": __version__}, indent=2))


class OutputFolder:
    """An output opened for writing: `work` is where to write (the output itself, or its
    staging sibling when replacing it). Leaving the `with` block normally publishes a
    staged output; leaving it by an error keeps the staged one for the next attempt. The
    lock is released either way."""

    def __init__(self, spark: SparkSession, final: str, work: str, lease: leases.Lease,
                 swap: Swap | None, log: Callable[[str], None]):
        self.spark, self.final, self.work, self.lease = spark, final, work, lease
        self.swap, self.log = swap, log

    @property
    def staged(self) -> bool:
        """True when the output is built beside the final one, to replace it once complete."""
        return self.swap is not None

    def __enter__(self) -> OutputFolder:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        try:
            if exc_type is None and self.swap is None and not self.lease.holds():
                self.log(f"[bovw] warning: the lock of {self.final} was taken by "
                         f"{self.lease.lost_to} while this command ran")
            if exc_type is None and self.swap is not None:
                if not self.lease.holds():
                    raise OutputError(
                        f"the lock of {self.final} was taken by {self.lease.lost_to} while "
                        f"this command ran; {self.final} was left as it was and the new "
                        f"output stays in {self.work}")
                self.swap.publish()
                self.log(f"[bovw] {self.final} replaced by the new output")
        finally:
            self.lease.release()


def open_output(spark: SparkSession, root: str, kind: str, *, overwrite: bool,
                resume: Callable[[str], None], matches: Callable[[str], bool],
                start: Callable[[str], None], reads: Sequence[str | None] = (),
                legacy: Callable[[str], str | None] | None = None,
                log: Callable[[str], None] = print) -> OutputFolder:
    """Lock `root` and make it (or its staging sibling) ready for a new `kind` output.

    `start(folder)` writes the spec of a new output into an empty folder;
    `resume(folder)` accepts an existing output of this kind without --overwrite (writing
    its spec if missing) or raises OutputError; `matches(folder)` says whether an existing
    output has this command's spec (a staged one is then resumed). `reads` are the paths
    the command reads (input, descriptors): one inside an output that --overwrite would
    replace is refused, as the swap would delete it, and so is an output inside one of
    them. Returns the
    OutputFolder to use in a `with` block. Raises OutputError (OutputInUseError when
    another live command holds the lock).
    """
    output_kind = KINDS[kind]
    for read in reads:
        if read and within(root, read):
            # A run folder holds PNG plots: the next run of a <Class>/*.jpg input took
            # them for a class of its own, and scored it (review 5).
            raise OutputError(f"output {root} lies inside {read}, which this command "
                              "reads: the next command to read it would take bovw's files "
                              "(a report's plots) for its own; choose an --output outside it")
    name = storage.base_name(spark, root)
    if ":" in name:
        # Hadoop parses the staging sibling's name (".a:b.bovw-new") as a URL with a scheme.
        raise OutputError(f"output {root}: Hadoop cannot name a folder whose name holds "
                          "':'; choose another --output")
    try:
        staging = storage.sibling(spark, root, f".{name}{STAGING_SUFFIX}")
    except ValueError:
        # Hadoop's Path gives "." and "a/.." no name either: the lock and the staging
        # folder are named after the output's own name.
        raise OutputError(f"output {root} names no folder of its own (a filesystem or "
                          "bucket root, '.' or '..'); choose a folder below it, e.g. "
                          f"{storage.join(root, 'run')}") from None
    lease = leases.acquire(spark, root, output_kind.command, log=log)
    try:
        swap = Swap(spark, root, staging, log, _LAST)
        work = _prepare(spark, root, output_kind, swap, overwrite, resume, matches, start,
                        reads, legacy, log)
    except BaseException:
        lease.release()
        raise
    return OutputFolder(spark, root, work, lease, swap if work == staging else None, log)


def _prepare(spark: SparkSession, root: str, kind: OutputKind, swap: Swap, overwrite: bool,
             resume: Callable[[str], None], matches: Callable[[str], bool],
             start: Callable[[str], None], reads: Sequence[str | None],
             legacy: Callable[[str], str | None] | None, log: Callable[[str], None]) -> str:
    repaired = swap.pending()
    if repaired:
        log(f"[bovw] finishing the replacement of {root} that an earlier command left "
            "half done")
        swap.finish()
    found = inspect(spark, root, legacy)
    never = "bovw never replaces it, with or without --overwrite"
    if found.state == "file":
        raise OutputError(f"output {root} is a file, not a bovw {kind.noun}; {never}: "
                          "choose another --output")
    if found.state == "other":
        raise OutputError(f"output {root} exists and is not a bovw {kind.noun} (it holds "
                          f"{_listed(found.names)}); {never}: choose an empty or new folder")
    if found.state == "bovw" and found.kind != kind.name:
        raise OutputError(f"output {root} is a bovw {KINDS[found.kind].noun}, not a "
                          f"{kind.noun}; choose another --output")
    if found.state in ("absent", "empty"):
        write_marker(spark, root, kind.name)
        start(root)
        return root
    if overwrite and repaired and matches(root):
        return root  # the interrupted replacement was this very command's: it is done
    if not overwrite:
        try:
            resume(root)
        except OutputError as error:
            if storage.exists(spark, swap.staging):
                raise OutputError(f"{error} (a replacement was begun in {swap.staging}: the "
                                  "same command with --overwrite resumes it)") from None
            raise
        if MARKER not in found.names:
            write_marker(spark, root, kind.name)
        return root
    foreign = foreign_names(found)
    if foreign:
        raise OutputError(
            f"output {root} is a bovw {kind.noun} but also holds {_listed(foreign)}, which "
            "bovw did not write; --overwrite would delete them: move them out, or choose "
            "another --output")
    # In any spelling: `--input data` lies inside `--output .`, and so does a link to it.
    inside = [path for path in reads if path and within(path, root)]
    if inside:
        raise OutputError(f"{inside[0]} lies inside {root}, which --overwrite would replace "
                          "(and delete once the new one is complete); copy it elsewhere first, "
                          "or choose another --output")
    return _stage(spark, root, kind, swap.staging, matches, start, log)


def _stage(spark: SparkSession, root: str, kind: OutputKind, staging: str,
           matches: Callable[[str], bool], start: Callable[[str], None],
           log: Callable[[str], None]) -> str:
    staged = inspect(spark, staging)
    if staged.state in ("file", "other") or (staged.state == "bovw" and (
            staged.kind != kind.name or foreign_names(staged))):
        raise OutputError(f"{staging}, where bovw builds the replacement of {root}, holds "
                          "something bovw did not make there; move it away")
    if staged.state == "bovw" and matches(staging):
        log(f"[bovw] resuming the replacement of {root}, staged in {staging}")
        return staging
    if staged.state != "absent":
        storage.delete(spark, staging)
    log(f"[bovw] the new {kind.noun} is built in {staging} and replaces {root} once complete")
    write_marker(spark, staging, kind.name)
    start(staging)
    return staging

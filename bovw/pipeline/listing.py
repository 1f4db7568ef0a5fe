"""What Spark's file listing leaves out of a dataset folder, and what bovw does about it.

Spark's listing (and Hadoop's FileInputFormat) skip every file or folder whose name starts
with "_" or "." (spark_skips_name). In a local tree bovw walks the folder itself
(walk_local_tree): it reads the "_" images itself and says how many hidden ones it leaves
out. Elsewhere (S3, HDFS) a few glob listings find such names near the top of the tree
(names_spark_skips), so that a run says what it does not read instead of losing it
without a word.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pyspark.sql import SparkSession

from bovw.spark import storage

__all__ = ["LocalTree", "SkippedNames", "names_spark_skips", "spark_skips_name",
           "walk_local_tree"]


@dataclass(frozen=True)
class LocalTree:
    """What to read from a local input tree so that symbolic link loops are not followed.

    `loops` are (link, target) pairs of links to one of their own ancestor folders.
    `name_skipped` are the image files that Spark's file listing leaves out because a
    file or folder name on their way down starts with "_" (see spark_skips_name), such as
    a camera's `_MG_1234.JPG`: bovw reads them itself. `hidden` are the image files below a
    name starting with "." (macOS `._x.jpg` companions, `.thumbs/`): Spark leaves them
    out too, and so does bovw, saying so. `other_images` counts the (not hidden) files of
    common image types outside `extensions` (".webp", ".heic", ...) by type, which are
    not read: a photo folder often holds some, and they should not vanish without a word.
    `sources` (only when there are loops) are what Spark reads instead of the root: the
    image files directly inside the folders that lead to a loop, and every other folder
    (Spark lists those recursively). Paths are absolute and named the way Spark names
    them: symbolic links kept, not resolved. `unlisted` are sources Hadoop cannot name.
    """

    loops: tuple[tuple[str, str], ...]
    sources: tuple[str, ...] = ()
    unlisted: tuple[str, ...] = ()
    name_skipped: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    other_images: tuple[tuple[str, int], ...] = ()


def walk_local_tree(folder: str, extensions: tuple[str, ...]) -> LocalTree:
    """Walk `folder`, following symbolic links except those that loop; see LocalTree.

    A link loops when its target is the folder holding it or one of that folder's
    ancestors on the way down: Hadoop's recursive listing would follow it, listing the
    same files again under longer names up to the kernel's 40-link limit, and two such
    links make that listing exponential. Unreadable folders and broken links are skipped.
    """
    suffixes = _suffixes(extensions)
    root = os.path.abspath(folder)
    parents: dict[str, str] = {}
    children: dict[str, list[str]] = {}
    loops: list[tuple[str, str]] = []
    skipped: dict[str, list[str]] = {_NAME_SKIPPED: [], _HIDDEN: []}
    other_images: dict[str, int] = {}
    pending = [(root, frozenset({os.path.realpath(root)}), "")]
    while pending:
        current, ancestors, skip = pending.pop()
        children[current] = []
        for entry in _entries(current):
            kind = _skip_kind(entry.name)
            entry_skip = _HIDDEN if _HIDDEN in (skip, kind) else skip or kind
            try:
                is_folder = entry.is_dir(follow_symlinks=True)
            except OSError:
                continue
            if not is_folder:
                if not entry.name.lower().endswith(suffixes):
                    file_type = os.path.splitext(entry.name)[1].lower()
                    if file_type in _OTHER_IMAGE_TYPES and entry_skip != _HIDDEN:
                        other_images[file_type] = other_images.get(file_type, 0) + 1
                elif entry_skip and _is_file(entry):
                    skipped[entry_skip].append(entry.path)
                continue
            real = os.path.realpath(entry.path)
            if real in ancestors:
                loops.append((entry.path, real))
                continue
            parents[entry.path] = current
            children[current].append(entry.path)
            pending.append((entry.path, ancestors | {real}, entry_skip))
    name_skipped = tuple(sorted(skipped[_NAME_SKIPPED]))
    hidden = tuple(sorted(skipped[_HIDDEN]))
    others = tuple(sorted(other_images.items(), key=lambda item: (-item[1], item[0])))
    if not loops:
        return LocalTree((), name_skipped=name_skipped, hidden=hidden, other_images=others)
    leading_to_loops: set[str] = set()
    for link, _target in loops:
        holder: str | None = os.path.dirname(link)
        while holder is not None and holder not in leading_to_loops:
            leading_to_loops.add(holder)
            holder = parents.get(holder)
    sources = []
    for current in leading_to_loops:
        sources += [entry.path for entry in _entries(current)
                    if entry.name.lower().endswith(suffixes) and _is_file(entry)]
        sources += [child for child in children[current] if child not in leading_to_loops]
    readable = [path for path in sources if ":" not in path or storage.literal(path) == path]
    unlisted = [path for path in sources if path not in readable]
    return LocalTree(tuple(sorted(loops)), tuple(sorted(readable)), tuple(sorted(unlisted)),
                     name_skipped, hidden, others)


def _suffixes(extensions: tuple[str, ...]) -> tuple[str, ...]:
    """(".jpg", ...) for ("jpg", ...): what str.endswith on a lower-case name takes."""
    return tuple("." + ext.lower().lstrip(".") for ext in extensions)


# Photo formats a folder of pictures may hold besides the configured ones.
_OTHER_IMAGE_TYPES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp",
                                ".gif", ".tif", ".tiff", ".heic", ".heif", ".avif", ".jp2"})
_NAME_SKIPPED = "name_skipped"
_HIDDEN = "hidden"


def spark_skips_name(name: str) -> bool:
    """Whether Spark's file listing leaves out a file or folder of this name below the
    folder it reads (Spark 4's HadoopFSUtils.shouldFilterOutPathName; _list_files also
    checks the listing itself, so a Spark that lists more reads nothing twice):
    names starting with "_" (unless holding "=", or Parquet's "_metadata" and
    "_common_metadata") or "." are skipped, even when the file is named explicitly."""
    if name.startswith(("_metadata", "_common_metadata")):
        return False
    return name.startswith(".") or (name.startswith("_") and "=" not in name)


def _skip_kind(name: str) -> str:
    """Why the listing leaves out what lies below `name`: hidden, skipped by name, or ""."""
    if name.startswith("."):
        return _HIDDEN
    return _NAME_SKIPPED if spark_skips_name(name) else ""


def _entries(folder: str) -> list[os.DirEntry]:
    try:
        return sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return []


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file(follow_symlinks=True)
    except OSError:
        return False


@dataclass(frozen=True)
class SkippedNames:
    """What Spark's listing leaves out of a folder that is not local, found by name.

    `images`: image files (of the configured extensions) named with a leading "_" or ".",
    or inside a folder so named; `folders`: such folders (their contents are not listed).
    Both relative to the folder, "/"-separated, sorted.
    """

    images: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()

    def message(self, folder: str) -> str | None:
        """One log line saying what is not read, or None when nothing is left out."""
        if not self.images and not self.folders:
            return None
        parts = [f"{len(self.images)} image file(s)"] if self.images else []
        if self.folders:
            parts.append(f"{len(self.folders)} folder(s)")
        example = (self.images or self.folders)[0]
        return (f"[bovw] ingest: not reading {' and '.join(parts)} under {folder} whose name "
                f"starts with '_' or '.', such as {example!r}: Spark's listing skips such "
                "names; rename them to have them read")


# Deep enough for Training/<Class>/<file> and <Class>/<file>; deeper images are rejected
# for their folder anyway (bovw.pipeline.descriptors).
_SKIP_DEPTH = 3


def names_spark_skips(spark: SparkSession, folder: str, extensions: tuple[str, ...]
                      ) -> SkippedNames:
    """The image files and folders under `folder` (a Hadoop URI such as s3a://b/fruits)
    down to Training/<Class>/<file> that Spark's listing leaves out for their names.

    One glob listing per level ("*/_*", "*/.*", ...): a few LIST requests per folder on
    S3, and nothing crosses to Python but the names found.
    """
    suffixes = _suffixes(extensions)
    images, folders = set(), set()
    for depth in range(_SKIP_DEPTH):
        for relative, is_folder in storage.glob_below(spark, folder,
                                                      "/".join(["*"] * depth + ["{_,.}*"])):
            name = relative.rsplit("/", 1)[-1]
            if not spark_skips_name(name) or any(
                    spark_skips_name(part) for part in relative.split("/")[:-1]):
                continue  # below a folder already counted
            if is_folder:
                folders.add(relative)
            elif name.lower().endswith(suffixes):
                images.add(relative)
    return SkippedNames(tuple(sorted(images)), tuple(sorted(folders)))

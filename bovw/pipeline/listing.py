"""What Spark's file listing leaves out of a dataset folder, and what bovw does about it.

Spark's listing (and Hadoop's FileInputFormat) skip every file or folder whose name starts
with "_" or "." (spark_skips_name). A local tree is not listed by Spark: bovw walks it
itself (walk_local_tree), reads the "_" images, and says how many hidden ones it leaves
out. Elsewhere (S3, HDFS) a few glob listings find such names near the top of the tree
(names_spark_skips), so that a run says what it does not read instead of losing it
without a word.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass

from pyspark.sql import SparkSession

from bovw.locations import is_local_path
from bovw.spark import storage

__all__ = ["LocalImage", "LocalTree", "SkippedNames", "local_tree",
           "names_spark_skips", "spark_skips_name", "walk_local_tree"]


@dataclass(frozen=True)
class LocalImage:
    """One image file of a local tree: its absolute path (symbolic links kept, not
    resolved), its size in bytes and its modification time (seconds since the epoch)."""

    path: str
    size: int
    modified: float


@dataclass(frozen=True)
class LocalTree:
    """What a local input tree holds, walked by Python rather than by Spark's listing.

    `images` are the image files (of the configured extensions) to read, sorted by path:
    files named with a leading "_" (a camera's `_MG_1234.JPG`), which Spark's own listing
    would leave out, included; zero-byte files and other non-folders (a named pipe)
    included, so that reading them gives a visible reject. `loops` are (link, target)
    pairs of links to one of their own ancestor folders, not followed. `hidden` are the
    image files below a name starting with "." (macOS `._x.jpg` companions, `.thumbs/`):
    left out, as Spark's listing leaves them out. `other_images` counts the (not hidden)
    files of common image types outside the extensions (".webp", ".heic", ...) by type,
    which are not read: a photo folder often holds some, and they should not vanish
    without a word. `undecodable` are the image files whose path is not valid UTF-8
    (bytes Python keeps as surrogate escapes): no Spark string can name them, so they
    are left out, and said so.
    """

    images: tuple[LocalImage, ...] = ()
    loops: tuple[tuple[str, str], ...] = ()
    hidden: tuple[str, ...] = ()
    other_images: tuple[tuple[str, int], ...] = ()
    undecodable: tuple[str, ...] = ()
    # The absolute folder walked: what `fingerprint` names the images relative to.
    root: str = ""

    def fingerprint(self) -> str:
        """A digest (64 hex digits) of `images`: each one's path below `root`, size and
        modification time (whole seconds). Another file, one fewer or one rewritten gives
        another digest; the same files copied with their times kept (`cp -a`, rsync -t)
        to another place give the same."""
        # The walk names every image from the root down: its path less the root's is the
        # relative path, without os.path.relpath's 5 us an image (0.8 s of 155k).
        prefix = self.root.rstrip(os.sep) + os.sep
        lines = "".join(
            f"{_below(image.path, prefix, self.root)}\t{image.size}\t{int(image.modified)}\n"
            for image in self.images)
        return hashlib.sha256(lines.encode("utf-8", "surrogateescape")).hexdigest()


def _below(path: str, prefix: str, root: str) -> str:
    return path[len(prefix):] if path.startswith(prefix) else os.path.relpath(path, root)


def walk_local_tree(folder: str, extensions: tuple[str, ...]) -> LocalTree:
    """Walk `folder`, following symbolic links except those that loop; see LocalTree.

    A link loops when its target is the folder holding it or one of that folder's
    ancestors on the way down: following it would list the same files again under longer
    names up to the kernel's 40-link limit (Hadoop's recursive listing does, and two such
    links make it exponential). Unreadable folders are skipped; a broken link named as an
    image is listed (size 0), for its read to reject it with the reason.
    """
    suffixes = _suffixes(extensions)
    root = os.path.abspath(folder)
    images: list[LocalImage] = []
    loops: list[tuple[str, str]] = []
    hidden: list[str] = []
    undecodable: list[str] = []
    other_images: dict[str, int] = {}
    pending = [(root, frozenset({os.path.realpath(root)}), False)]
    while pending:
        current, ancestors, below_hidden = pending.pop()
        for entry in _entries(current):
            is_hidden = below_hidden or entry.name.startswith(".")
            try:
                is_folder = entry.is_dir(follow_symlinks=True)
            except OSError:
                continue
            if is_folder:
                real = os.path.realpath(entry.path)
                if real in ancestors:
                    loops.append((entry.path, real))
                else:
                    pending.append((entry.path, ancestors | {real}, is_hidden))
            elif not entry.name.lower().endswith(suffixes):
                file_type = os.path.splitext(entry.name)[1].lower()
                if file_type in _OTHER_IMAGE_TYPES and not is_hidden:
                    other_images[file_type] = other_images.get(file_type, 0) + 1
            elif is_hidden:
                if _is_file(entry):
                    hidden.append(entry.path)
            elif not _is_utf8(entry.path):
                undecodable.append(entry.path)
            else:
                listed = _size_and_time(entry)
                if listed is not None:
                    images.append(LocalImage(entry.path, *listed))
    others = tuple(sorted(other_images.items(), key=lambda item: (-item[1], item[0])))
    return LocalTree(tuple(sorted(images, key=lambda image: image.path)), tuple(sorted(loops)),
                     tuple(sorted(hidden)), others, tuple(sorted(undecodable)), root)


def local_tree(path: str, extensions: tuple[str, ...]) -> LocalTree | None:
    """walk_local_tree of `path` when it is a local folder (plain or file:), else None."""
    if not is_local_path(path):
        return None
    return walk_local_tree(path.removeprefix("file://").removeprefix("file:"), extensions)


def _size_and_time(entry: os.DirEntry) -> tuple[int, float] | None:
    """(size, modification time) of the image file `entry` names; for a broken link, 0 and
    the link's own time, so that it is listed and read_local_file rejects it with its
    reason rather than it vanishing without a word; None when the file is gone since its
    folder was read."""
    try:
        status = entry.stat(follow_symlinks=True)
        return status.st_size, status.st_mtime
    except OSError:
        pass
    try:
        link = entry.stat(follow_symlinks=False)
    except OSError:
        return None
    return (0, link.st_mtime) if stat.S_ISLNK(link.st_mode) else None


def _is_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _suffixes(extensions: tuple[str, ...]) -> tuple[str, ...]:
    """(".jpg", ...) for ("jpg", ...): what str.endswith on a lower-case name takes."""
    return tuple("." + ext.lower().lstrip(".") for ext in extensions)


# Photo formats a folder of pictures may hold besides the configured ones.
_OTHER_IMAGE_TYPES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp",
                                ".gif", ".tif", ".tiff", ".heic", ".heif", ".avif", ".jp2"})


def spark_skips_name(name: str) -> bool:
    """Whether Spark's file listing leaves out a file or folder of this name below the
    folder it reads (Spark 4's HadoopFSUtils.shouldFilterOutPathName):
    names starting with "_" (unless holding "=", or Parquet's "_metadata" and
    "_common_metadata") or "." are skipped, even when the file is named explicitly."""
    if name.startswith(("_metadata", "_common_metadata")):
        return False
    return name.startswith(".") or (name.startswith("_") and "=" not in name)


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

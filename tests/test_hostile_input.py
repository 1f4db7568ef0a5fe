"""Hostile input: odd file names, symbolic link loops, huge files, decompression bombs and
images that make OpenCV raise. Each one becomes a reject with its reason (or, for a
looping link, a logged skip); every other image is still read, once."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from bovw.config import IngestSettings, OrbSettings
from bovw.image import orb as features
from bovw.image.orb import extract_descriptors
from bovw.pipeline.descriptors import describe_images
from bovw.pipeline.ingest import assign_splits, list_files, with_labels
from bovw.pipeline.inputs import read_local_file
from bovw.pipeline.listing import (
    LocalImage,
    LocalTree,
    SkippedNames,
    names_spark_skips,
    spark_skips_name,
    walk_local_tree,
)
from tests import imagefiles

SETTINGS = OrbSettings(sampling="detect")
EXTENSIONS = IngestSettings().extensions


def png(width: int, height: int, rows: bytes | None = None) -> bytes:
    """A greyscale 8-bit PNG; `rows` are the raw scanlines (zeros when None)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    if rows is None:
        rows = (b"\x00" + b"\x00" * width) * height
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def one_pixel_png() -> bytes:
    """A valid 1x1 image: ORB's image pyramid makes OpenCV raise on it."""
    return imagefiles.encode(np.full((1, 1, 3), 128, np.uint8), "PNG")


# --- the pure per-image function ---------------------------------------------------------


def test_complete_decompression_bomb_is_refused_before_decoding(monkeypatch):
    # A real, complete PNG: 7100 x 7100 zero pixels, 50.4 MP, about 50 KB compressed.
    bomb = png(7100, 7100)
    assert len(bomb) < 100_000

    def never_decode(self, *args, **kwargs):
        raise AssertionError("the bomb was decoded")

    monkeypatch.setattr(Image.Image, "load", never_decode)
    monkeypatch.setattr(ImageFile.ImageFile, "load", never_decode)
    extraction = extract_descriptors(bomb, SETTINGS)
    assert extraction.reject_reason == (
        "image too large: 7100x7100 pixels exceeds orb.max_pixels=50000000")
    assert extraction.descriptors.shape == (0, 32)


def test_declared_size_alone_decides_the_refusal():
    # Header says 100000 x 1 (1e5 pixels, allowed) vs 100000 x 1000 (1e8, refused).
    assert extract_descriptors(png(100_000, 1), SETTINGS).reject_reason != (
        "image too large: 100000x1 pixels exceeds orb.max_pixels=50000000")
    assert extract_descriptors(imagefiles.bomb_png(100_000, 1000), SETTINGS).reject_reason == (
        "image too large: 100000x1000 pixels exceeds orb.max_pixels=50000000")


def test_an_image_that_makes_opencv_raise_is_a_reject():
    grey = np.full((1, 1), 128, np.uint8)
    with pytest.raises(cv2.error):
        features.describe_keypoints(grey, SETTINGS)
    extraction = extract_descriptors(one_pixel_png(), SETTINGS)
    assert extraction.reject_reason.startswith("OpenCV failed: OpenCV(")
    assert (extraction.width, extraction.height) == (1, 1)
    assert extraction.descriptors.shape == (0, 32)


def test_any_other_failure_while_describing_is_a_reject(monkeypatch):
    def out_of_memory(grey, settings):
        raise MemoryError

    monkeypatch.setattr(features, "describe_keypoints", out_of_memory)
    extraction = extract_descriptors(imagefiles.jpeg(), SETTINGS)
    assert extraction.reject_reason == "description failed: MemoryError"

    def broken(grey, settings):
        raise ValueError("buffer is too small\nsecond line")

    monkeypatch.setattr(features, "describe_keypoints", broken)
    extraction = extract_descriptors(imagefiles.jpeg(), SETTINGS)
    assert extraction.reject_reason == "description failed: ValueError: buffer is too small"


# --- the local folder walk ---------------------------------------------------------------


def paths(tree: LocalTree) -> list[str]:
    return [image.path for image in tree.images]


def test_walk_lists_every_image_with_its_size_and_time_following_links(tmp_path):
    (tmp_path / "Training" / "Kiwi").mkdir(parents=True)
    image = tmp_path / "Training" / "Kiwi" / "a.jpg"
    image.write_bytes(b"xyz")
    os.utime(image, (1_700_000_000.5, 1_700_000_000.5))
    os.symlink(tmp_path / "Training", tmp_path / "Alias")
    assert walk_local_tree(str(tmp_path), EXTENSIONS) == LocalTree(images=(
        LocalImage(str(tmp_path / "Alias" / "Kiwi" / "a.jpg"), 3, 1_700_000_000.5),
        LocalImage(str(image), 3, 1_700_000_000.5)), root=str(tmp_path))


def test_walk_reads_around_symbolic_link_loops(tmp_path):
    kiwi = tmp_path / "Training" / "Kiwi"
    kiwi.mkdir(parents=True)
    (kiwi / "a.JPG").write_bytes(b"x")
    (kiwi / "b:[1].jpg").write_bytes(b"x")
    (tmp_path / "Test" / "Kiwi").mkdir(parents=True)
    (tmp_path / "Test" / "Kiwi" / "c.jpg").write_bytes(b"")
    os.symlink(tmp_path / "Training", kiwi / "up")          # to an ancestor: a loop
    os.symlink(kiwi, kiwi / "self")                         # to itself: a loop
    os.symlink(tmp_path / "Training", tmp_path / "Alias")   # to a sibling: followed
    os.symlink(tmp_path / "nowhere.jpg", kiwi / "dangling.jpg")  # broken: listed, size 0
    tree = walk_local_tree(str(tmp_path), EXTENSIONS)
    assert tree.loops == (
        (str(tmp_path / "Alias" / "Kiwi" / "self"), str(kiwi)),
        (str(tmp_path / "Alias" / "Kiwi" / "up"), str(tmp_path / "Training")),
        (str(kiwi / "self"), str(kiwi)),
        (str(kiwi / "up"), str(tmp_path / "Training")),
    )
    # Every image once per name it has outside the loops, zero-byte ones included.
    assert paths(tree) == [
        str(tmp_path / "Alias" / "Kiwi" / "a.JPG"), str(tmp_path / "Alias" / "Kiwi" / "b:[1].jpg"),
        str(tmp_path / "Alias" / "Kiwi" / "dangling.jpg"),
        str(tmp_path / "Test" / "Kiwi" / "c.jpg"),
        str(kiwi / "a.JPG"), str(kiwi / "b:[1].jpg"), str(kiwi / "dangling.jpg"),
    ]
    assert [image.size for image in tree.images] == [1, 1, 0, 0, 1, 1, 0]
    assert read_local_file(f"file:{kiwi}/dangling.jpg") == (
        f"broken symbolic link: its target {tmp_path / 'nowhere.jpg'} does not exist")


def test_a_file_name_that_is_not_utf8_is_left_out_and_said(spark, tmp_path):
    kiwi = tmp_path / "Training" / "Kiwi"
    kiwi.mkdir(parents=True)
    (kiwi / "a.jpg").write_bytes(imagefiles.jpeg())
    # Latin-1 bytes from an old camera card: Python names them with surrogate escapes,
    # which no Arrow or Spark string can carry (the whole listing failed).
    os.close(os.open(os.fsencode(kiwi) + b"/p\xeache.jpg", os.O_CREAT | os.O_WRONLY))
    latin1 = os.fsdecode(os.fsencode(kiwi) + b"/p\xeache.jpg")
    tree = walk_local_tree(str(tmp_path), EXTENSIONS)
    assert paths(tree) == [str(kiwi / "a.jpg")]
    assert tree.undecodable == (latin1,)
    logged: list[str] = []
    listed = list_files(spark, str(tmp_path), IngestSettings(), log=logged.append)
    assert [row["path"] for row in listed.select("path").collect()] == [f"file:{kiwi}/a.jpg"]
    assert logged == [
        f"[bovw] ingest: leaving out 1 image file(s) whose path is not valid UTF-8, such as "
        f"{latin1!r}: rename them to have them read"]


def test_a_local_file_is_read_by_its_hadoop_path_or_rejected(tmp_path):
    (tmp_path / "per%20cent #1 ü.jpg").write_bytes(b"bytes")
    assert read_local_file(f"file:{tmp_path}/per%20cent #1 ü.jpg") == b"bytes"
    assert read_local_file(f"file:{tmp_path}/gone.jpg") == (
        "unreadable file: No such file or directory")
    # A named pipe among the images waited for a writer forever, and the run with it.
    os.mkfifo(tmp_path / "pipe.jpg")
    assert read_local_file(f"file:{tmp_path}/pipe.jpg") == (
        "unreadable file: not a regular file (a named pipe, socket or device)")


# --- one Spark run over a hostile folder ------------------------------------------------

GOOD_NAMES = [
    'double "quoted".jpg', "single 'quoted'.jpg", "ünïcødé 🍎 名前.jpg", "new\nline.jpg",
    "back\\slash.jpg", "per%20cent #1.jpg", "colon:in:name.jpg", "[brackets] {braces} *?.jpg",
]
REJECTS = {
    "huge.jpg": "file too large: 209715200 bytes exceeds ingest.max_file_bytes=67108864",
    "bomb.png": "image too large: 40000x40000 pixels exceeds orb.max_pixels=50000000",
    "one pixel.png": "OpenCV failed: OpenCV(",
}


# Hadoop glob characters in a folder name: the loop-free listing must escape them.
LABEL = "Kiwi [gold] {1}"


@pytest.fixture
def hostile_folder(tmp_path: Path) -> Path:
    kiwi = tmp_path / "Training" / LABEL
    kiwi.mkdir(parents=True)
    for index, name in enumerate(GOOD_NAMES):
        (kiwi / name).write_bytes(imagefiles.jpeg(seed=index))
    (tmp_path / "Test" / LABEL).mkdir(parents=True)
    (tmp_path / "Test" / LABEL / "plain.jpg").write_bytes(imagefiles.jpeg(seed=99))
    with open(kiwi / "huge.jpg", "wb") as huge:
        huge.truncate(200 * 1024 * 1024)  # sparse: 200 MB listed, nothing on disk
    (kiwi / "bomb.png").write_bytes(imagefiles.bomb_png())
    (kiwi / "one pixel.png").write_bytes(one_pixel_png())
    # Two links to ancestors: Hadoop's own recursive listing would follow them 2^40 ways.
    (tmp_path / "Training" / "Loops").mkdir()
    os.symlink(tmp_path, tmp_path / "Training" / "Loops" / "loop to root")
    os.symlink(tmp_path / "Test", tmp_path / "Test" / LABEL / "loop to Test")
    return tmp_path


def test_every_hostile_file_is_read_once_or_rejected_with_its_reason(spark, hostile_folder):
    logged: list[str] = []
    files = with_labels(list_files(spark, str(hostile_folder), IngestSettings(),
                                   log=logged.append))
    files = assign_splits(files, 0.25, 1, has_split_folders=True)
    rows = describe_images(files, SETTINGS, IngestSettings().max_file_bytes).select(
        "path", "label", "split", "n_keypoints", "reject_reason").collect()
    # Read by the Python workers (a local folder) or by Spark's binaryFile: the same rows.
    described = {read_local: sorted(
        map(tuple, describe_images(files, SETTINGS, IngestSettings().max_file_bytes,
                                   read_local=read_local).collect()))
        for read_local in (False, True)}
    assert described[True] == described[False]

    names = [row["path"].rsplit("/", 1)[1] for row in rows]
    assert sorted(names) == sorted([*GOOD_NAMES, "plain.jpg", *REJECTS])
    assert all(row["path"].startswith(f"file:{hostile_folder}/") for row in rows)
    by_name = dict(zip(names, rows, strict=True))
    for name in [*GOOD_NAMES, "plain.jpg"]:
        row = by_name[name]
        assert row["reject_reason"] is None, (name, row["reject_reason"])
        assert row["label"] == LABEL and row["n_keypoints"] > 10
    assert by_name["plain.jpg"]["split"] == "Test"
    for name, reason in REJECTS.items():
        assert by_name[name]["reject_reason"].startswith(reason), by_name[name]
    test_loop = str(hostile_folder / "Test" / LABEL / "loop to Test")
    root_loop = str(hostile_folder / "Training" / "Loops" / "loop to root")
    assert logged == [
        f"[bovw] ingest: not following {test_loop!r}: a symbolic link to its own ancestor "
        f"folder {str(hostile_folder / 'Test')!r}",
        f"[bovw] ingest: not following {root_loop!r}: a symbolic link to its own ancestor "
        f"folder {str(hostile_folder)!r}",
    ]


def test_a_broken_link_named_as_an_image_is_a_reject_with_its_reason(spark, tmp_path):
    # It was left out of the listing without a word: not read, not counted, not a reject.
    kiwi = tmp_path / "Training" / "Kiwi"
    kiwi.mkdir(parents=True)
    (kiwi / "a.jpg").write_bytes(imagefiles.jpeg())
    os.symlink(tmp_path / "moved" / "b.jpg", kiwi / "b.jpg")
    files = assign_splits(with_labels(list_files(spark, str(tmp_path), IngestSettings())),
                          0.25, 1, has_split_folders=True)
    rows = describe_images(files, SETTINGS, IngestSettings().max_file_bytes, read_local=True)
    assert {row["path"].rsplit("/", 1)[1]: row["reject_reason"] for row in rows.collect()} == {
        "a.jpg": None,
        "b.jpg": f"broken symbolic link: its target {tmp_path / 'moved' / 'b.jpg'} does not exist"}


# --- names Spark's listing leaves out -----------------------------------------------------


def test_spark_skips_names_starting_with_underscore_or_dot():
    assert spark_skips_name("_MG_1234.JPG") and spark_skips_name("_Gold")
    assert spark_skips_name("._a.jpg") and spark_skips_name(".thumbs")
    assert not spark_skips_name("a_b.jpg")
    assert not spark_skips_name("_year=2024")          # a partition folder: listed
    assert not spark_skips_name("_metadata.jpg")        # Parquet's summary file: listed


def test_walk_finds_the_images_spark_leaves_out_for_their_names(tmp_path):
    kiwi = tmp_path / "Training" / "Kiwi"
    gold = tmp_path / "Training" / "_Gold"
    for folder in (kiwi, gold, kiwi / ".thumbs", gold / ".cache"):
        folder.mkdir(parents=True)
    for path in (kiwi / "plain.jpg", kiwi / "_MG_1.JPG", kiwi / "_a=b.jpg", kiwi / "_notes.txt",
                 kiwi / "._plain.jpg", kiwi / ".thumbs" / "t.jpg", gold / "a.png",
                 gold / ".cache" / "c.jpg", kiwi / "b.webp", gold / "c.WEBP", kiwi / "d.tif",
                 kiwi / ".thumbs" / "t.webp", kiwi / "e.jpg.txt"):
        path.write_bytes(b"x")
    tree = walk_local_tree(str(tmp_path), EXTENSIONS)
    assert paths(tree) == [str(kiwi / "_MG_1.JPG"), str(kiwi / "_a=b.jpg"), str(kiwi / "plain.jpg"),
                           str(gold / "a.png")]
    assert tree == LocalTree(
        images=tree.images,
        hidden=(str(kiwi / "._plain.jpg"), str(kiwi / ".thumbs" / "t.jpg"),
                str(gold / ".cache" / "c.jpg")),
        other_images=((".webp", 2), (".tif", 1)),
        root=str(tmp_path),
    )


def test_names_spark_skips_are_found_by_hadoop_globs(spark, tmp_path, monkeypatch):
    # The check a run on S3 or HDFS makes (there bovw cannot read such files itself); the
    # same Hadoop calls on the local filesystem.
    kiwi = tmp_path / "data [1]" / "Training" / "Kiwi"
    gold = tmp_path / "data [1]" / "Test" / "_Gold"
    for folder in (kiwi / ".thumbs", gold / "deeper"):
        folder.mkdir(parents=True)
    for path in (kiwi / "plain.jpg", kiwi / "_MG_1.JPG", kiwi / "._plain.jpg", kiwi / "_a=b.jpg",
                 kiwi / ".DS_Store", kiwi / "_notes.txt", kiwi / ".thumbs" / "t.jpg",
                 gold / "a.png", gold / "deeper" / "_b.jpg", tmp_path / "data [1]" / "_c.jpg"):
        path.write_bytes(b"x")
    root = f"file:{tmp_path}/data [1]"
    found = names_spark_skips(spark, root, EXTENSIONS)
    assert found == SkippedNames(
        images=("Training/Kiwi/._plain.jpg", "Training/Kiwi/_MG_1.JPG", "_c.jpg"),
        folders=("Test/_Gold", "Training/Kiwi/.thumbs"))
    assert found.message(root) == (
        f"[bovw] ingest: not reading 3 image file(s) and 2 folder(s) under {root} whose name "
        "starts with '_' or '.', such as 'Training/Kiwi/._plain.jpg': Spark's listing skips "
        "such names; rename them to have them read")
    assert SkippedNames().message(root) is None
    assert names_spark_skips(spark, f"file:{kiwi}/.thumbs", EXTENSIONS) == SkippedNames()
    # A listing that is not local logs that line, and reads what Spark lists.
    from bovw.pipeline import ingest

    monkeypatch.setattr(ingest, "is_local_path", lambda path: False)
    logged: list[str] = []
    listed = list_files(spark, root, IngestSettings(), log=logged.append)
    assert logged == [found.message(root)]
    assert sorted(row["path"].rsplit("/", 1)[1] for row in listed.collect()) == [
        "_a=b.jpg", "plain.jpg"]


def test_images_named_with_a_leading_underscore_are_read(spark, tmp_path):
    # Canon cameras name Adobe RGB photos _MG_1234.JPG; Spark's listing skips such names
    # (and whole folders such as _Gold), even when the file is named explicitly.
    kiwi = tmp_path / "Training" / "Kiwi"
    gold = tmp_path / "Test" / "_Gold"
    kiwi.mkdir(parents=True)
    gold.mkdir(parents=True)
    contents = {kiwi / "plain.jpg": imagefiles.jpeg(seed=1),
                kiwi / "_MG_1234.JPG": imagefiles.jpeg(seed=2),
                gold / "a.jpg": imagefiles.jpeg(seed=3),
                gold / "_empty.jpg": b"",
                kiwi / "._plain.jpg": b"\x00\x05\x16\x07 AppleDouble",
                kiwi / "photo.webp": b"RIFF"}
    for path, content in contents.items():
        path.write_bytes(content)
    logged: list[str] = []
    listed = list_files(spark, str(tmp_path), IngestSettings(), log=logged.append)
    files = assign_splits(with_labels(listed), 0.25, 1, has_split_folders=True)
    read = {row["path"]: (row["label"], row["split"], row["length"], row["content"])
            for row in files.collect()}
    assert read == {
        f"file:{kiwi}/plain.jpg": ("Kiwi", "Training", len(contents[kiwi / "plain.jpg"]),
                                   contents[kiwi / "plain.jpg"]),
        f"file:{kiwi}/_MG_1234.JPG": ("Kiwi", "Training",
                                      len(contents[kiwi / "_MG_1234.JPG"]),
                                      contents[kiwi / "_MG_1234.JPG"]),
        f"file:{gold}/a.jpg": ("_Gold", "Test", len(contents[gold / "a.jpg"]),
                               contents[gold / "a.jpg"]),
        f"file:{gold}/_empty.jpg": ("_Gold", "Test", 0, b""),
    }
    assert logged == [
        "[bovw] ingest: leaving out 1 hidden image file(s) (a name starting with '.' on "
        f"their path), such as {str(kiwi / '._plain.jpg')!r}",
        "[bovw] ingest: not reading 1 image file(s) of other types (.webp 1): "
        "ingest.extensions is jpg, jpeg, png"]
    described = {row["path"].rsplit("/", 1)[1]: row["reject_reason"] for row in describe_images(
        files, SETTINGS, IngestSettings().max_file_bytes, read_local=True).collect()}
    assert described == {"plain.jpg": None, "_MG_1234.JPG": None, "a.jpg": None,
                         "_empty.jpg": "empty file"}


def test_images_outside_the_class_folders_are_rejected_saying_where_they_should_be(
        spark, tmp_path):
    kiwi = tmp_path / "data" / "Training" / "Kiwi"
    (kiwi / "2024").mkdir(parents=True)
    (tmp_path / "data" / "Test" / "Kiwi").mkdir(parents=True)
    (tmp_path / "data" / "other").mkdir()
    for path in (kiwi / "a.jpg", kiwi / "2024" / "b.jpg", tmp_path / "data" / "Test" / "c.jpg",
                 tmp_path / "data" / "Test" / "Kiwi" / "d.jpg",
                 tmp_path / "data" / "other" / "e.jpg"):
        path.write_bytes(imagefiles.jpeg())
    files = assign_splits(with_labels(list_files(spark, str(tmp_path / "data"),
                                                 IngestSettings())), 0.25, 1, True)
    reasons = {row["path"].removeprefix(f"file:{tmp_path}/data/"): row["reject_reason"]
               for row in describe_images(files, SETTINGS, IngestSettings().max_file_bytes,
                                          read_local=True).collect()}
    assert reasons == {
        "Training/Kiwi/a.jpg": None,
        "Training/Kiwi/2024/b.jpg": "in a sub-folder of the class folder Kiwi: images must "
                                    "sit directly in Training/<Class>/ or Test/<Class>/",
        # Said to be "not inside a Training or Test folder", although it is.
        "Test/c.jpg": "directly in the split folder Test, outside any class folder: images "
                      "must sit in Training/<Class>/ or Test/<Class>/",
        "Test/Kiwi/d.jpg": None,
        "other/e.jpg": "not inside a Training or Test folder",
    }

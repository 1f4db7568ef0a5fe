"""Ingest: which files are images, their labels and splits."""

from __future__ import annotations

import os
import unicodedata
from collections import Counter

import pytest
from pyspark.sql import functions as F

from bovw.config import IngestSettings
from bovw.errors import InputError
from bovw.pipeline.ingest import (
    assign_splits,
    extension_glob,
    input_digest,
    labelled_images,
    list_files,
    listed_images,
    split_folder,
    with_labels,
)
from bovw.pipeline.inputs import check_local_dataset, check_local_input, class_problem, split_of
from bovw.pipeline.listing import local_tree
from tests import imagefiles

SETTINGS = IngestSettings()


def write(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_extension_glob_matches_any_case():
    assert extension_glob(("jpg", ".png")) == "*.{[jJ][pP][gG],[pP][nN][gG]}"


def test_labels_and_splits_from_folders_with_spaces(spark, tmp_path):
    write(tmp_path / "Training" / "Apple Red 1" / "r_0_100.jpg", imagefiles.jpeg())
    write(tmp_path / "Training" / "Apple Red 1" / "UPPER.JPEG", imagefiles.jpeg())
    write(tmp_path / "Test" / "Apple Red 1" / "0_100.Png", imagefiles.rgba_png())
    write(tmp_path / "Test" / "Kiwi" / "notes.txt", b"not listed")
    files = with_labels(list_files(spark, str(tmp_path), SETTINGS))
    rows = sorted((r["path"].rsplit("/", 1)[1], r["label"], r["split_folder"])
                  for r in files.collect())
    assert rows == [
        ("0_100.Png", "Apple Red 1", "Test"),
        ("UPPER.JPEG", "Apple Red 1", "Training"),
        ("r_0_100.jpg", "Apple Red 1", "Training"),
    ]


def test_an_input_folder_named_with_glob_characters_is_listed_as_named(spark, tmp_path):
    # Spark reads "in [1]" as a pattern: the folder itself was "not found", and a sibling
    # "in 1" would have been read instead of it.
    write(tmp_path / "in [1]" / "Training" / "Kiwi" / "mine.jpg", imagefiles.jpeg())
    write(tmp_path / "in [1]" / "Test" / "Kiwi" / "empty.jpg", b"")
    write(tmp_path / "in 1" / "Training" / "Kiwi" / "sibling.jpg", imagefiles.jpeg())
    images = labelled_images(spark, str(tmp_path / "in [1]"), SETTINGS, 1)
    assert sorted((r["path"].rsplit("/", 1)[1], r["split"]) for r in images.collect()) == [
        ("empty.jpg", "Test"), ("mine.jpg", "Training")]


def _jobs_run_by(spark, call):
    context = spark.sparkContext
    context.setJobGroup("counted", "jobs of one call")
    try:
        result = call()
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    return result, len(context.statusTracker().getJobIdsForGroup("counted"))


def test_a_local_folder_is_listed_without_a_spark_job(spark, tmp_path):
    # Split folders and empty files (which Spark's scan skips) are found from the listing.
    write(tmp_path / "Training" / "Kiwi 1" / "a b.jpg", imagefiles.jpeg())
    write(tmp_path / "Test" / "Kiwi 1" / "c%20d.jpg", imagefiles.jpeg())
    write(tmp_path / "Test" / "Kiwi 1" / "empty.jpg", b"")
    images, jobs = _jobs_run_by(spark, lambda: labelled_images(spark, str(tmp_path), SETTINGS, 1))
    assert jobs == 0
    rows = sorted((r["path"].rsplit("/", 1)[1], r["split"], r["length"]) for r in images.collect())
    assert rows == [("a b.jpg", "Training", len(imagefiles.jpeg())),
                    ("c%20d.jpg", "Test", len(imagefiles.jpeg())), ("empty.jpg", "Test", 0)]


@pytest.fixture
def scan_settings(spark):
    """Spark's file-split settings set for one test, then restored."""
    keys = ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes",
            "spark.sql.files.minPartitionNum")
    before = {key: spark.conf.get(key, None) for key in keys}

    def set_them(max_bytes: int, open_cost: int, minimum: int) -> None:
        for key, value in zip(keys, (max_bytes, open_cost, minimum), strict=True):
            spark.conf.set(key, str(value))

    yield set_them
    for key, value in before.items():
        if value is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, value)


def _partition_sizes(frame) -> list[int]:
    counts = Counter(row["partition"] for row in frame.select(
        F.spark_partition_id().alias("partition")).collect())
    return [counts[index] for index in range(frame.rdd.getNumPartitions())]


def test_a_local_listing_is_split_like_sparks_file_scan_spreading_the_files(
        spark, tmp_path, scan_settings):
    for index in range(10):
        write(tmp_path / "Training" / "Kiwi" / f"{index}.jpg", b"x" * 100)
    # Each file counts 100 bytes + 100 of open cost: 2,000 bytes in pieces of at most 700
    # (at least 2 of them), so 3 partitions, of 3 or 4 files.
    scan_settings(max_bytes=700, open_cost=100, minimum=2)
    listed = list_files(spark, str(tmp_path), SETTINGS)
    assert sorted(_partition_sizes(listed)) == [3, 3, 4]
    assert sorted(row["path"].rsplit("/", 1)[1] for row in listed.collect()) == [
        f"{index}.jpg" for index in range(10)]
    # Pieces of at most 1,000 bytes, at least 5 of them: 400 each, so 5 partitions.
    scan_settings(max_bytes=1000, open_cost=100, minimum=5)
    assert _partition_sizes(list_files(spark, str(tmp_path), SETTINGS)) == [2] * 5
    # More pieces than files: one file each, no empty partition.
    scan_settings(max_bytes=1000, open_cost=1, minimum=40)
    assert _partition_sizes(list_files(spark, str(tmp_path), SETTINGS)) == [1] * 10
    # Adaptive execution does not merge them back (its minimum would allow 4 of the 10).
    files = labelled_images(spark, str(tmp_path), SETTINGS, 1)
    assert _partition_sizes(files.filter(F.col("split").isNotNull()).select("path")) == [1] * 10


def test_a_local_listing_reads_file_contents_only_when_they_are_selected(spark, tmp_path,
                                                                         capsys):
    write(tmp_path / "Training" / "Kiwi" / "a.jpg", b"abc")
    os.mkfifo(tmp_path / "Training" / "Kiwi" / "pipe.jpg")
    listed = list_files(spark, str(tmp_path), SETTINGS)
    listed.select("path", "length").explain()
    listed.explain()
    without, with_content = capsys.readouterr().out.split("== Physical Plan ==")[1:]
    assert "BatchEvalPython" not in without and "BatchEvalPython" in with_content
    # A named pipe gives no content (reading it would wait for a writer forever).
    assert {row["path"].rsplit("/", 1)[1]: row["content"] for row in listed.collect()} == {
        "a.jpg": b"abc", "pipe.jpg": None}


def test_split_folders_match_in_any_letter_case_and_nothing_else(spark):
    folders = ["Training", "TRAIN", "tEsT", "test", "Test\n", "test ", "Traİning", "teſt",
               "Kiwi", "Testing", "\u212aiwi", "TRAİN", "xtest", ""]
    paths = [f"file:/data/{folder}/Kiwi/a.jpg" for folder in folders]
    rows = spark.createDataFrame([(path,) for path in paths], "path string").select(
        "path", split_folder(F.col("path")).alias("split")).collect()
    # The same as the Python listing's split_of, which lower-cases with Unicode's rules.
    assert {row["path"]: row["split"] for row in rows} == {path: split_of(path) for path in paths}
    assert [split_of(path) for path in paths[:4]] == ["Training", "Training", "Test", "Test"]
    assert {split_of(path) for path in paths[4:]} == {None}


def test_stratified_split_without_split_folders(spark, tmp_path):
    def split_under(root, seed):
        for label, count in (("Lemon", 8), ("Grape Blue", 4)):
            for i in range(count):
                write(root / label / f"{i}.jpg")
        files = with_labels(list_files(spark, str(root), SETTINGS))
        rows = assign_splits(files, test_fraction=0.25, seed=seed,
                             has_split_folders=False).collect()
        return {(r["label"], r["path"].rsplit("/", 1)[1]): r["split"] for r in rows}

    split = split_under(tmp_path / "here", seed=1)
    assert Counter((label, s) for (label, _), s in split.items()) == {
        ("Lemon", "Training"): 6, ("Lemon", "Test"): 2,
        ("Grape Blue", "Training"): 3, ("Grape Blue", "Test"): 1}
    assert split_under(tmp_path / "here", seed=1) == split
    # The same images anywhere else get the same split: the hash leaves out the folders
    # above the label, so it cannot depend on where a machine keeps its temporary files.
    assert split_under(tmp_path / "there" / "deeper", seed=1) == split
    assert split_under(tmp_path / "here", seed=2) != split


def test_the_seeded_split_reads_names_in_nfc(spark, tmp_path):
    composed, decomposed = "P\u00eache", "Pe\u0302che"

    def test_names(root, label, names):
        for name in names:
            write(root / label / name)
        files = with_labels(list_files(spark, str(root), SETTINGS))
        rows = assign_splits(files, test_fraction=0.3, seed=1, has_split_folders=False).collect()
        return sorted(unicodedata.normalize("NFC", r["path"].rsplit("/", 1)[1])
                      for r in rows if r["split"] == "Test")

    names = [f"{i}.jpg" for i in range(8)] + ["cr\u00e8me.jpg", "cre\u0300me 2.jpg"]
    nfd_names = [unicodedata.normalize("NFD", name) for name in names]
    # The same images, their names composed on one disk and decomposed on another.
    assert test_names(tmp_path / "a", composed, names) == test_names(
        tmp_path / "b", decomposed, nfd_names)
    # One class spelt both ways is one stratum: round(10 * 0.3) = 3 Test images in all.
    both = tmp_path / "both"
    for i, name in enumerate(names):
        write(both / (composed if i % 2 else decomposed) / name)
    files = with_labels(list_files(spark, str(both), SETTINGS))
    rows = assign_splits(files, test_fraction=0.3, seed=1, has_split_folders=False).collect()
    assert sum(r["split"] == "Test" for r in rows) == 3


def test_missing_input_folder(tmp_path):
    with pytest.raises(InputError, match=r"^input folder not found: .*nowhere$"):
        check_local_input(str(tmp_path / "nowhere"), SETTINGS)


def test_an_image_file_given_as_the_input_folder_is_named_as_a_file(tmp_path):
    write(tmp_path / "Kiwi" / "a.jpg")
    with pytest.raises(InputError, match=r"^input .*a\.jpg is a file: give the folder "):
        check_local_input(str(tmp_path / "Kiwi" / "a.jpg"), SETTINGS)


def test_input_folder_without_images(tmp_path):
    write(tmp_path / "Training" / "Kiwi" / "readme.txt")
    with pytest.raises(InputError, match="holds no image files"):
        check_local_input(str(tmp_path), SETTINGS)


# Issue 16.6: a dataset with Training/Test folders and no Test image finished with
# "accuracy 0.00% on 0 Test images"; it is refused before Spark starts.

def test_a_dataset_with_an_empty_test_folder_is_refused(tmp_path):
    write(tmp_path / "Training" / "Kiwi" / "k.jpg")
    (tmp_path / "Test" / "Kiwi").mkdir(parents=True)
    (tmp_path / "Test" / "Kiwi" / "notes.txt").write_text("not an image")
    check_local_input(str(tmp_path), SETTINGS)  # a folder to predict needs no split
    with pytest.raises(InputError) as error:
        check_local_dataset(str(tmp_path), IngestSettings(test_fraction=0.2))
    assert str(error.value) == (
        f"input {tmp_path} has no Test images: put the Test images in Test/<Class>/ beside "
        "Training/, or move the class folders out of Training/ so that bovw splits them "
        "itself (ingest.test_fraction=0.2)")


def test_a_dataset_without_training_images_is_refused(tmp_path):
    write(tmp_path / "test" / "Kiwi" / "k.JPG")
    with pytest.raises(InputError) as error:
        check_local_dataset(f"file:{tmp_path}", SETTINGS)
    assert str(error.value) == (
        f"input file:{tmp_path} has no Training images: put the Training images in "
        "Training/<Class>/ beside Test/")


@pytest.mark.parametrize("folder, split", [("test", "Test"), ("Training", "Training"),
                                           ("TRAIN", "Training")])
def test_an_input_folder_named_as_a_split_is_named_as_the_cause(tmp_path, folder, split):
    # A dataset kept in a folder named "test" (or `--input fruits/Training`) was refused
    # with "put the Training images in Training/<Class>/", as if they were missing.
    write(tmp_path / folder / "Kiwi" / "k.jpg")
    with pytest.raises(InputError) as error:
        check_local_dataset(str(tmp_path / folder) + "/", SETTINGS)
    assert str(error.value) == (
        f"input {tmp_path}/{folder}/ is itself named {folder!r}, so all its images count as "
        f"{split} images; give the folder that holds both Training/ and Test/, or rename "
        f"this one so that bovw splits its classes itself "
        f"(ingest.test_fraction={SETTINGS.test_fraction})")


def test_the_listing_read_is_the_listing_digested_for_the_record(spark, tmp_path):
    # The descriptors' record digested one walk and the run listed another: a file added
    # between the two was read without being in the record.
    write(tmp_path / "Training" / "Kiwi" / "k.jpg", imagefiles.jpeg())
    write(tmp_path / "Test" / "Kiwi" / "t.jpg", imagefiles.jpeg())
    listed = listed_images(spark, str(tmp_path), SETTINGS, 42, lambda _line: None)
    tree = local_tree(f"file:{tmp_path}", SETTINGS.extensions)
    assert listed.digest == tree.fingerprint() == input_digest(spark, str(tmp_path), SETTINGS)
    write(tmp_path / "Training" / "Kiwi" / "later.jpg", imagefiles.jpeg())
    assert input_digest(spark, str(tmp_path), SETTINGS) != listed.digest
    assert sorted(row["path"].rsplit("/", 1)[1] for row in listed.frame.collect()) == [
        "k.jpg", "t.jpg"]
    assert local_tree("s3a://bucket/data", SETTINGS.extensions) is None


def test_a_local_tree_s_fingerprint_is_its_files_below_the_root_sizes_and_seconds():
    import hashlib

    from bovw.pipeline.listing import LocalImage, LocalTree

    images = (LocalImage("/data/Training/Kiwi/k.jpg", 3, 1000.7),
              LocalImage("/data/Test/Kiwi/t é.jpg", 12, 5.0))
    expected = hashlib.sha256("Training/Kiwi/k.jpg\t3\t1000\nTest/Kiwi/t é.jpg\t12\t5\n"
                              .encode()).hexdigest()
    assert LocalTree(images, root="/data").fingerprint() == expected
    assert LocalTree(images, root="/data/").fingerprint() == expected
    # Not below the root (no walk makes such a tree): named relative to it all the same.
    outside = LocalTree((LocalImage("/elsewhere/x.jpg", 1, 2.0),), root="/data")
    assert outside.fingerprint() == hashlib.sha256(b"../elsewhere/x.jpg\t1\t2\n").hexdigest()


def test_an_input_spark_lists_has_a_digest_of_its_files_too(spark, tmp_path, monkeypatch):
    # An input on S3 or HDFS was not compared on resume or reuse: descriptors of the images
    # as they were stood for a prefix that had changed since. Spark's listing of a local
    # folder stands in for theirs here: the same binaryFile source and survey job.
    from bovw.pipeline import ingest

    monkeypatch.setattr(ingest, "is_local_path", lambda path: False)
    write(tmp_path / "Training" / "Kiwi" / "k.jpg", imagefiles.jpeg(seed=1))
    write(tmp_path / "Test" / "Kiwi" / "t.jpg", imagefiles.jpeg(seed=2))
    listed = listed_images(spark, str(tmp_path), SETTINGS, 42, lambda _line: None)
    assert listed.digest.startswith("listing:2:")
    assert listed.frame.count() == 2
    assert input_digest(spark, str(tmp_path), SETTINGS) == listed.digest
    added = tmp_path / "Training" / "Kiwi" / "later.jpg"
    write(added, imagefiles.jpeg(seed=3))
    assert input_digest(spark, str(tmp_path), SETTINGS).startswith("listing:3:")
    added.unlink()
    assert input_digest(spark, str(tmp_path), SETTINGS) == listed.digest
    # Rewritten, the same name: its size or time differs.
    write(tmp_path / "Test" / "Kiwi" / "t.jpg", imagefiles.jpeg(seed=4) + b"\0")
    rewritten = input_digest(spark, str(tmp_path), SETTINGS)
    assert rewritten.startswith("listing:2:") and rewritten != listed.digest
    # A zero-byte file, which Spark's scan skips and the listing adds back, counts too.
    (tmp_path / "Test" / "Kiwi" / "empty.jpg").write_bytes(b"")
    assert input_digest(spark, str(tmp_path), SETTINGS).startswith("listing:3:")
    rows = list_files(spark, str(tmp_path), SETTINGS, log=lambda _line: None).collect()
    assert sorted((row["path"].rsplit("/", 1)[1], row["length"] > 0) for row in rows) == [
        ("empty.jpg", False), ("k.jpg", True), ("t.jpg", True)]


def test_a_class_folder_of_a_split_dataset_given_as_input_names_the_dataset(tmp_path):
    # Review 5: `--input fruits/Training/Apple` was told to put Test images beside Training/.
    write(tmp_path / "fruits" / "Training" / "Apple" / "a.jpg")
    write(tmp_path / "fruits" / "Training" / "Apple" / "b.jpg")
    write(tmp_path / "fruits" / "Test" / "Apple" / "c.jpg")
    with pytest.raises(InputError) as error:
        check_local_dataset(f"{tmp_path}/fruits/Training/Apple/", SETTINGS)
    assert str(error.value) == (
        f"input {tmp_path}/fruits/Training/Apple/ is the class folder 'Apple' of "
        f"{tmp_path}/fruits/Training: its images would all be one class; give the dataset "
        f"folder {tmp_path}/fruits, which holds Training/<Class>/")


def test_a_folder_of_images_without_class_folders_is_refused_as_one_class(tmp_path):
    write(tmp_path / "flat" / "Kiwi" / "k.jpg")
    write(tmp_path / "flat" / "Kiwi" / "k2.jpg")
    with pytest.raises(InputError) as error:
        check_local_dataset(f"file:{tmp_path}/flat/Kiwi", SETTINGS)
    assert str(error.value) == (
        f"input file:{tmp_path}/flat/Kiwi holds its images directly, as a class folder "
        "does, so they would all be one class ('Kiwi'); give the folder that holds the "
        "class folders (Training/<Class>/*.jpg and Test/<Class>/*.jpg, or <Class>/*.jpg), "
        f"such as {tmp_path}/flat if this is one of them")
    # A stray image beside class folders is not this case: its folder's classes stand.
    write(tmp_path / "flat" / "stray.jpg")
    write(tmp_path / "flat" / "Pear" / "p.jpg")
    check_local_dataset(str(tmp_path / "flat"), SETTINGS)


def test_datasets_bovw_can_split_pass(tmp_path):
    write(tmp_path / "split" / "Train" / "Kiwi" / "k.jpg")
    write(tmp_path / "split" / "Train" / "Pear" / "p.jpg")
    write(tmp_path / "split" / "Test" / "Kiwi" / "k.png")
    check_local_dataset(str(tmp_path / "split"), SETTINGS)
    write(tmp_path / "flat" / "Kiwi" / "k.jpg")  # no split folders: bovw splits it
    check_local_dataset(str(tmp_path / "flat"), SETTINGS)
    check_local_dataset("s3a://bucket/data", SETTINGS)  # checked by Spark, after listing


def test_one_training_class_is_refused_before_spark_starts(tmp_path):
    # Review 4: said only after the descriptors stage (18 s of Spark on a small set).
    write(tmp_path / "Training" / "Kiwi" / "k.jpg")
    write(tmp_path / "Training" / "Kiwi" / "k2.jpg")
    write(tmp_path / "Test" / "Kiwi" / "k.jpg")
    write(tmp_path / "Test" / "Pear" / "p.jpg")
    with pytest.raises(InputError) as error:
        check_local_dataset(str(tmp_path), SETTINGS)
    assert str(error.value) == class_problem(str(tmp_path), {"Kiwi"}, (), 0) == (
        f"input {tmp_path} has Training images of one class only (Kiwi): a classifier needs "
        "two or more; add the images of at least one other class")
    write(tmp_path / "Training" / "Pear" / "p.jpg")
    assert check_local_dataset(str(tmp_path), SETTINGS) is True


def test_test_images_behind_a_symbolic_link_count(tmp_path):
    # Spark follows the link, so the check does too (but not a link to its own ancestor).
    write(tmp_path / "elsewhere" / "Kiwi" / "k.jpg")
    write(tmp_path / "data" / "Training" / "Kiwi" / "k.jpg")
    write(tmp_path / "data" / "Training" / "Pear" / "p.jpg")
    (tmp_path / "data" / "Test").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "data" / "Training" / "loop").symlink_to(tmp_path / "data")
    check_local_dataset(str(tmp_path / "data"), SETTINGS)
    (tmp_path / "data" / "Test").unlink()
    with pytest.raises(InputError, match="has no Test images"):
        check_local_dataset(str(tmp_path / "data"), SETTINGS)


def test_an_input_whose_split_folders_are_symbolic_links_is_read(tmp_path):
    # Refused as "holds no image files" although the run's listing follows the links.
    write(tmp_path / "disk" / "Training" / "Kiwi" / "k.jpg")
    write(tmp_path / "disk" / "Training" / "Pear" / "p.jpg")
    write(tmp_path / "disk" / "Test" / "Kiwi" / "k.jpg")
    (tmp_path / "data").mkdir()
    for split in ("Training", "Test"):
        (tmp_path / "data" / split).symlink_to(tmp_path / "disk" / split)
    (tmp_path / "data" / "loop").symlink_to(tmp_path / "data")
    check_local_dataset(str(tmp_path / "data"), SETTINGS)
    (tmp_path / "loops").mkdir()
    (tmp_path / "loops" / "again").symlink_to(tmp_path / "loops")
    with pytest.raises(InputError, match="holds no image files"):
        check_local_input(str(tmp_path / "loops"), SETTINGS)


def test_one_training_class_is_refused():
    # It finished with "accuracy 100.00%, macro F1 1.0000": a model that learnt nothing.
    assert class_problem("in", {"Kiwi"}, {"Kiwi", "Pear"}, 7) == (
        "input in has Training images of one class only (Kiwi): a classifier needs two or "
        "more; add the images of at least one other class")


def test_test_images_of_no_training_class_are_refused():
    # They finished with exit 0 and "accuracy 0.00% on 0 Test images".
    training = {f"C{i}" for i in range(7)}
    assert class_problem("in", training, {"Orange", "Lime"}, 12) == (
        "none of the 12 Test images of input in is of a class with Training images (Test: "
        "Lime, Orange; Training: C0, C1, C2, C3, C4 and 2 more), so none could be scored: "
        "Test/<Class>/ and Training/<Class>/ folders must use the same class names")
    assert class_problem("in", {"Kiwi", "Pear"}, {"Kiwi", "Lime"}, 3) is None
    assert class_problem("in", {"Kiwi", "Pear"}, set(), 0) is None  # split_problem's case


def test_a_class_folder_spelt_decomposed_and_composed_is_one_class(spark, tmp_path):
    from bovw.config import OrbSettings
    from bovw.pipeline.descriptors import describe_images
    from bovw.pipeline.ingest import class_label

    decomposed, composed = "Pe\u0302che", "P\u00eache"  # macOS and Linux spellings of Pêche
    write(tmp_path / "Training" / decomposed / "a.jpg", imagefiles.jpeg(1))
    write(tmp_path / "Test" / composed / "b.jpg", imagefiles.jpeg(2))
    files = assign_splits(with_labels(list_files(spark, str(tmp_path), SETTINGS)), 0.25, 1,
                          has_split_folders=True)
    assert sorted(row["label"] for row in files.collect()) == sorted([decomposed, composed])
    described = describe_images(files, OrbSettings(), SETTINGS.max_file_bytes)
    assert sorted((row["split"], row["label"]) for row in described.collect()) == [
        ("Test", composed), ("Training", composed)]
    assert class_label(decomposed) == composed and class_label(None) is None


def test_image_name_is_the_class_folder_and_file_name(spark):
    from bovw.image.orb import image_key
    from bovw.pipeline.ingest import image_name

    paths = ["file:/data/Training/Apple Red 1/r_0_100.jpg", "s3a://b/x/Test/Kiwi/k.jpg",
             "Kiwi/k.jpg", "k.jpg", "file:/a/b/"]
    frame = spark.createDataFrame([(path,) for path in paths], "path string")
    names = [row[0] for row in frame.select(image_name(F.col("path"))).collect()]
    assert names == ["Apple Red 1/r_0_100.jpg", "Kiwi/k.jpg", "Kiwi/k.jpg", "k.jpg", "b/"]
    assert names[:4] == [image_key(path) for path in paths[:4]]

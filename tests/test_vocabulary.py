"""The vocabulary sample: descriptors set aside per image, and where the sample is drawn."""

from __future__ import annotations

import os

import numpy as np
import pytest
from pyspark.sql import functions as F

from bovw.columns import DESCRIPTOR_SCHEMA
from bovw.config import VocabularySettings
from bovw.errors import VocabularyError
from bovw.image.orb import image_key, pack
from bovw.pipeline.descriptors import ImageSizes, other_size_images, sample_rows, statistics
from bovw.pipeline.vocabulary import (
    centers,
    fit_kmeans,
    fit_vocabulary,
    materialise,
    sample_descriptors,
)


def test_sample_rows_keeps_everything_when_there_are_few():
    rows = np.arange(3 * 32, dtype=np.uint8).reshape(3, 32)
    assert np.array_equal(sample_rows(rows, 3, seed=1, path="a.jpg"), rows)
    assert np.array_equal(sample_rows(rows, 5, seed=1, path="a.jpg"), rows)


def test_sample_rows_is_a_seeded_ordered_subset():
    rows = np.repeat(np.arange(50, dtype=np.uint8)[:, None], 32, axis=1)
    chosen = sample_rows(rows, 4, seed=7, path="a.jpg")
    firsts = chosen[:, 0].tolist()
    assert len(firsts) == 4 and firsts == sorted(set(firsts))
    assert np.array_equal(chosen, sample_rows(rows, 4, seed=7, path="a.jpg"))
    others = [sample_rows(rows, 4, seed=seed, path="a.jpg")[:, 0].tolist() for seed in range(5)]
    assert len({tuple(other) for other in others}) > 1


def test_an_image_is_named_by_its_class_folder_and_file_name_in_nfc():
    for path in ("file:/data/fruits/Training/Apple/1.jpg", "s3a://bucket/x/Training/Apple/1.jpg",
                 "/elsewhere/Apple/1.jpg", "Apple/1.jpg"):
        assert image_key(path) == "Apple/1.jpg"
    assert image_key("file:/d/Training/Pomme\u0301/e\u0301.jpg") == "Pomm\u00e9/\u00e9.jpg"
    assert image_key("1.jpg") == "1.jpg"


def test_sample_rows_are_the_same_for_a_copy_under_another_folder():
    rows = np.repeat(np.arange(50, dtype=np.uint8)[:, None], 32, axis=1)
    here = sample_rows(rows, 4, seed=7, path="file:/data/fruits/Training/Apple/1.jpg")
    assert np.array_equal(here, sample_rows(rows, 4, seed=7, path="s3a://b/Training/Apple/1.jpg"))
    others = {tuple(sample_rows(rows, 4, seed=7, path=f"/d/Training/Apple/{n}.jpg")[:, 0])
              for n in range(5)}
    assert len(others) > 1


def _row(path, split, descriptors, sample, size=(100, 100), reject=None):
    n = len(descriptors)
    return (path, "fruit", split, n, pack(descriptors), reject, *size,
            pack(np.zeros((n, 2), np.uint8)), [], [], pack(sample))


def _distinct(values):
    """(n, 32) rows, each of them filled with one of `values`."""
    return np.repeat(np.asarray(values, np.uint8)[:, None], 32, axis=1)


def _sampled_values(spark, rows, sample_size, totals=None):
    frame = spark.createDataFrame(rows, DESCRIPTOR_SCHEMA)
    settings = VocabularySettings(k=2, sample_size=sample_size, partitions=2)
    if totals is None:
        keypoints = statistics(frame)[1]
        totals = (keypoints["training"], keypoints["set_aside"])
    with sample_descriptors(frame, settings, seed=3, totals=totals) as sample:
        return sorted(int(row["features"][0]) for row in sample.collect())


def test_the_set_aside_sample_is_used_when_it_is_large_enough(spark):
    rows = [
        _row("a.jpg", "Training", _distinct(range(0, 10)), _distinct([1, 2, 3])),
        _row("b.jpg", "Training", _distinct(range(10, 20)), _distinct([11, 12, 13])),
        _row("c.jpg", "Test", _distinct(range(20, 30)), _distinct([])),
    ]
    # 6 set-aside descriptors >= sample_size 6: every one of them, and nothing else.
    assert _sampled_values(spark, rows, 6) == [1, 2, 3, 11, 12, 13]
    # 6 < 20: drawn from all Training descriptors instead (all of them: 20 <= 20).
    assert _sampled_values(spark, rows, 20) == list(range(20))


def test_a_bits_vocabulary_is_fitted_on_the_descriptors_bits(spark):
    rows = [_row("a.jpg", "Training", _distinct([0x0F, 0xF0, 0x0F]), _distinct([0x0F, 0xF0]))]
    frame = spark.createDataFrame(rows, DESCRIPTOR_SCHEMA)
    settings = VocabularySettings(k=2, sample_size=2, partitions=2, space="bits", max_iter=2)
    with sample_descriptors(frame, settings, seed=3, totals=(3, 2)) as sample:
        points = sorted(row["features"].toArray().tolist() for row in sample.collect())
        assert points == [[0, 0, 0, 0, 1, 1, 1, 1] * 32, [1, 1, 1, 1, 0, 0, 0, 0] * 32]
        model, count = fit_vocabulary(sample, settings, seed=3)
    words = centers(model)
    assert count == 2 and words.shape == (2, 256)
    assert sorted(words.tolist()) == points


def test_statistics_count_what_the_sample_is_drawn_from(spark):
    rows = [
        _row("a.jpg", "Training", _distinct(range(0, 10)), _distinct([1, 2, 3])),
        _row("b.jpg", "Training", _distinct(range(10, 14)), _distinct([11])),
        _row("c.jpg", "Test", _distinct(range(20, 30)), _distinct([])),
    ]
    keypoints = statistics(spark.createDataFrame(rows, DESCRIPTOR_SCHEMA))[1]
    assert (keypoints["training"], keypoints["set_aside"]) == (14, 4)
    # Those totals decide where the sample is drawn from.
    assert _sampled_values(spark, rows, 4, totals=(14, 4)) == [1, 2, 3, 11]
    assert _sampled_values(spark, rows, 4) == [1, 2, 3, 11]
    # Totals too small for k are refused, as counted ones are.
    with pytest.raises(VocabularyError, match="only 1 Training descriptors"):
        _sampled_values(spark, rows, 4, totals=(1, 0))


def test_statistics_give_the_training_size_and_whether_sizes_vary(spark):
    one = _distinct([1])
    rows = [_row(f"t{i}.jpg", "Training", one, one) for i in range(3)] + [
        _row("small.jpg", "Training", one, one, size=(50, 60)),
        _row("a.jpg", "Test", one, one),
        _row("wide.jpg", "Test", one, one, size=(200, 100)),
        _row("tall.jpg", "Test", one, one, size=(100, 300)),
        _row("bad.jpg", "Test", _distinct([]), _distinct([]), size=(0, 0), reject="corrupt"),
    ]
    frame = spark.createDataFrame(rows, DESCRIPTOR_SCHEMA)

    assert statistics(frame)[2] == ImageSizes((100, 100), varied=True)
    # The Test images the Predictor frames, not the Spark run: not the Training median.
    assert other_size_images(frame, (100, 100), "Test") == 2
    assert other_size_images(frame, (100, 100), "Training") == 1
    # One size (rejects aside): nothing varies.
    same = spark.createDataFrame([rows[0], rows[4], rows[7]], DESCRIPTOR_SCHEMA)
    assert statistics(same)[2] == ImageSizes((100, 100), varied=False)
    assert statistics(same.filter("split = 'Test'"))[2] == ImageSizes(None, varied=False)


def test_the_vocabulary_sample_is_the_same_wherever_the_dataset_lies(spark):
    def layout(root):
        rows = [_row(f"{root}/Training/{fruit}/{n}.jpg", "Training",
                     _distinct(range(40 * n + 10 * i, 40 * n + 10 * i + 10)), _distinct([]))
                for i, fruit in enumerate(("Apple", "Kiwi", "Lime", "Pear")) for n in range(4)]
        frame = spark.createDataFrame(rows, DESCRIPTOR_SCHEMA)
        settings = VocabularySettings(k=2, sample_size=60, partitions=2)
        with sample_descriptors(frame, settings, seed=3, totals=(160, 0)) as sample:
            # In its partition order: the order KMeans's seeded initialisation reads.
            return [int(row["features"][0]) for row in sample.collect()]

    here = layout("file:/data/fruits")
    assert 30 < len(here) < 100  # a random subset of the 160 distinct descriptors
    assert layout("file:/mnt/copy/of/fruits") == here
    assert layout("s3a://bucket/fruits") == here


@pytest.mark.parametrize("partitions", [1, 3])
def test_the_sample_is_laid_out_as_spark_would_deduplicate_repartition_and_sort_it(
        spark, partitions):
    # Every Training descriptor drawn (sample_size >= their number), so the sample must
    # be exactly what Spark itself makes of them: each distinct descriptor once, at its
    # first (image name, index), hash-partitioned on the name, sorted by (name, index,
    # descriptor). Names beyond ASCII: Spark orders strings by their UTF-8 bytes (code
    # points), not by Java's UTF-16 units, which put U+1F600 before U+FF21.
    names = ["Apple/1.jpg", "Apple/2.jpg", "Kiwi/\u00e9.jpg", "Kiwi/\uff21.jpg",
             "Kiwi/\U0001f600.jpg", "Lime/z.jpg"]
    # First, the same name as the next image under another folder (another Training tree
    # beside this one): read first, yet its descriptors sort after the other's.
    rows = [_row("/copy/Training/Apple/1.jpg", "Training", _distinct(range(200, 209)),
                 _distinct([]))]
    # Each image shares its first 3 descriptors with the image before it.
    rows += [_row(f"/data/Training/{name}", "Training",
                  _distinct([(9 * n + i) % 256 for i in range(-3, 9)]), _distinct([]))
             for n, name in enumerate(names)]
    rows.append(_row("/data/Test/Apple/3.jpg", "Test", _distinct(range(40, 49)), _distinct([])))
    frame = spark.createDataFrame(rows, DESCRIPTOR_SCHEMA)
    settings = VocabularySettings(k=2, sample_size=10_000, partitions=partitions)
    every = frame.filter("split = 'Training'").select(
        F.col("path"), F.posexplode(F.transform(
            F.sequence(F.lit(0), F.col("n_keypoints") - 1),
            lambda i: F.substring(F.col("descriptors"), i * 32 + 1, 32))).alias(
            "index", "descriptor"))
    keyed = every.select(F.regexp_extract("path", r"([^/]+/[^/]+)$", 1).alias("image"),
                         "index", "descriptor")
    expected = (keyed.groupBy("descriptor")
                .agg(F.min(F.struct("image", "index")).alias("first"))
                .select("first.image", "first.index", "descriptor")
                .repartition(partitions, "image")
                .sortWithinPartitions("image", "index", "descriptor"))

    def laid_out(frame, column):
        return frame.rdd.glom().map(lambda part: [row[column] for row in part]).collect()

    wanted = [[int(blob[0]) for blob in part] for part in laid_out(expected, "descriptor")]
    assert len(wanted) == partitions and sum(map(len, wanted)) == 57 + 9
    with sample_descriptors(frame, settings, seed=3, totals=(81, 0)) as sample:
        assert [[int(value[0]) for value in part] for part in laid_out(sample, "features")
                ] == wanted


def test_a_sample_of_one_distinct_descriptor_is_refused_for_two_words(spark):
    # Plain backgrounds: every Training descriptor the same. Deduplicated, the sample is
    # one point on one of its two partitions (the other is laid out empty).
    rows = [_row(f"/data/Training/Apple/{n}.jpg", "Training", _distinct([7] * 5),
                 _distinct([])) for n in range(3)]
    frame = spark.createDataFrame(rows, DESCRIPTOR_SCHEMA)
    settings = VocabularySettings(k=2, sample_size=100, partitions=2)
    with sample_descriptors(frame, settings, seed=3, totals=(15, 0)) as sample:
        assert sample.rdd.glom().map(len).collect() in ([1, 0], [0, 1])
        with pytest.raises(VocabularyError, match="holds 1 distinct descriptors, fewer than "
                                                  "vocabulary.k=2; raise "
                                                  "vocabulary.sample_size"):
            materialise(sample, settings)


def test_the_sample_releases_its_broadcast_and_stays_usable_once_materialised(spark,
                                                                            monkeypatch):
    # Kept, the drawn descriptors stayed on the driver (and the executors) for the whole
    # session: one more copy for every point of a sweep.
    rows = [_row("a.jpg", "Training", _distinct(range(0, 10)), _distinct([])),
            _row("b.jpg", "Training", _distinct(range(10, 20)), _distinct([]))]
    frame = spark.createDataFrame(rows, DESCRIPTOR_SCHEMA)
    settings = VocabularySettings(k=2, sample_size=20, partitions=2, max_iter=2)
    context, made = spark.sparkContext, []
    broadcast = context.broadcast

    def recorded(value):
        made.append(broadcast(value))
        return made[-1]

    monkeypatch.setattr(context, "broadcast", recorded)
    with sample_descriptors(frame, settings, seed=3, totals=(20, 0)) as sample:
        materialised, count = materialise(sample, settings)
        (shared,) = made
        assert os.path.exists(shared._path)
    assert not os.path.exists(shared._path)  # destroyed, on the driver too
    # The materialised sample no longer needs it: KMeans (and a second read) still work.
    assert count == 20
    assert sorted(int(row["features"][0]) for row in materialised.collect()) == list(range(20))
    assert centers(fit_kmeans(materialised, settings, seed=3)).shape == (2, 32)

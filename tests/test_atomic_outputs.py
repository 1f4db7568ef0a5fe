"""Stage outputs appear whole or not at all; a stage without its marker is redone."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import LongType

from bovw.errors import StorageError
from bovw.pipeline.layout import RunLayout, finished_stage, mark_finished
from bovw.spark import storage
from tests.parquet_files import parquet_codecs


def test_write_parquet_publishes_the_whole_output(spark, tmp_path):
    target = tmp_path / "histograms"
    storage.write_parquet(spark, spark.range(10).repartition(3), str(target))
    assert sorted(row["id"] for row in storage.read_parquet(spark, str(target)).collect()) == list(
        range(10))
    assert (target / "_SUCCESS").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["histograms"]


def test_outputs_under_glob_characters_are_read_as_named(spark, tmp_path):
    # Spark reads "run [1]" as a pattern, which names the sibling "run 1" instead: a run
    # under such a folder read another run's tables and models, or none ("not found").
    from pyspark.ml.feature import StringIndexerModel

    for folder, ids, labels in (("run [1]", range(3), ["mine"]),
                                ("run 1", range(100, 105), ["sibling"])):
        storage.write_parquet(spark, spark.range(ids.start, ids.stop), str(tmp_path / folder / "t"))
        StringIndexerModel.from_labels(labels, inputCol="a").save(str(tmp_path / folder / "m"))
    named = str(tmp_path / "run [1]")
    assert storage.literal(named).endswith("run \\[1\\]")
    assert sorted(r["id"] for r in storage.read_parquet(spark, f"{named}/t").collect()) == [0, 1, 2]
    assert storage.load_model(StringIndexerModel, f"{named}/m").labels == ["mine"]
    assert storage.literal("s3a://b/{a,b}*?^\\x") == "s3a://b/\\{a,b\\}\\*\\?\\^\\\\x"


def test_write_parquet_takes_a_codec_for_one_output_only(spark, tmp_path):
    frame = spark.range(100).selectExpr("id", "repeat('abc', 50) AS text")
    storage.write_parquet(spark, frame, str(tmp_path / "plain"), compression="uncompressed")
    storage.write_parquet(spark, frame, str(tmp_path / "default"))
    assert parquet_codecs(tmp_path / "plain") == {"UNCOMPRESSED"}
    # The session's codec (spark.sql.parquet.compression.codec) for the others.
    assert parquet_codecs(tmp_path / "default") == {"SNAPPY"}
    assert sorted(row["id"] for row in storage.read_parquet(spark, str(tmp_path / "plain"))
                  .collect()) == list(range(100))


def test_a_failed_write_leaves_the_previous_output_untouched(spark, tmp_path):
    target = tmp_path / "features"
    storage.write_parquet(spark, spark.range(5), str(target))

    @F.udf(LongType())
    def fail_on_seven(value):
        if value == 7:
            raise ValueError("stop half way")
        return value

    # Several tasks: some finish and write their part files before one fails.
    failing = spark.range(0, 12, numPartitions=4).select(fail_on_seven("id").alias("id"))
    with pytest.raises(Exception, match="stop half way"):
        storage.write_parquet(spark, failing, str(target))
    assert sorted(row["id"] for row in storage.read_parquet(spark, str(target)).collect()) == list(
        range(5))


def test_a_stage_output_without_its_marker_is_not_finished(spark, tmp_path):
    layout = RunLayout(str(tmp_path / "run"))
    storage.write_parquet(spark, spark.range(3), layout.histograms)
    assert finished_stage(spark, layout, "histograms") is None
    mark_finished(spark, layout, "histograms", {"timings": {"histograms": 1.5}})
    assert finished_stage(spark, layout, "histograms") == {"timings": {"histograms": 1.5}}


def test_read_bytes_reads_a_local_file_as_spark_names_it(spark, tmp_path):
    # Spark's path column holds Hadoop paths: nothing escaped, "%20" is three characters.
    image = tmp_path / "Apple Red%20 1" / "a b.jpg"
    image.parent.mkdir()
    image.write_bytes(b"\xff\xd8 jpeg bytes")
    listed = spark.read.format("binaryFile").load(storage.literal(str(image.parent))
                                                  ).first()["path"]
    assert listed == f"file:{image}"
    assert storage.read_bytes(spark, listed) == b"\xff\xd8 jpeg bytes"
    # Through Hadoop, as every other scheme is: the same bytes.
    assert storage.read_bytes(spark, str(image)) == b"\xff\xd8 jpeg bytes"


def test_read_bytes_of_a_missing_local_file_is_a_one_line_storage_error(spark, tmp_path):
    for path in (f"file:{tmp_path}/gone.json", str(tmp_path / "gone.json")):
        # Read in Python (file:/...) or through Hadoop: the same error.
        expected = r"^cannot read .*gone\.json: not found \(.*\); fix: check the path$"
        with pytest.raises(StorageError, match=expected):
            storage.read_bytes(spark, path)

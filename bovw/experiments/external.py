"""CNN features made elsewhere: a Parquet file of (path, [label,] features) read, checked and
joined by path to the images a comparison scores."""

from __future__ import annotations

from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, NumericType

from bovw.columns import FEATURES, LABEL, PATH, SPLIT
from bovw.config import Config
from bovw.errors import CompareError
from bovw.spark import storage

__all__ = ["DEFAULT_LABEL_COLUMN", "load_external_features", "match_features",
           "normalised_path"]

# Without a column of this name the file simply has no labels; any other name must exist.
DEFAULT_LABEL_COLUMN = "label"


def normalised_path(column):
    """A path column made comparable across writers: file:/x, file:///x and /x agree,
    and s3a:// / s3n:// read as s3://."""
    without_file = F.regexp_replace(column, r"^file:(//)?(?=/)", "")
    return F.regexp_replace(without_file, r"^s3[an]://", "s3://")


def load_external_features(spark: SparkSession, path: str, config: Config) -> DataFrame:
    """Read a Parquet of CNN features made elsewhere: (key, external_label, features).

    `key` is the normalised path; `features` a vector (array<float|double> or ML vector
    columns are accepted); rows with null features are dropped. The label column is
    optional under its default name ("label"); a column named otherwise must exist.
    Raises CompareError on a missing file or column, a features column of another type,
    vectors of different lengths, a NaN, infinite or null value in a vector, or a path
    listed twice.
    """
    settings = config.cnn
    if not storage.exists(spark, path):
        raise CompareError(f"CNN features file {path} does not exist")
    frame = storage.read_parquet(spark, path)
    named = [("--path-col", settings.path_column), ("--features-col", settings.features_column)]
    if settings.label_column != DEFAULT_LABEL_COLUMN:
        named.append(("--label-col", settings.label_column))
    for option, column in named:
        if column not in frame.columns:
            raise CompareError(f"{path} has no column {column!r} (its columns: "
                               f"{', '.join(frame.columns)}); name the right one with {option}")
    kind = frame.schema[settings.features_column].dataType
    if isinstance(kind, VectorUDT):
        values = vector_to_array(F.col(settings.features_column))
        vectors = F.col(settings.features_column)
    elif isinstance(kind, ArrayType) and isinstance(kind.elementType, NumericType):
        values = F.col(settings.features_column).cast("array<double>")
        vectors = array_to_vector(values)
    else:
        raise CompareError(f"column {settings.features_column!r} of {path} is "
                           f"{kind.simpleString()}; expected array<float>, array<double> or "
                           "an ML vector")
    label = (F.col(settings.label_column) if settings.label_column in frame.columns
             else F.lit(None)).cast("string")
    rows = frame.filter(F.col(settings.features_column).isNotNull()).select(
        normalised_path(F.col(settings.path_column)).alias("key"),
        label.alias("external_label"), F.size(values).alias("_size"),
        F.exists(values, _not_finite).alias("_not_finite"), vectors.alias(FEATURES))
    stats = rows.agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("key").alias("keys"),
                     F.min("_size").alias("shortest"), F.max("_size").alias("longest"),
                     F.count_if("_not_finite").alias("not_finite"),
                     F.min(F.when(F.col("_not_finite"), F.col("key"))).alias("example")
                     ).first()
    if not stats["rows"]:
        raise CompareError(f"{path} holds no row with features")
    if stats["not_finite"]:
        raise CompareError(f"{stats['not_finite']} of {stats['rows']} feature vectors in {path} "
                           f"hold NaN, infinite or missing values (e.g. {stats['example']}); "
                           "fix the features file: every value must be a finite number")
    if stats["shortest"] != stats["longest"]:
        raise CompareError(f"the feature vectors in {path} differ in length "
                           f"({stats['shortest']} to {stats['longest']} values); "
                           "every image needs the same number of features")
    if stats["keys"] != stats["rows"]:
        duplicated = (rows.groupBy("key").count().filter(F.col("count") > 1)
                      .orderBy("key").first()["key"])
        raise CompareError(f"{path} lists {stats['rows'] - stats['keys']} paths more than once "
                           f"(e.g. {duplicated}); keep one row per image")
    return rows.drop("_size", "_not_finite")


def _not_finite(value):
    return value.isNull() | F.isnan(value) | (F.abs(value) == float("inf"))


def match_features(images: DataFrame, features: DataFrame, source: str, input_path: str,
                   tolerance: float) -> tuple[DataFrame, DataFrame, dict[str, int]]:
    """Join feature rows (key, external_label, features) to images (path, label, split).

    Returns (matched rows (path, label, split, features), images without features as
    (path, label, split, reason), counts). Folder labels win over the file's labels;
    disagreements are counted. Raises CompareError when more than `tolerance` of the
    feature rows match no image.
    """
    keyed = images.withColumn("key", normalised_path(F.col(PATH)))
    total = features.count()
    unmatched = features.join(keyed.select("key"), "key", "left_anti")
    unmatched_count = unmatched.count()
    if unmatched_count == total or unmatched_count > tolerance * total:
        examples = [row["key"] for row in unmatched.orderBy("key").limit(3).collect()]
        raise CompareError(
            f"{unmatched_count} of {total} rows of {source} match no image under "
            f"{input_path} (e.g. {', '.join(examples)}); the features must come from these "
            "images: check the path column (--path-col) and the input folder"
        )
    joined = keyed.join(features, "key", "left")
    matched = joined.filter(F.col(FEATURES).isNotNull())
    missing = joined.filter(F.col(FEATURES).isNull()).select(
        PATH, LABEL, SPLIT, F.lit(f"no CNN features in {source}").alias("reason"))
    mismatched = matched.filter(F.col("external_label").isNotNull()
                                & (F.col("external_label") != F.col(LABEL))).count()
    counts = {"feature_rows": total, "unmatched_feature_rows": unmatched_count,
              "label_mismatches": mismatched}
    return matched.select(PATH, LABEL, SPLIT, FEATURES), missing, counts

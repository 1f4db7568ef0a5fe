"""Visual words against CNN features, on the same images, split, PCA, classifier and metrics.

Variants (each a run folder under `OUTPUT/variants/<name>/`):
  orb         the bag-of-visual-words pipeline, grey-level ORB words only
  orb-colour  the same with the HSV colour block appended (bovw.colour)
  cnn         CNN features, from a Parquet file made elsewhere or the built-in extractor
The CNN rows are joined by path to the images the ORB variants read (or, without them,
to the ingested listing), so every variant is scored on the same Test images.
`classify_features` is the common "feature vector -> PCA -> logistic regression ->
metrics" path for any DataFrame of (path, label, split, features).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.ml.feature import Normalizer
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, NumericType

from bovw import storage
from bovw.config import Config, ConfigError
from bovw.descriptors import accepted
from bovw.errors import CompareError
from bovw.ingest import TEST, TRAIN, labelled_images, list_files
from bovw.outputs import OutputFolder
from bovw.pipeline import classify_and_evaluate, run_pipeline
from bovw.provenance import (
    IMAGE_SET_KEYS,
    DescriptorProvenance,
    check_kept,
    first_difference,
    read_record,
    refusal,
)
from bovw.reduction import explained_variance, fit_pca
from bovw.runs import RunLayout, finished_stage, mark_finished, prepare_spec_folder
from bovw.words import histogram_length

VARIANTS = ("orb", "orb-colour", "cnn")
ORB_VARIANTS = {"orb": False, "orb-colour": True}  # name -> colour block on


@dataclass
class CompareResult:
    """One table row per finished variant, and the variants' run folders."""

    output: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    folders: list[tuple[str, str]] = field(default_factory=list)


def parse_variants(text: str) -> tuple[str, ...]:
    """"orb,cnn" -> ("orb", "cnn"). Raises ConfigError on an unknown name."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in VARIANTS]
    if not names or unknown:
        raise ConfigError(f"--variants takes a list of {', '.join(VARIANTS)} "
                          f"(got {text!r})")
    return names


def normalised_path(column):
    """A path column made comparable across writers: file:/x, file:///x and /x agree,
    and s3a:// / s3n:// read as s3://."""
    without_file = F.regexp_replace(column, r"^file:(//)?(?=/)", "")
    return F.regexp_replace(without_file, r"^s3[an]://", "s3://")


# ---------------------------------------------------------------- the common path

def classify_features(spark: SparkSession, features: DataFrame, rows: int, config: Config,
                      layout: RunLayout, *, normalise: bool) -> dict[str, Any]:
    """Fit PCA and logistic regression on the Training rows of `features`, score Test.

    `features` has (path, label, split, features: vector), `rows` rows. With `normalise`
    the vectors are L2-normalised first (as the visual-word histograms are). Writes the
    PCA, labels and classifier models, the per-image `features` Parquet (with
    pca_features and prediction) and metrics.json into `layout`; returns {"reduction",
    "metrics", "timings"}.
    """
    if normalise:
        weighted = Normalizer(inputCol="features", outputCol="weighted", p=2.0).transform(
            features)
    else:
        weighted = features.withColumn("weighted", F.col("features"))
    dimension = len(weighted.select("weighted").first()["weighted"])
    timings: dict[str, float] = {}
    started = time.perf_counter()
    pca = fit_pca(weighted, config.pca.components, dimension, config.seed)
    pca.write().overwrite().save(layout.model("pca"))
    variance = explained_variance(pca)
    timings["reduction"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    metrics = classify_and_evaluate(spark, config, pca.transform(weighted), rows, layout,
                                    ("path", "label", "split"))
    timings["classifier"] = round(time.perf_counter() - started, 3)
    return {"reduction": {"input_dimension": dimension, "components": len(variance),
                          "explained_variance_total": round(sum(variance), 6),
                          "explained_variance": variance},
            "metrics": metrics, "timings": timings}


# ---------------------------------------------------------------- external features

def load_external_features(spark: SparkSession, path: str, config: Config) -> DataFrame:
    """Read a Parquet of CNN features made elsewhere: (key, external_label, features).

    `key` is the normalised path; `features` a vector (array<float|double> or ML vector
    columns are accepted); rows with null features are dropped. Raises CompareError on a
    missing file or column, a features column of another type, vectors of different
    lengths, or a path listed twice.
    """
    settings = config.cnn
    if not storage.exists(spark, path):
        raise CompareError(f"CNN features file {path} does not exist")
    frame = spark.read.parquet(path)
    for option, column in (("--path-col", settings.path_column),
                           ("--features-col", settings.features_column)):
        if column not in frame.columns:
            raise CompareError(f"{path} has no column {column!r} (its columns: "
                               f"{', '.join(frame.columns)}); name the right one with {option}")
    kind = frame.schema[settings.features_column].dataType
    if isinstance(kind, VectorUDT):
        vectors = F.col(settings.features_column)
        sizes = F.size(vector_to_array(F.col(settings.features_column)))
    elif isinstance(kind, ArrayType) and isinstance(kind.elementType, NumericType):
        vectors = array_to_vector(F.col(settings.features_column).cast("array<double>"))
        sizes = F.size(settings.features_column)
    else:
        raise CompareError(f"column {settings.features_column!r} of {path} is "
                           f"{kind.simpleString()}; expected array<float>, array<double> or "
                           "an ML vector")
    label = (F.col(settings.label_column) if settings.label_column in frame.columns
             else F.lit(None)).cast("string")
    rows = frame.filter(F.col(settings.features_column).isNotNull()).select(
        normalised_path(F.col(settings.path_column)).alias("key"),
        label.alias("external_label"), vectors.alias("features"), sizes.alias("_size"))
    stats = rows.agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("key").alias("keys"),
                     F.min("_size").alias("shortest"), F.max("_size").alias("longest")).first()
    if not stats["rows"]:
        raise CompareError(f"{path} holds no row with features")
    if stats["shortest"] != stats["longest"]:
        raise CompareError(f"the feature vectors in {path} differ in length "
                           f"({stats['shortest']} to {stats['longest']} values); "
                           "every image needs the same number of features")
    if stats["keys"] != stats["rows"]:
        duplicated = (rows.groupBy("key").count().filter(F.col("count") > 1)
                      .orderBy("key").first()["key"])
        raise CompareError(f"{path} lists {stats['rows'] - stats['keys']} paths more than once "
                           f"(e.g. {duplicated}); keep one row per image")
    return rows.drop("_size")


def match_features(images: DataFrame, features: DataFrame, source: str, input_path: str,
                   tolerance: float) -> tuple[DataFrame, DataFrame, dict[str, int]]:
    """Join feature rows (key, external_label, features) to images (path, label, split).

    Returns (matched rows (path, label, split, features), images without features as
    (path, label, split, reason), counts). Folder labels win over the file's labels;
    disagreements are counted. Raises CompareError when more than `tolerance` of the
    feature rows match no image.
    """
    keyed = images.withColumn("key", normalised_path(F.col("path")))
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
    matched = joined.filter(F.col("features").isNotNull())
    missing = joined.filter(F.col("features").isNull()).select(
        "path", "label", "split", F.lit(f"no CNN features in {source}").alias("reason"))
    mismatched = matched.filter(F.col("external_label").isNotNull()
                                & (F.col("external_label") != F.col("label"))).count()
    counts = {"feature_rows": total, "unmatched_feature_rows": unmatched_count,
              "label_mismatches": mismatched}
    return matched.select("path", "label", "split", "features"), missing, counts


# ---------------------------------------------------------------- the comparison

def compare(spark: SparkSession, config: Config, input_path: str, output_path: str, *,
            variants: Sequence[str] = VARIANTS, cnn_features: str | None = None,
            descriptors_from: str | None = None, overwrite: bool = False, report: bool = True,
            log: Callable[[str], None] = print) -> CompareResult:
    """Run each variant (skipping finished ones) and write comparison.csv/.md and report.html.

    The ORB variants extract their own descriptors (so their times are comparable) unless
    `descriptors_from` names an earlier run's descriptors, which both then read. The cnn
    variant reads `cnn_features` (Parquet) when given, else runs `config.cnn.backbone`.
    Returns a CompareResult. Raises ConfigError, OutputError, CompareError, CnnError.
    """
    root = output_path.rstrip("/")
    spec = {"input": input_path, "variants": list(variants), "cnn_features": cnn_features,
            "descriptors_from": descriptors_from, "config": config.to_dict()}
    if descriptors_from:
        check_shared_descriptors(spark, descriptors_from, config, input_path, variants,
                                 root if overwrite else None)
    # Written into the output, or beside it and swapped in once complete (--overwrite).
    with _prepare(spark, root, spec, overwrite, log) as output:
        result = _run_variants(spark, config, input_path, output.work, variants, cnn_features,
                               descriptors_from, report, log)
    result.output = root
    result.folders = [(name, root + folder.removeprefix(output.work))
                      for name, folder in result.folders]
    return result


def _run_variants(spark: SparkSession, config: Config, input_path: str, root: str,
                  variants: Sequence[str], cnn_features: str | None,
                  descriptors_from: str | None, report: bool, log: Callable[[str], None]
                  ) -> CompareResult:
    if "cnn" in variants and cnn_features is None:
        from bovw.cnn import load_backbone

        load_backbone(config.cnn)  # a missing package or weights file fails before any work
    result = CompareResult(output=root)
    images_source: str | None = descriptors_from
    for name in variants:
        layout = RunLayout(storage.join(root, "variants", name))
        if storage.exists(spark, layout.summary):
            log(f"[bovw] compare {name}: finished, skipped")
        elif name in ORB_VARIANTS:
            log(f"[bovw] compare {name}: running")
            run_pipeline(spark, _orb_config(config, name), input_path, layout.root,
                         descriptors_from=descriptors_from, log=log)
        else:
            log(f"[bovw] compare {name}: running")
            _cnn_variant(spark, config, input_path, layout, images_source, cnn_features, log)
        summary = json.loads(storage.read_text(spark, layout.summary))
        if name in ORB_VARIANTS and images_source is None:
            images_source = (finished_stage(spark, layout, "descriptors") or {}).get(
                "descriptors_path")
        result.rows.append(table_row(name, summary))
        result.folders.append((name, layout.root))
        if report and not storage.exists(spark, layout.path("report.html")):
            from bovw.report import write_run_report

            write_run_report(spark, layout.root, title=f"bovw comparison variant {name}")
    write_outputs(spark, result, report)
    return result


def collect_result(spark: SparkSession, root: str) -> CompareResult:
    """The CompareResult of a comparison folder, from its finished variants."""
    root = root.rstrip("/")
    spec = json.loads(storage.read_text(spark, storage.join(root, "compare.json")))
    result = CompareResult(output=root)
    for name in spec["variants"]:
        layout = RunLayout(storage.join(root, "variants", name))
        if storage.exists(spark, layout.summary):
            result.rows.append(table_row(name, json.loads(storage.read_text(spark,
                                                                            layout.summary))))
            result.folders.append((name, layout.root))
    return result


def write_outputs(spark: SparkSession, result: CompareResult, report: bool) -> None:
    """The tables, and with `report` the comparison's report.html."""
    write_tables(spark, result)
    if report:
        from bovw.report import html_table, write_compare_report

        columns = table_columns()
        rows = [[_cell(c, row.get(c)) for c in columns] for row in result.rows]
        write_compare_report(spark, result.output,
                             html_table([c.replace("_", " ") for c in columns], rows,
                                        css="wide"),
                             result.folders)


def check_shared_descriptors(spark: SparkSession, source: str, config: Config,
                             input_path: str, variants: Sequence[str],
                             overwritten: str | None = None) -> None:
    """Refuse, before any work, descriptors every variant would read but some contradict.

    The ORB variants read them whole (all descriptor settings must match, the colour
    block for orb-colour); the cnn variant takes its image list from them (input, ingest,
    seed and orb.max_pixels must match). `overwritten` is the output --overwrite deletes.
    Raises ReuseError.
    """
    if overwritten is not None:
        check_kept(source, overwritten)
    made = read_record(spark, source)
    for name in variants:
        asked = _orb_config(config, name) if name in ORB_VARIANTS else config
        difference = first_difference(made, DescriptorProvenance.of(asked, input_path),
                                      None if name in ORB_VARIANTS else IMAGE_SET_KEYS)
        if difference is not None:
            raise refusal(source, difference, f"variant {name}")


def _orb_config(config: Config, name: str) -> Config:
    return config.replace(**{"colour.enabled": ORB_VARIANTS[name]})


def _prepare(spark: SparkSession, root: str, spec: dict[str, Any], overwrite: bool,
             log: Callable[[str], None]) -> OutputFolder:
    return prepare_spec_folder(spark, root, "compare.json", spec, overwrite, "comparison",
                               "comparison of another input, variant list, feature file or "
                               "configuration", log)


def _listed_images(spark: SparkSession, config: Config, input_path: str) -> DataFrame:
    """(path, label, split) of every image under the input, split as the pipeline splits."""
    files = labelled_images(spark, input_path, config.ingest, config.seed)
    return files.filter(F.col("split").isNotNull() & (F.col("length") > 0)
                        & (F.col("length") <= config.ingest.max_file_bytes)
                        ).select("path", "label", "split")


def _cnn_variant(spark: SparkSession, config: Config, input_path: str, layout: RunLayout,
                 images_source: str | None, cnn_features: str | None,
                 log: Callable[[str], None]) -> None:
    storage.write_text(spark, layout.run_spec, json.dumps(
        {"input": input_path, "images": images_source, "cnn_features": cnn_features,
         "config": config.to_dict()}, indent=2, sort_keys=True))
    images = (accepted(spark.read.parquet(images_source)).select("path", "label", "split")
              if images_source else _listed_images(spark, config, input_path))
    record = finished_stage(spark, layout, "cnn_features")
    if record is None:
        started = time.perf_counter()
        if cnn_features:
            features = load_external_features(spark, cnn_features, config)
            matched, missing, counts = match_features(
                images, features, cnn_features, input_path, config.cnn.unmatched_tolerance)
            description = f"external CNN features ({cnn_features})"
        else:
            matched, missing, counts = _extract(spark, config, input_path, images, layout)
            from bovw.cnn import DESCRIPTIONS

            description = DESCRIPTIONS[config.cnn.backbone]
        matched.write.mode("overwrite").parquet(layout.path("cnn_features"))
        missing.write.mode("overwrite").parquet(layout.rejects)
        record = {"counts": counts, "features": description,
                  "timings": {"cnn_features": round(time.perf_counter() - started, 3)}}
        mark_finished(spark, layout, "cnn_features", record)
    else:
        log("[bovw] cnn_features: already finished, reusing its outputs")
    matched = spark.read.parquet(layout.path("cnn_features"))
    missing_count = spark.read.parquet(layout.rejects).count()
    if missing_count:
        log(f"[bovw] compare cnn: {missing_count} images have no CNN features "
            f"(listed in {layout.rejects})")
    per_split = {row["split"]: row["count"] for row in matched.groupBy("split").count().collect()}
    if not per_split.get(TRAIN) or not per_split.get(TEST):
        raise CompareError(f"the CNN features cover {per_split.get(TRAIN, 0)} Training and "
                           f"{per_split.get(TEST, 0)} Test images; both splits need some")
    accepted_count = sum(per_split.values())
    classified = classify_features(spark, matched, accepted_count, config, layout,
                                   normalise=config.cnn.l2)
    summary = {
        "output": layout.root,
        "counts": {"images": accepted_count + missing_count, "accepted": accepted_count,
                   "rejected": missing_count, "missing_features": missing_count,
                   "per_split": per_split,
                   "classes": matched.select("label").distinct().count(),
                   **record["counts"]},
        "keypoints": {}, "vocabulary": {},
        "features": record["features"],
        "reduction": classified["reduction"],
        "metrics": {key: classified["metrics"][key] for key in
                    ("test_images", "accuracy", "macro_f1", "weighted_precision",
                     "weighted_recall", "weighted_f1")},
        "timings_seconds": {**record["timings"], **classified["timings"]},
        "config": config.to_dict(),
    }
    storage.write_text(spark, layout.summary, json.dumps(summary, indent=2))


def _extract(spark: SparkSession, config: Config, input_path: str, images: DataFrame,
             layout: RunLayout) -> tuple[DataFrame, DataFrame, dict[str, int]]:
    from bovw.cnn import extract_cnn_features

    files = list_files(spark, input_path, config.ingest).select("path", "content")
    wanted = files.join(images.select("path"), "path", "left_semi")
    extracted = extract_cnn_features(wanted, config.cnn, config.orb)
    extracted.write.mode("overwrite").parquet(layout.path("cnn_raw"))
    extracted = spark.read.parquet(layout.path("cnn_raw"))
    joined = images.join(extracted, "path", "left")
    matched = joined.filter(F.col("cnn_features").isNotNull()).select(
        "path", "label", "split", array_to_vector("cnn_features").alias("features"))
    missing = joined.filter(F.col("cnn_features").isNull()).select(
        "path", "label", "split",
        F.coalesce(F.col("reject_reason"), F.lit("not read by the CNN extractor")
                   ).alias("reason"))
    return matched, missing, {"extracted": extracted.count()}


# ---------------------------------------------------------------- tables

def table_row(name: str, summary: dict[str, Any]) -> dict[str, Any]:
    """One side-by-side line from a variant's summary.json."""
    timings = summary.get("timings_seconds", {})
    metrics, counts = summary.get("metrics", {}), summary.get("counts", {})
    reduction = summary.get("reduction", {})
    feature_seconds = (timings.get("ingest", 0.0) + timings.get("descriptors", 0.0)
                       + timings.get("cnn_features", 0.0))
    total = sum(timings.values())
    images = counts.get("accepted", 0)
    if name in ORB_VARIANTS:
        k = summary.get("vocabulary", {}).get("k")
        settings = summary.get("config", {})
        colour = settings.get("colour", {})
        colour_bins = (colour.get("hue_bins", 0) * colour.get("saturation_bins", 0)
                       * colour.get("value_bins", 0)) if ORB_VARIANTS[name] else 0
        tone = settings.get("tone", {})
        tone_bins = tone.get("bins", 0) if tone.get("enabled") else 0
        levels = settings.get("histograms", {}).get("pyramid_levels", 1)
        dimension = histogram_length(k or 0, levels) + tone_bins + colour_bins
        features = (f"ORB visual words, k={k}" + (f", {levels} pyramid levels" if levels > 1
                                                   else "")
                    + (f" + grey tone ({tone_bins} bins)" if tone_bins else "")
                    + (f" + HSV colour ({colour_bins} bins)" if colour_bins else ""))
    else:
        dimension = reduction.get("input_dimension")
        features = summary.get("features", "CNN features")
    external = name == "cnn" and "external" in str(summary.get("features", ""))
    return {
        "variant": name, "features": features, "dimension": dimension,
        "pca_components": reduction.get("components"),
        "accuracy": metrics.get("accuracy"), "macro_f1": metrics.get("macro_f1"),
        "test_images": metrics.get("test_images"), "images": images,
        "missing_images": counts.get("missing_features", counts.get("rejected", 0)),
        "seconds_features": round(feature_seconds, 1),
        "seconds_vocabulary": timings.get("vocabulary", 0.0),
        "seconds_histograms": timings.get("histograms", 0.0),
        "seconds_reduction": timings.get("reduction", 0.0),
        "seconds_classifier": timings.get("classifier", 0.0),
        "seconds_total": round(total, 1),
        "images_per_second_features": (None if external or not feature_seconds
                                       else round(images / feature_seconds, 1)),
        "images_per_second_total": None if external or not total else round(images / total, 1),
    }


def table_columns() -> list[str]:
    return ["variant", "features", "dimension", "pca_components", "accuracy", "macro_f1",
            "test_images", "images", "missing_images", "seconds_features",
            "seconds_vocabulary", "seconds_histograms", "seconds_reduction",
            "seconds_classifier", "seconds_total", "images_per_second_features",
            "images_per_second_total"]


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if column in ("accuracy", "macro_f1") else f"{value:.1f}"
    return str(value)


def per_class_f1(spark: SparkSession, result: CompareResult) -> tuple[list[str], list[list]]:
    """(header, rows) of F1 per class, one column per variant."""
    per_variant = [(name, json.loads(storage.read_text(spark, RunLayout(folder).metrics)))
                   for name, folder in result.folders]
    classes: list[str] = []
    for _name, metrics in per_variant:
        classes.extend(c for c in metrics.get("classes", []) if c not in classes)
    rows = [[label, *[metrics.get("per_class", {}).get(label, {}).get("f1")
                      for _name, metrics in per_variant]] for label in classes]
    return ["class", *[name for name, _metrics in per_variant]], rows


def write_tables(spark: SparkSession, result: CompareResult) -> None:
    """comparison.csv, comparison_per_class.csv and comparison.md (both tables)."""
    columns = table_columns()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.rows)
    storage.write_text(spark, storage.join(result.output, "comparison.csv"), buffer.getvalue())
    header, rows = per_class_f1(spark, result)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    storage.write_text(spark, storage.join(result.output, "comparison_per_class.csv"),
                       buffer.getvalue())
    lines = ["| " + " | ".join(c.replace("_", " ") for c in columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(c, row.get(c)) for c in columns) + " |"
              for row in result.rows]
    lines += ["", "F1 per class (Test):", "", "| " + " | ".join(header) + " |",
              "|" + "---|" * len(header)]
    for row in rows:
        values = ["" if value is None else f"{value:.3f}" for value in row[1:]]
        lines.append("| " + " | ".join([row[0], *values]) + " |")
    storage.write_text(spark, storage.join(result.output, "comparison.md"),
                       "\n".join(lines) + "\n")

"""A deliberately naive Spark version of the bovw pipeline, timed stage by stage, for one
comparison with the real one (bench/compare.py --naive). Do not use it for anything else.

What makes it naive (each is what the real pipeline avoids):
  - a row-at-a-time Python `@udf` decodes each image with OpenCV and returns its ORB
    descriptors as array<array<float>> (32 floats per descriptor, then the keypoint's
    relative x, y), instead of packed bytes from an Arrow-batched UDF;
  - explode to one row per descriptor, array_to_vector, and Spark ML KMeans with its default
    k-means|| initialisation on ALL Training descriptors, not a sample;
  - KMeansModel.transform to assign the words, then groupBy(path).pivot(bin) WITHOUT the
    list of values (Spark first runs a job to find them), a VectorAssembler over thousands
    of pivoted columns, then IDF, Normalizer, an exact PCA (the full covariance on the
    driver, see fit_pca) and LogisticRegression.
The settings are the same as the pipeline's (orb.*, vocabulary.k and max_iter, histograms.*,
pca.components, classifier.*, seed). Each stage's result is cached and counted so that its
time is its own.

    python -m bench.naive INPUT [--config conf/x.toml] [--k 1000] [--set k=v] \
        [--max-images 300] [--sample-classes 5] [--timeout 3600] --json

Prints one JSON result like bench/spark_run.py. With --timeout the running Spark jobs are
cancelled when time is up and the timings of the finished stages are still printed
(status "timed out", stopped_in the stage that was running).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.config_args import add_config_arguments, config_from_args
from bench.reference import describe_grey_image, task_settings
from bench.spark_run import driver_jvm_peak_mb
from bovw.config import Config, ConfigError, OrbSettings

SPLITS = ("Training", "Test")


class TimedOut(Exception):
    """The --timeout passed while a stage was running."""


class Deadline:
    """Cancels every Spark job, again and again, once `seconds` have passed (None: never)."""

    def __init__(self, spark, seconds: float | None):
        self.spark = spark
        self.expired = threading.Event()
        self._finished = threading.Event()
        self._thread = None
        if seconds is not None:
            self._thread = threading.Thread(target=self._watch, args=(seconds,), daemon=True)
            self._thread.start()

    def _watch(self, seconds: float) -> None:
        if self._finished.wait(seconds):
            return
        self.expired.set()
        # Algorithms such as KMeans start job after job from the driver: keep cancelling
        # until the main thread has seen the deadline.
        while not self._finished.is_set():
            try:
                self.spark.sparkContext.cancelAllJobs()
            except Exception:  # the session may be stopping; nothing left to cancel then
                return
            self._finished.wait(1.0)

    def finish(self) -> None:
        self._finished.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def describe_row(content: bytes, orb: OrbSettings) -> list[list[float]] | None:
    """One image's ORB descriptors as lists of 34 floats (32 values, relative x, y), or None
    for bytes OpenCV cannot decode."""
    import cv2
    import numpy as np

    grey = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        return None
    descriptors, positions = describe_grey_image(grey, orb, positions=True)
    return np.hstack([descriptors, positions]).astype(float).tolist()


def orb_udf(orb: OrbSettings):
    """The row-at-a-time UDF: image bytes -> array<array<float>> (see describe_row)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, FloatType

    return F.udf(lambda content: describe_row(content, orb),
                 returnType=ArrayType(ArrayType(FloatType())))


def fit_pca(train, column: str, components: int, dimension: int):
    """Exact PCA of the `column` vectors (`dimension` long) of the `train` rows.

    Computed the way Spark ML's PCA.fit does it: Spark builds the full dimension x dimension
    covariance and brings it to the driver, which decomposes it. Returns a Spark PCAModel
    (column -> pca_features) with the min(components, dimension) axes of largest variance.

    The decomposition is numpy's symmetric eigensolver rather than PCA.fit's own: without
    a native LAPACK Spark falls back to an old Java translation of LAPACK whose dgesdd
    returns wrong singular vectors for some singular matrices, and the covariance is
    singular whenever there are fewer Training rows than columns. On 600 Fruits-360 images
    (454 Training rows, 1000 bins) 18 of PCA.fit's 100 axes carried no Training variance;
    the unstandardised L2 penalty of LogisticRegression divides by each feature's variance
    (~1e-32 on those), LBFGS gave up at its first step and every Test image got one class.
    """
    from threadpoolctl import threadpool_limits

    from bovw.pipeline.feature_rows import vector_rows
    from bovw.pipeline.reduction import exact_components, pca_model

    # One thread, like Spark's own decomposition: beside Spark on 2 cores OpenBLAS's threads
    # only wait for each other (1000 columns: 5-6 s with two threads, 0.1-1 s with one).
    with threadpool_limits(limits=1):
        pc, explained = exact_components(train, vector_rows(column, dimension),
                                         min(components, dimension))
    return pca_model(train.sparkSession, pc, explained).setInputCol(column)


def list_images(spark, input_path: str, config: Config, max_images: int | None,
                sample_classes: int | None):
    """binaryFile rows (path, content, split, label) under <input>/<split>/<Class>/, sampled."""
    from pyspark.sql import functions as F

    extensions = "|".join(ext.lower().lstrip(".") for ext in config.ingest.extensions)
    files = (
        spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(input_path)
        .filter(F.lower(F.col("path")).rlike(rf"\.({extensions})$"))
        .withColumn("split", F.regexp_extract("path", r"/(Training|Test)/[^/]+/[^/]+$", 1))
        .withColumn("label", F.regexp_extract("path", r"/([^/]+)/[^/]+$", 1))
        .filter(F.col("split") != "")
        .select("path", "content", "split", "label")
    )
    if sample_classes is not None:
        names = sorted(row.label for row in files.select("label").distinct().collect())
        chosen = random.Random(config.seed).sample(names, min(sample_classes, len(names)))
        files = files.filter(F.col("label").isin(chosen))
    if max_images is not None:
        chosen_paths = (files.select("path").orderBy(F.xxhash64("path", F.lit(config.seed)))
                        .limit(max_images))
        files = files.join(chosen_paths, "path")
    return files


def pyramid_bins(k: int, levels: int):
    """Column expression: array of bins (word, then its cell's bin at each finer level)."""
    from pyspark.sql import functions as F

    word = F.col("prediction").cast("long")
    bins = [word]
    for level in range(1, levels):
        side = 2**level
        column = F.floor(F.col("x") * side / 256)
        row = F.floor(F.col("y") * side / 256)
        bins.append(k * (4**level - 1) // 3 + (row * side + column) * k + word)
    return F.array(*bins)


def run_naive(spark, config: Config, input_path: str, *, max_images: int | None = None,
              sample_classes: int | None = None, timeout: float | None = None,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the naive pipeline once; returns timings, counts, metrics, status (and more)."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.feature import IDF, Normalizer, StringIndexer, VectorAssembler
    from pyspark.ml.functions import array_to_vector, vector_to_array
    from pyspark.sql import functions as F

    k, levels = config.vocabulary.k, config.histograms.pyramid_levels
    length = k * sum(4**level for level in range(levels))
    # Spark refuses to pivot over more than 10,000 distinct values by default.
    spark.conf.set("spark.sql.pivotMaxValues", str(max(10_000, length)))
    timings: dict[str, float] = {}
    counts: dict[str, int] = {}
    state: dict[str, Any] = {}
    stopped_after: dict[str, float] = {}  # the stage the deadline stopped, and its time so far
    deadline = Deadline(spark, timeout)

    def stage(name: str, work: Callable[[], None]) -> None:
        if deadline.expired.is_set():  # time ran out just as the previous stage ended
            stopped_after[name] = 0.0
            raise TimedOut(name)
        log(f"[naive] {name}: running")
        started = time.perf_counter()
        try:
            work()
        except Exception:
            if deadline.expired.is_set():
                stopped_after[name] = round(time.perf_counter() - started, 3)
                raise TimedOut(name) from None
            raise
        timings[name] = round(time.perf_counter() - started, 3)

    def cached(frame):
        frame = frame.cache()
        return frame, frame.count()

    def ingest() -> None:
        files = list_images(spark, input_path, config, max_images, sample_classes)
        state["files"], counts["images"] = cached(files.drop("content"))
        state["with_content"] = files

    def descriptors() -> None:
        described = state["with_content"].select(
            "path", "split", "label", orb_udf(config.orb)("content").alias("rows"))
        exploded = described.select("path", "split", "label", F.explode("rows").alias("row"))
        vectors = exploded.select(
            "path", "split", "label",
            array_to_vector(F.slice("row", 1, 32)).alias("features"),
            F.col("row")[32].alias("x"), F.col("row")[33].alias("y"))
        state["descriptors"], counts["descriptors"] = cached(vectors)

    def vocabulary() -> None:
        train = state["descriptors"].filter(F.col("split") == "Training")
        kmeans = KMeans(k=k, maxIter=config.vocabulary.max_iter, seed=config.seed,
                        featuresCol="features", predictionCol="prediction")
        state["kmeans"] = kmeans.fit(train)

    def histograms() -> None:
        words = state["kmeans"].transform(state["descriptors"])
        binned = words.select("path", "split", "label",
                              F.explode(pyramid_bins(k, levels)).alias("bin"))
        pivoted = binned.groupBy("path", "split", "label").pivot("bin").count().fillna(0)
        bin_columns = [name for name in pivoted.columns if name not in ("path", "split", "label")]
        assembled = VectorAssembler(inputCols=bin_columns, outputCol="histogram").transform(
            pivoted).select("path", "split", "label", "histogram")
        state["histograms"], counts["images_with_histogram"] = cached(assembled)
        counts["non_empty_bins"] = len(bin_columns)
        state["descriptors"].unpersist()

    def reduction() -> None:
        frame = state["histograms"]
        train = frame.filter(F.col("split") == "Training")
        column = "histogram"
        if config.histograms.tfidf:
            frame = IDF(inputCol=column, outputCol="tfidf").fit(train).transform(frame)
            column = "tfidf"
        if config.histograms.power != 1.0:
            power = config.histograms.power
            frame = frame.withColumn("powered", array_to_vector(
                F.transform(vector_to_array(column), lambda value: F.pow(value, power))))
            column = "powered"
        if config.histograms.l2:
            frame = Normalizer(inputCol=column, outputCol="normalised", p=2.0).transform(frame)
            column = "normalised"
        train = frame.filter(F.col("split") == "Training")
        pca = fit_pca(train, column, config.pca.components, counts["non_empty_bins"])
        state["features"], _ = cached(pca.transform(frame).select(
            "path", "split", "label", "pca_features"))

    def classifier() -> None:
        frame = state["features"]
        train = frame.filter(F.col("split") == "Training")
        indexer = StringIndexer(inputCol="label", outputCol="label_index",
                                stringOrderType="alphabetAsc", handleInvalid="keep").fit(train)
        indexed = indexer.transform(frame)
        settings = config.classifier
        model = LogisticRegression(
            featuresCol="pca_features", labelCol="label_index", family="multinomial",
            maxIter=settings.max_iter, regParam=settings.reg_param,
            elasticNetParam=settings.elastic_net, tol=settings.tol,
            standardization=settings.standardize,
        ).fit(indexed.filter(F.col("split") == "Training"))
        predictions = model.transform(indexed.filter(F.col("split") == "Test")).cache()
        counts["test_images"] = predictions.count()
        for metric, name in (("accuracy", "accuracy"), ("f1", "macro_f1")):
            evaluator = MulticlassClassificationEvaluator(
                labelCol="label_index", predictionCol="prediction", metricName=metric)
            state.setdefault("metrics", {})[name] = float(evaluator.evaluate(predictions))

    status, stopped_in = "finished", None
    try:
        for name, work in (("ingest", ingest), ("descriptors", descriptors),
                           ("vocabulary", vocabulary), ("histograms", histograms),
                           ("reduction", reduction), ("classifier", classifier)):
            stage(name, work)
    except TimedOut as timed_out:
        status, stopped_in = "timed out", str(timed_out)
        log(f"[naive] timed out after {timeout} s during {stopped_in}; partial timings follow")
    finally:
        deadline.finish()
    return {"timings": timings, "counts": counts, "metrics": state.get("metrics", {}),
            "status": status, "stopped_in": stopped_in,
            "stopped_stage_seconds": stopped_after.get(stopped_in), "timeout_seconds": timeout}


def run(input_path: str, config: Config, max_images: int | None, sample_classes: int | None,
        timeout: float | None) -> dict[str, Any]:
    """Build a session, run the naive pipeline; returns its result with total time and memory."""
    from bovw.spark.session import build_session

    start = time.perf_counter()
    spark = build_session(config)
    session_seconds = time.perf_counter() - start
    try:
        remaining = None if timeout is None else max(1.0, timeout - session_seconds)
        result = run_naive(spark, config, input_path, max_images=max_images,
                           sample_classes=sample_classes, timeout=remaining,
                           log=lambda line: print(line, file=sys.stderr, flush=True))
        total = time.perf_counter() - start
        jvm_mb = driver_jvm_peak_mb(spark)
    finally:
        spark.stop()
    python_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["timings"] = {"session_start": round(session_seconds, 3), **result["timings"]}
    result["total_seconds"] = round(total, 3)
    result["timeout_seconds"] = timeout
    result["peak_memory_mb"] = {"python": round(python_mb, 1), "jvm": round(jvm_mb, 1),
                                "total": round(python_mb + jvm_mb, 1)}
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The naive Spark pipeline, timed (bench only).")
    parser.add_argument("input_path", help="folder holding Training/<Class>/ and Test/<Class>/")
    add_config_arguments(parser)
    parser.add_argument("--max-images", type=int, help="a seeded sample of at most N images")
    parser.add_argument("--sample-classes", type=int, help="only N seeded-chosen classes")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds before the run is stopped (default 3600; 0: none)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args(argv)
    for name in ("max_images", "sample_classes"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1 (got {value})")
    try:
        config = config_from_args(args)
        result = run(args.input_path, config, args.max_images, args.sample_classes,
                     args.timeout or None)
    except (ConfigError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result["config"] = task_settings(config)
    result["sample"] = {"max_images": args.max_images, "sample_classes": args.sample_classes}
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    # Run from the importable module, not __main__: Spark's Python workers must find the
    # UDF's helpers under the name bench.naive.
    from bench.naive import main as module_main

    sys.exit(module_main())

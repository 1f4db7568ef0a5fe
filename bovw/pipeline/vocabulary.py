"""Vocabulary stage: Spark ML KMeans on a seeded sample of Training descriptors, as their
byte values or their bits (`vocabulary.space`, bovw.image.words.SPACES)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
from pyspark.ml.clustering import KMeans, KMeansModel
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from bovw.columns import DESCRIPTORS, FEATURES, N_KEYPOINTS, PATH, SAMPLE, SPLIT, TRAIN
from bovw.config import VocabularySettings
from bovw.errors import VocabularyError
from bovw.image.orb import DESCRIPTOR_BYTES, image_key, image_rng, unpack
from bovw.image.words import descriptor_points
from bovw.pipeline.descriptors import accepted
from bovw.spark.arrow_vectors import dense_vectors

__all__ = ["centers", "fit_kmeans", "fit_vocabulary", "materialise", "sample_descriptors"]

_DRAWN_SCHEMA = "image string, index int, descriptor binary"
_PARTITION = "partition"


def _sample_batches(fraction: float, seed: int):
    schema = pa.schema([("image", pa.string()), ("index", pa.int32()),
                        ("descriptor", pa.binary())])

    def sample(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            images, indices, kept = [], [], []
            for path, blob in zip(batch.column(PATH).to_pylist(),
                                  batch.column(DESCRIPTORS).to_pylist(), strict=True):
                descriptors = unpack(blob)
                keep = np.flatnonzero(image_rng(seed, path).random(len(descriptors)) < fraction)
                images += [image_key(path)] * len(keep)
                indices.append(keep.astype(np.int32))
                kept.append(descriptors[keep])
            vectors = np.concatenate(kept) if kept else np.zeros((0, DESCRIPTOR_BYTES), np.uint8)
            offsets = np.arange(0, vectors.size + 1, DESCRIPTOR_BYTES, dtype=np.int32)
            yield pa.RecordBatch.from_arrays([
                pa.array(images, pa.string()),
                pa.array(np.concatenate(indices) if indices else [], type=pa.int32()),
                pa.BinaryArray.from_buffers(pa.binary(), len(vectors), [
                    None, pa.py_buffer(offsets),
                    pa.py_buffer(np.ascontiguousarray(vectors, np.uint8).tobytes())]),
            ], schema=schema)

    return sample


def _distinct_by_partition(drawn: pa.Table, partitions: int) -> list[bytes]:
    """The distinct descriptors of a drawn sample (image, index, descriptor, partition),
    each kept once, at its first (image, index), as the concatenated 32-byte descriptors
    of each of the `partitions` partitions, sorted by (image, index, descriptor)."""
    images = drawn.column("image").to_pylist()
    indices = drawn.column("index").to_pylist()
    blobs = drawn.column("descriptor").to_pylist()
    places = drawn.column(_PARTITION).to_pylist()
    first: dict[bytes, int] = {}
    # In (image, index) order, the first row of each descriptor is the one kept; the
    # descriptor's own bytes break the tie between two images of one name (Training/ and
    # train/ side by side). A dict keeps its keys in insertion order: the kept rows come
    # out sorted.
    for row in sorted(range(len(blobs)), key=lambda row: (images[row], indices[row], blobs[row])):
        first.setdefault(blobs[row], row)
    laid_out: list[list[bytes]] = [[] for _ in range(partitions)]
    for row in first.values():
        laid_out[places[row]].append(blobs[row])
    return [b"".join(part) for part in laid_out]


def _lay_out(shared, space: str):
    """mapInArrow function over spark.range(partitions), one id a partition: partition i
    gets the descriptors of item i of the broadcast list `shared` (_distinct_by_partition),
    in their order, as `features` vectors: points of `space`
    (bovw.image.words.descriptor_points)."""

    def emit(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for partition in batch.column("id").to_pylist():
                points = descriptor_points(unpack(shared.value[partition]), space)
                yield pa.RecordBatch.from_arrays([dense_vectors(points)], names=[FEATURES])

    return emit


@contextmanager
def sample_descriptors(descriptors: DataFrame, settings: VocabularySettings, seed: int,
                       totals: tuple[int, int]) -> Iterator[DataFrame]:
    """About `settings.sample_size` Training descriptors, duplicates removed, as a
    `features` vector column: points of the `settings.space` space (32 byte values or 256
    bits, bovw.image.words.descriptor_points). A context manager: the frame reads a
    broadcast variable, destroyed when the block ends, so `materialise` it inside the
    block (its result stays usable after it): kept, every point of a sweep left one behind
    on the driver and the executors.

    Drawn from the `sample` column when it holds at least sample_size descriptors, else
    from all of them. Each is kept with probability sample_size / available, decided by a
    generator seeded from (seed, the image's class folder and file name), so the sample
    depends neither on partitioning nor on where the dataset lies. The result lies on
    `settings.partitions` partitions, each image's descriptors on the partition its name
    hashes to (Spark's hash partitioning), sorted by (image name, index, descriptor),
    which makes KMeans's own seeded choices independent of the master URL. `totals` are
    (Training descriptors, set-aside ones), as bovw.pipeline.descriptors.statistics counts
    them (keypoints "training" and "set_aside"). Raises VocabularyError when there are
    fewer Training descriptors than k.

    The drawn descriptors are brought to the driver (sample_size times under 100 bytes: the
    setting bounds it, not the data) and deduplicated there; one small Python job lays
    them out from a broadcast variable, in the same layout as a groupBy on the descriptor, a
    repartition and a sort, which took five Spark jobs and two shuffles: on fruits360-dev,
    from the first of those jobs to KMeans's first, 2.3 s before and 1.4 s now (one `bovw
    run` each, Spark event logs).
    """
    training = accepted(descriptors).filter(
        (F.col(SPLIT) == TRAIN) & (F.col(N_KEYPOINTS) > 0)
    )
    total, presampled = totals
    if total < settings.k:
        raise VocabularyError(
            f"only {total} Training descriptors for vocabulary.k={settings.k}; "
            "lower k or add Training images"
        )
    # The descriptors stage set a few descriptors of each image aside (bovw.pipeline.descriptors):
    # when they are enough, the sample is drawn from them, a small read instead of every
    # descriptor of every image.
    source, available = (SAMPLE, presampled) if presampled >= settings.sample_size else (
        DESCRIPTORS, total)
    fraction = min(1.0, settings.sample_size / available)
    # The partition an image's name hashes to, computed as Spark's hash partitioning
    # computes it: the layout a repartition(partitions, "image") gives.
    drawn = (training.select(PATH, F.col(source).alias(DESCRIPTORS))
             .mapInArrow(_sample_batches(fraction, seed), _DRAWN_SCHEMA)
             .withColumn(_PARTITION, F.pmod(F.hash("image"), F.lit(settings.partitions)))
             .toArrow())
    # Dense grids put many points on the plain background, which all give the very same
    # descriptor: KMeans's random init would pick it hundreds of times and end with far
    # fewer than k distinct words. Each distinct descriptor is kept once, at its first
    # (image, index), by the image's location-free name (bovw.image.orb.image_key), so
    # that the layout is the same wherever the dataset lies.
    spark = descriptors.sparkSession
    shared = spark.sparkContext.broadcast(_distinct_by_partition(drawn, settings.partitions))
    try:
        yield spark.range(0, settings.partitions, 1, settings.partitions).mapInArrow(
            _lay_out(shared, settings.space), StructType([StructField(FEATURES, VectorUDT())]))
    finally:
        shared.destroy()


def materialise(sample: DataFrame, settings: VocabularySettings) -> tuple[DataFrame, int]:
    """The sample computed once, for its count, for every KMeans pass and for the mixture's
    EM rounds (bovw.pipeline.mixture), and its size. Raises VocabularyError when it holds
    fewer distinct descriptors than k."""
    # A local checkpoint rather than a cache: KMeans's block solver keeps its own
    # blockified copy, and warns of "double caching" when its input is cached (the sample
    # is a few MB either way).
    materialised = sample.localCheckpoint()
    count = materialised.count()
    if count < settings.k:
        raise VocabularyError(
            f"the descriptor sample holds {count} distinct descriptors, fewer than "
            f"vocabulary.k={settings.k}; raise vocabulary.sample_size or lower k"
        )
    return materialised, count


def fit_kmeans(materialised: DataFrame, settings: VocabularySettings, seed: int) -> KMeansModel:
    """Spark ML KMeans with k = settings.k on the `features` column of a materialised
    sample."""
    kmeans = KMeans(
        k=settings.k,
        seed=seed,
        maxIter=settings.max_iter,
        initMode=settings.init_mode,
        initSteps=settings.init_steps,
        tol=settings.tol,
        solver=settings.solver,
        featuresCol=FEATURES,
        predictionCol="word",
    )
    return kmeans.fit(materialised)


def fit_vocabulary(sample: DataFrame, settings: VocabularySettings, seed: int
                   ) -> tuple[KMeansModel, int]:
    """Fit Spark ML KMeans with k = settings.k on the `features` column; returns the model
    and the number of sampled descriptors it was fitted on."""
    materialised, count = materialise(sample, settings)
    return fit_kmeans(materialised, settings, seed), count


def centers(model: KMeansModel) -> np.ndarray:
    """The visual words as a (k, 32) or, in the bits space, (k, 256) float32 array (the
    vocabulary is small: k rows)."""
    return np.asarray(model.clusterCenters(), dtype=np.float32)

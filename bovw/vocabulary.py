"""Vocabulary stage: Spark ML KMeans on a seeded sample of Training descriptors."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.ml.clustering import KMeans, KMeansModel
from pyspark.ml.functions import array_to_vector
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from bovw.config import VocabularySettings
from bovw.descriptors import accepted
from bovw.errors import VocabularyError
from bovw.features import DESCRIPTOR_BYTES, unpack
from bovw.ingest import TRAIN

_SAMPLE_SCHEMA = "path string, index int, descriptor array<float>"


def image_rng(seed: int, path: str) -> np.random.Generator:
    """A random generator fixed by (seed, path): the same in every process and partition."""
    digest = hashlib.blake2b(f"{seed}\0{path}".encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def _sample_batches(fraction: float, seed: int):
    schema = pa.schema([("path", pa.string()), ("index", pa.int32()),
                        ("descriptor", pa.list_(pa.float32()))])

    def sample(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            rows, indices, vectors = [], [], []
            for row, (path, blob) in enumerate(zip(batch.column("path").to_pylist(),
                                                   batch.column("descriptors").to_pylist(),
                                                   strict=True)):
                descriptors = unpack(blob)
                keep = np.flatnonzero(image_rng(seed, path).random(len(descriptors)) < fraction)
                rows.append(np.full(len(keep), row, dtype=np.int64))
                indices.append(keep.astype(np.int32))
                vectors.append(descriptors[keep])
            kept = np.concatenate(vectors) if vectors else np.zeros((0, DESCRIPTOR_BYTES))
            # Built as Arrow arrays: a Python float per descriptor byte would cost more
            # than the sampling itself.
            yield pa.RecordBatch.from_arrays([
                batch.column("path").take(pa.array(np.concatenate(rows) if rows else [],
                                                   type=pa.int64())),
                pa.array(np.concatenate(indices) if indices else [], type=pa.int32()),
                pa.ListArray.from_arrays(
                    pa.array(np.arange(0, kept.size + 1, DESCRIPTOR_BYTES, dtype=np.int32)),
                    pa.array(kept.astype(np.float32).ravel())),
            ], schema=schema)

    return sample


def sample_descriptors(descriptors: DataFrame, settings: VocabularySettings, seed: int
                       ) -> DataFrame:
    """About `settings.sample_size` Training descriptors, duplicates removed, as a
    `features` vector column.

    Each descriptor is kept with probability sample_size / total, decided by a generator
    seeded from (seed, path), so the sample does not depend on partitioning. The result
    is hash-partitioned and sorted on a fixed number of partitions, which makes KMeans's
    own seeded choices independent of the master URL. Raises VocabularyError when there
    are fewer Training descriptors than k.
    """
    training = accepted(descriptors).filter(
        (F.col("split") == TRAIN) & (F.col("n_keypoints") > 0)
    )
    total = training.agg(F.sum("n_keypoints")).first()[0] or 0
    if total < settings.k:
        raise VocabularyError(
            f"only {total} Training descriptors for vocabulary.k={settings.k}; "
            "lower k or add Training images"
        )
    fraction = min(1.0, settings.sample_size / total)
    sampled = training.select("path", "descriptors").mapInArrow(
        _sample_batches(fraction, seed), _SAMPLE_SCHEMA)
    # Dense grids put many points on the plain background, which all give the very same
    # descriptor: KMeans's random init would pick it hundreds of times and end with far
    # fewer than k distinct words. Each distinct descriptor is kept once, represented by
    # its first (path, index) so that the layout below stays deterministic.
    distinct = sampled.groupBy("descriptor").agg(F.min(F.struct("path", "index")).alias("first"))
    return (
        distinct.select("first.path", "first.index", "descriptor")
        .repartition(settings.partitions, "path")
        .sortWithinPartitions("path", "index")
        .select(array_to_vector("descriptor").alias("features"))
    )


def fit_vocabulary(sample: DataFrame, settings: VocabularySettings, seed: int) -> KMeansModel:
    """Fit Spark ML KMeans with k = settings.k on the `features` column; returns the model."""
    kmeans = KMeans(
        k=settings.k,
        seed=seed,
        maxIter=settings.max_iter,
        initMode=settings.init_mode,
        initSteps=settings.init_steps,
        tol=settings.tol,
        solver=settings.solver,
        featuresCol="features",
        predictionCol="word",
    )
    cached = sample.cache()
    try:
        count = cached.count()
        if count < settings.k:
            raise VocabularyError(
                f"the descriptor sample holds {count} distinct descriptors, fewer than "
                f"vocabulary.k={settings.k}; raise vocabulary.sample_size or lower k"
            )
        return kmeans.fit(cached)
    finally:
        cached.unpersist()


def centers(model: KMeansModel) -> np.ndarray:
    """The visual words as a (k, 32) float32 array (the vocabulary is small: k rows)."""
    return np.asarray(model.clusterCenters(), dtype=np.float32)

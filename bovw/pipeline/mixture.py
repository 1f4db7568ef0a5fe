"""The Bernoulli mixture of `histograms.encoding = "fisher"`, fitted by EM as Spark jobs on
the vocabulary stage's descriptor sample (bovw.image.fisher.BernoulliMixture).

It starts from the KMeans vocabulary of the bits space: component j's bit probabilities
are word j's center (the share of its descriptors with each bit set), its weight 1 / k.
Each EM round is one Spark job: every partition returns its count, the sum of its points'
responsibilities (k,), their responsibility-weighted sums of bits (k, 256) and its
log-likelihood; the driver adds them up in partition order (so the result does not depend
on timing) and sets the new parameters. Only k x 256 numbers per partition reach the
driver, whatever the sample's size.

The M-step is a maximum a posteriori one, a Beta(2, 2) prior on every bit probability and
a Dirichlet(2, ..., 2) one on the weights: (sum of gamma x + 1) / (sum of gamma + 2). A bit
that no descriptor of a component sets, or a component no descriptor falls in, then keeps a
probability strictly inside (0, 1), whose logarithm and Fisher information stay finite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

from bovw.columns import FEATURES
from bovw.errors import VocabularyError
from bovw.image.fisher import BITS, BernoulliMixture
from bovw.spark import storage
from bovw.spark.arrow_vectors import vectors_to_csr

__all__ = ["MIXTURE", "MixtureFit", "fit_mixture", "read_mixture", "write_mixture"]

# The mixture's file among a run's models (RunLayout.model).
MIXTURE = "mixture.json"

_PARTIAL_SCHEMA = "n long, mass binary, sums binary, log_likelihood double"


@dataclass(frozen=True)
class MixtureFit:
    """A fitted mixture, the EM rounds it took and the mean log-likelihood per sampled
    descriptor (nats) of the parameters its last round started from."""

    mixture: BernoulliMixture
    iterations: int
    log_likelihood: float


def fit_mixture(sample: DataFrame, centers: np.ndarray, max_iter: int, tol: float
                ) -> MixtureFit:
    """EM for a Bernoulli mixture on the `features` column of `sample` (points of the bits
    space, 256 values of 0/1), started from the (k, 256) KMeans `centers`.

    Stops after `max_iter` rounds, or earlier once a round raises the mean log-likelihood
    per descriptor by less than `tol`. Raises VocabularyError when `centers` are not of
    the bits space.
    """
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[1] != BITS:
        raise VocabularyError(f"a Bernoulli mixture needs a vocabulary of bits ({BITS} wide), "
                              f"got centers of shape {centers.shape}")
    k = len(centers)
    mixture = BernoulliMixture(np.full(k, 1.0 / k), _inside(centers))
    previous, rounds = -np.inf, 0
    while rounds < max_iter:
        n, mass, sums, log_likelihood = _expectations(sample, mixture)
        rounds += 1
        mixture = BernoulliMixture((mass + 1.0) / (n + k), (sums + 1.0) / (mass[:, None] + 2.0))
        mean = log_likelihood / n
        if mean - previous < tol:
            break
        previous = mean
    return MixtureFit(mixture, rounds, round(float(mean), 6))


def _inside(centers: np.ndarray) -> np.ndarray:
    """KMeans centers as starting bit probabilities, away from 0 and 1 (a center's bit is
    exactly 0 or 1 when all its descriptors agree, which would make every other
    descriptor impossible)."""
    return np.clip(centers, 0.01, 0.99)


def _expectations(sample: DataFrame, mixture: BernoulliMixture
                  ) -> tuple[int, np.ndarray, np.ndarray, float]:
    """One E-step over `sample`: (points, sum of responsibilities (k,), responsibility-
    weighted sums of the points (k, 256), log-likelihood)."""
    shared = sample.sparkSession.sparkContext.broadcast(mixture)

    def partials(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        model = shared.value
        n, mass, sums, log_likelihood = 0, np.zeros(model.k), np.zeros((model.k, BITS)), 0.0
        for batch in batches:
            points = vectors_to_csr(batch.column(FEATURES), BITS).toarray()
            gamma, log_p = model.responsibilities(points)
            n += len(points)
            mass += gamma.sum(axis=0)
            sums += gamma.T @ points
            log_likelihood += float(log_p.sum())
        if n:
            yield pa.RecordBatch.from_pydict({
                "n": [n], "mass": [mass.tobytes()], "sums": [sums.tobytes()],
                "log_likelihood": [log_likelihood]})

    k = mixture.k
    n, mass, sums, log_likelihood = 0, np.zeros(k), np.zeros((k, BITS)), 0.0
    try:
        for row in sample.select(FEATURES).mapInArrow(partials, _PARTIAL_SCHEMA).collect():
            n += row["n"]
            mass += np.frombuffer(row["mass"], dtype=np.float64)
            sums += np.frombuffer(row["sums"], dtype=np.float64).reshape(k, BITS)
            log_likelihood += row["log_likelihood"]
    finally:
        shared.unpersist()
    if n == 0:
        raise VocabularyError("the descriptor sample is empty: no Bernoulli mixture to fit")
    return n, mass, sums, log_likelihood


def write_mixture(spark: SparkSession, path: str, mixture: BernoulliMixture) -> None:
    """Save `mixture` as JSON at `path` (exact: float repr round-trips)."""
    storage.write_text(spark, path, json.dumps({
        "weights": mixture.weights.tolist(),
        "means": mixture.means.astype(np.float64).tolist()}))


def read_mixture(spark: SparkSession, path: str) -> BernoulliMixture:
    """The mixture write_mixture saved at `path`; raises VocabularyError when it is not
    a sound one."""
    data = json.loads(storage.read_text(spark, path))
    mixture = BernoulliMixture(np.asarray(data["weights"]), np.asarray(data["means"]))
    problems = mixture.problems()
    if problems:
        raise VocabularyError(f"{path} is not a usable Bernoulli mixture: {problems[0]}; run "
                              "again into a new --output")
    return mixture

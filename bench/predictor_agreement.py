"""Agreement and latency of the Spark-free Predictor against a finished Spark run.

    python bench/predictor_agreement.py --run RUN_DIR [--model RUN_DIR/model.npz] [--split Test]

Reads the run's features/ Parquet with pyarrow (no Spark), predicts every image of the
split from its file bytes with bovw.Predictor, and prints the agreement with Spark's
`prediction` column, the largest probability difference, and the per-image latency
(Predictor.predict on bytes already in memory: decode, ORB, words, PCA, softmax), as
wall-clock time and as process CPU time (the latter is robust to a busy machine; run with
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 so that BLAS threads do not spin on tiny products).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from bovw.predict.predictor import Predictor


def spark_rows(run_dir: Path, split: str) -> list[tuple[str, str, np.ndarray]]:
    """(local path, Spark prediction, Spark probability vector) of every row of `split`."""
    table = pq.read_table(run_dir / "features", columns=["path", "split", "prediction",
                                                         "probability"])
    rows = []
    for path, row_split, prediction, probability in zip(
            *(table.column(name).to_pylist() for name in ("path", "split", "prediction",
                                                           "probability")), strict=True):
        if row_split == split:
            # Spark ML vectors are stored as a struct; dense ones carry their values.
            rows.append((path.removeprefix("file:"), prediction,
                         np.asarray(probability["values"], dtype=np.float64)))
    return sorted(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--model", type=Path, help="default RUN/model.npz")
    parser.add_argument("--split", default="Test")
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()

    started = time.perf_counter()
    predictor = Predictor.load(args.model or args.run / "model.npz")
    load_ms = 1000 * (time.perf_counter() - started)
    rows = spark_rows(args.run, args.split)
    photos = [Path(path).read_bytes() for path, _label, _probability in rows]
    for data in photos[:args.warmup]:
        predictor.predict(data)

    agree, max_difference, latencies, cpu_times, disagreements = 0, 0.0, [], [], []
    for (path, spark_label, spark_probability), data in zip(rows, photos, strict=True):
        started, cpu_started = time.perf_counter(), time.process_time()
        prediction = predictor.predict(data)
        latencies.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
        probabilities = predictor.probabilities(data)
        max_difference = max(max_difference,
                             float(np.abs(probabilities - spark_probability).max()))
        if prediction.label == spark_label:
            agree += 1
        else:
            disagreements.append(path)
    latencies_ms = sorted(1000 * seconds for seconds in latencies)
    cpu_ms = sorted(1000 * seconds for seconds in cpu_times)
    print(json.dumps({
        "images": len(rows),
        "agreement": agree / len(rows),
        "disagreements": disagreements[:10],
        "max_probability_difference": max_difference,
        "latency_ms": {
            "median": round(statistics.median(latencies_ms), 3),
            "p95": round(latencies_ms[int(0.95 * (len(latencies_ms) - 1))], 3),
            "max": round(latencies_ms[-1], 3),
        },
        # CPU time of the process per image: what the photo costs on an idle core.
        "cpu_ms": {"median": round(statistics.median(cpu_ms), 3),
                   "p95": round(cpu_ms[int(0.95 * (len(cpu_ms) - 1))], 3)},
        "load_ms": round(load_ms, 1),
        "model_bytes": (args.model or args.run / "model.npz").stat().st_size,
    }, indent=2))


if __name__ == "__main__":
    main()

"""Do different master URLs give the same results on a dataset big enough to be split?

Runs `bovw run` once per master URL (each in its own process) on the same dataset and
seed, then compares what each run produced: vocabulary centers, PCA matrix, classifier
coefficients (largest absolute difference) and metrics.json (equal or not).

    python bench/master_determinism.py --input /tmp/bovw-scale/data-10000 \
        --workdir /tmp/bovw-determinism --masters 'local[1]' 'local[2]'

The tests check exact equality on a few dozen images; here every Parquet read is split in
several partitions, and the sums inside Spark ML's PCA and logistic regression
(treeAggregate) then depend on how the rows are split and in which order tasks finish.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def run(input_path: str, output: Path, master: str, k: int, pca: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bovw.cli", "run", "--input", input_path, "--output",
         str(output), "--master", master, "--k", str(k), "--pca-components", str(pca),
         "--set", "spark.conf.spark.ui.enabled=false", "--set", "spark.driver_memory=3g"],
        check=True, env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )
    return time.perf_counter() - started


def models(output: Path) -> dict[str, np.ndarray]:
    from pyspark.ml.classification import LogisticRegressionModel
    from pyspark.ml.clustering import KMeansModel
    from pyspark.ml.feature import PCAModel

    classifier = LogisticRegressionModel.load(str(output / "models" / "classifier"))
    return {
        "vocabulary": np.array(KMeansModel.load(str(output / "models" / "vocabulary"))
                               .clusterCenters()),
        "pca": PCAModel.load(str(output / "models" / "pca")).pc.toArray(),
        "coefficients": classifier.coefficientMatrix.toArray(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--workdir", default="/tmp/bovw-determinism")
    parser.add_argument("--masters", nargs="+", default=["local[1]", "local[2]"])
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--pca", type=int, default=50)
    args = parser.parse_args()

    workdir = Path(args.workdir) / time.strftime("%Y%m%d-%H%M%S")
    outputs = {}
    for index, master in enumerate(args.masters):
        outputs[master] = workdir / f"run-{index}"
        seconds = run(args.input, outputs[master], master, args.k, args.pca)
        print(f"{master}: {seconds:.0f} s", flush=True)

    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[1]")
             .config("spark.ui.enabled", "false").getOrCreate())
    reference_master, *others = args.masters
    reference = models(outputs[reference_master])
    reference_metrics = json.loads((outputs[reference_master] / "metrics.json").read_text())
    report = {}
    for master in others:
        compared = models(outputs[master])
        metrics = json.loads((outputs[master] / "metrics.json").read_text())
        report[f"{reference_master} vs {master}"] = {
            **{f"{name}_max_abs_difference": float(np.max(np.abs(reference[name] - value)))
               for name, value in compared.items()},
            "metrics_equal": metrics == reference_metrics,
            "metrics_differing": sorted(key for key in metrics
                                        if metrics[key] != reference_metrics.get(key)),
        }
    spark.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""The Krylov pass's product X^T (X B) with the dense side whole or in column chunks.

    python -m bench.sparse_products [--rows 19000] [--columns 21032] [--width 120]
        [--per-row 740] [--workers 2]

X is a random CSR matrix shaped like one Krylov pass partition of fruits360-dev x10 at 3
pyramid levels (116k Training rows on 6 partitions: 19,000 rows, 21,032 columns, ~740
non-zeros a row), B a 21,032 x 120 Gaussian block. `--workers` processes run the same
products at once, as the Python workers of local[2] do, since they share the CPU cache.
Prints, per process, the best of two times for each chunk width (120 = whole) and whether
the product equals the whole one bit for bit (bovw.pipeline.sparse_products.sparse_times_dense).
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

import numpy as np
from scipy import sparse

from bovw.pipeline import sparse_products


def _times(args: argparse.Namespace, worker: int) -> str:
    rng = np.random.default_rng(worker)
    indices = np.sort(rng.integers(0, args.columns, (args.rows, args.per_row)), axis=1)
    matrix = sparse.csr_matrix(
        (rng.random(args.rows * args.per_row), indices.ravel().astype(np.int32),
         np.arange(0, args.rows * args.per_row + 1, args.per_row)),
        shape=(args.rows, args.columns))
    matrix.sum_duplicates()
    block = rng.standard_normal((args.columns, args.width))
    whole = matrix.T @ (matrix @ block)
    results = []
    for columns in (args.width, 48, 32, 24, 16, 8):
        # Chunks are sized on the taller side, 21,032 rows in both products here.
        sparse_products._DENSE_CHUNK_BYTES = columns * max(args.rows, args.columns) * 8
        best = float("inf")
        for _ in range(2):
            started = time.perf_counter()
            product = sparse_products.sparse_times_dense(
                matrix.T, sparse_products.sparse_times_dense(matrix, block))
            best = min(best, time.perf_counter() - started)
        same = "" if np.array_equal(product, whole) else " (differs!)"
        results.append(f"{columns} columns: {best:.2f} s{same}")
    return f"worker {worker}: " + ", ".join(results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=19_000)
    parser.add_argument("--columns", type=int, default=21_032)
    parser.add_argument("--width", type=int, default=120)
    parser.add_argument("--per-row", type=int, default=740)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    with multiprocessing.Pool(args.workers) as pool:
        for line in pool.starmap(_times, [(args, worker) for worker in range(args.workers)]):
            print(line)


if __name__ == "__main__":
    main()

"""The PCA's driver work between its Krylov passes, without Spark.

    python bench/krylov_driver.py [--columns 21032] [--components 100] [--repeat 3]
    PYTHONPATH=OTHER_CHECKOUT python bench/krylov_driver.py   # another checkout's bovw

bovw.pipeline.reduction.krylov_components with `times` answering at once (fixed Gaussian
products of the pass's shape, 21,032 x 120 at fruits360-dev's 3 pyramid levels): what is
left is what the driver computes while the task slots wait, the start block, each new
block orthonormalised against the ones before, and Rayleigh-Ritz. Prints the CPU and wall
seconds of each repeat (on the BLAS threads the pipeline gives them) and the module
timed.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from bovw.pipeline import reduction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, default=21032)
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    width = args.components + reduction.OVERSAMPLING
    rng = np.random.default_rng(0)
    products = [rng.standard_normal((args.columns, width))
                for _ in range(reduction.KRYLOV_PASSES)]
    print(f"timing {reduction.__file__}")
    # The same products in every repeat: one per pass.
    calls = itertools.cycle(products)

    def times(block: np.ndarray) -> tuple[np.ndarray, float]:
        return next(calls)[:, :block.shape[1]], 1.0

    for repeat in range(args.repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        reduction.krylov_components(times, args.components, args.columns, seed=42)
        print(f"repeat {repeat + 1}: {time.process_time() - cpu:.2f} s CPU, "
              f"{time.perf_counter() - wall:.2f} s wall")


if __name__ == "__main__":
    main()

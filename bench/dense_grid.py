"""A dense grid's ORB descriptors by bovw.image.dense_orb and by OpenCV's ORB.compute.

    python -m bench.dense_grid INPUT [--every 3] [--repeat 3]

Decodes every `--every`-th JPEG under INPUT into grey images in memory (decode_grey, as
the descriptors stage does), checks that dense_orb.grid_descriptors gives ORB.compute's
bytes and points on every one of them, then, --repeat rounds in turn, times per image:
grid_descriptors, ORB.compute on the same grid, and bovw.image.orb.extract_descriptors
(decode, grid, tone block) with and without dense_orb. Default settings; one process,
one thread: what one Python worker of the descriptors stage does per image.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from bovw.config import Config
from bovw.image import orb
from bovw.image.decode import decode_grey
from bovw.image.dense_orb import grid_descriptors


def _per_image_us(work: Callable[[object], object], items: Sequence[object]) -> float:
    started = time.perf_counter()
    for item in items:
        work(item)
    return (time.perf_counter() - started) * 1e6 / len(items)


@contextmanager
def _opencv_grids() -> Iterator[None]:
    """bovw.image.orb with dense_orb switched off: OpenCV describes every grid."""
    fast = orb.grid_descriptors
    orb.grid_descriptors = lambda *args: None
    try:
        yield
    finally:
        orb.grid_descriptors = fast


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input_dir", help="folder whose *.jpg files (any depth) are read")
    parser.add_argument("--every", type=int, default=3, help="read every N-th file")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, in turn")
    args = parser.parse_args(argv)
    paths = sorted(Path(args.input_dir).rglob("*.jpg"))[::args.every]
    if not paths:
        parser.error(f"no .jpg files under {args.input_dir}")
    config = Config()
    settings, tone = config.orb, config.tone
    images = [path.read_bytes() for path in paths]
    greys = [decode_grey(data, settings)[0] for data in images]
    grid_of = (settings.patch_size, settings.edge_threshold, settings.dense_step)
    opencv = cv2.ORB_create(edgeThreshold=settings.edge_threshold, patchSize=settings.patch_size)

    def orb_compute(grey: np.ndarray):
        return opencv.compute(grey, orb.dense_keypoints(grey.shape, settings))

    for grey in greys:
        described = grid_descriptors(grey, *grid_of)
        keypoints, expected = orb_compute(grey)
        if described is None or not np.array_equal(described[0], expected) or not (
                np.array_equal(described[1], cv2.KeyPoint_convert(keypoints))):
            print("grid_descriptors differs from ORB.compute", file=sys.stderr)
            return 1
    timings: dict[str, list[float]] = {
        "grid_descriptors": [], "ORB.compute": [], "extract_descriptors": [],
        "extract_descriptors, OpenCV": []}
    for _ in range(args.repeat):
        timings["grid_descriptors"].append(_per_image_us(
            lambda grey: grid_descriptors(grey, *grid_of), greys))
        timings["ORB.compute"].append(_per_image_us(orb_compute, greys))
        timings["extract_descriptors"].append(_per_image_us(
            lambda data: orb.extract_descriptors(data, settings, tone), images))
        with _opencv_grids():
            timings["extract_descriptors, OpenCV"].append(_per_image_us(
                lambda data: orb.extract_descriptors(data, settings, tone), images))
    print(f"{len(images)} JPEGs of {args.input_dir}, {args.repeat} rounds; ORB.compute's "
          "bytes and points on every grid")
    for name, values in timings.items():
        rounds = ", ".join(f"{value:.1f}" for value in values)
        print(f"  {name:30s} median {statistics.median(values):6.1f} us/image ({rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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

import sys
from collections.abc import Sequence

import cv2
import numpy as np

from bench.per_image import per_image_us, print_table, read_jpegs, switched_off
from bovw.config import Config
from bovw.image import orb
from bovw.image.decode import decode_grey
from bovw.image.dense_orb import grid_descriptors


def main(argv: Sequence[str] | None = None) -> int:
    args, images = read_jpegs(__doc__.splitlines()[0], argv)
    config = Config()
    settings, tone = config.orb, config.tone
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
        timings["grid_descriptors"].append(per_image_us(
            lambda grey: grid_descriptors(grey, *grid_of), greys))
        timings["ORB.compute"].append(per_image_us(orb_compute, greys))
        timings["extract_descriptors"].append(per_image_us(
            lambda data: orb.extract_descriptors(data, settings, tone), images))
        with switched_off(orb, "grid_descriptors"):
            timings["extract_descriptors, OpenCV"].append(per_image_us(
                lambda data: orb.extract_descriptors(data, settings, tone), images))
    print_table(args, len(images), "ORB.compute's bytes and points on every grid", timings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

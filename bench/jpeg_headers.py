"""decode_grey with its own JPEG header reader, and without it (Pillow reading every header).

    python -m bench.jpeg_headers INPUT [--every 3] [--repeat 3]

Reads every `--every`-th JPEG under INPUT into memory, then, --repeat rounds in turn,
times per image: bovw.image.decode.decode_grey as it is (bovw.image.jpeg_header reads a
plain JPEG's header), decode_grey with that reader switched off (Pillow's Image.open reads
every header, as before the reader), Pillow's Image.open alone and the reader alone.
Checks that both decode_grey give the same grey images and sizes. One process, one
thread: what one Python worker of the descriptors stage does per image before ORB.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from bovw.config import OrbSettings
from bovw.image import decode
from bovw.image.jpeg_header import plain_jpeg_frame


def _per_image_us(work: Callable[[bytes], object], images: Sequence[bytes]) -> float:
    started = time.perf_counter()
    for data in images:
        work(data)
    return (time.perf_counter() - started) * 1e6 / len(images)


@contextmanager
def _pillow_headers() -> Iterator[None]:
    """decode_grey with its header reader switched off: Pillow reads every header."""
    reader = decode.plain_jpeg_frame
    decode.plain_jpeg_frame = lambda data: None
    try:
        yield
    finally:
        decode.plain_jpeg_frame = reader


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input_dir", help="folder whose *.jpg files (any depth) are read")
    parser.add_argument("--every", type=int, default=3, help="read every N-th file")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, in turn")
    args = parser.parse_args(argv)
    paths = sorted(Path(args.input_dir).rglob("*.jpg"))[::args.every]
    if not paths:
        parser.error(f"no .jpg files under {args.input_dir}")
    images = [path.read_bytes() for path in paths]
    settings = OrbSettings()
    with_reader = [decode.decode_grey(data, settings) for data in images]
    with _pillow_headers():
        without = [decode.decode_grey(data, settings) for data in images]
    if any(a[1] != b[1] or not (a[0] == b[0]).all()
           for a, b in zip(with_reader, without, strict=True)):
        print("decode_grey differs with and without the header reader", file=sys.stderr)
        return 1
    timings: dict[str, list[float]] = {"decode_grey": [], "decode_grey, Pillow's header": [],
                                       "Image.open": [], "plain_jpeg_frame": []}
    for _ in range(args.repeat):
        timings["decode_grey"].append(_per_image_us(
            lambda data: decode.decode_grey(data, settings), images))
        with _pillow_headers():
            timings["decode_grey, Pillow's header"].append(_per_image_us(
                lambda data: decode.decode_grey(data, settings), images))
        timings["Image.open"].append(_per_image_us(
            lambda data: Image.open(io.BytesIO(data)), images))
        timings["plain_jpeg_frame"].append(_per_image_us(plain_jpeg_frame, images))
    print(f"{len(images)} JPEGs of {args.input_dir}, {args.repeat} rounds; the same grey "
          "images with and without the header reader")
    for name, values in timings.items():
        rounds = ", ".join(f"{value:.1f}" for value in values)
        print(f"  {name:30s} median {statistics.median(values):6.1f} us/image ({rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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

import io
import sys
from collections.abc import Sequence

from PIL import Image

from bench.per_image import per_image_us, print_table, read_jpegs, switched_off
from bovw.config import OrbSettings
from bovw.image import decode
from bovw.image.jpeg_header import plain_jpeg_frame


def main(argv: Sequence[str] | None = None) -> int:
    args, images = read_jpegs(__doc__.splitlines()[0], argv)
    settings = OrbSettings()
    with_reader = [decode.decode_grey(data, settings) for data in images]
    with switched_off(decode, "plain_jpeg_frame"):
        without = [decode.decode_grey(data, settings) for data in images]
    if any(a[1] != b[1] or not (a[0] == b[0]).all()
           for a, b in zip(with_reader, without, strict=True)):
        print("decode_grey differs with and without the header reader", file=sys.stderr)
        return 1
    timings: dict[str, list[float]] = {"decode_grey": [], "decode_grey, Pillow's header": [],
                                       "Image.open": [], "plain_jpeg_frame": []}
    for _ in range(args.repeat):
        timings["decode_grey"].append(per_image_us(
            lambda data: decode.decode_grey(data, settings), images))
        with switched_off(decode, "plain_jpeg_frame"):
            timings["decode_grey, Pillow's header"].append(per_image_us(
                lambda data: decode.decode_grey(data, settings), images))
        timings["Image.open"].append(per_image_us(
            lambda data: Image.open(io.BytesIO(data)), images))
        timings["plain_jpeg_frame"].append(per_image_us(plain_jpeg_frame, images))
    print_table(args, len(images), "the same grey images with and without the header reader",
                timings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the per-image bench scripts (jpeg_headers.py, dense_grid.py) share: their command
line (INPUT, --every, --repeat), the JPEGs they read, the timing of one function over
them, the fast path they switch off, and the table they print."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

__all__ = ["per_image_us", "print_table", "read_jpegs", "switched_off"]


def read_jpegs(description: str, argv: Sequence[str] | None
               ) -> tuple[argparse.Namespace, list[bytes]]:
    """Parse INPUT [--every N] [--repeat R] and read every N-th *.jpg under INPUT (any
    depth, sorted by path) into memory; exits with a usage error when there is none."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("input_dir", help="folder whose *.jpg files (any depth) are read")
    parser.add_argument("--every", type=int, default=3, help="read every N-th file")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, in turn")
    args = parser.parse_args(argv)
    paths = sorted(Path(args.input_dir).rglob("*.jpg"))[::args.every]
    if not paths:
        parser.error(f"no .jpg files under {args.input_dir}")
    return args, [path.read_bytes() for path in paths]


def per_image_us(work: Callable[[object], object], items: Sequence[object]) -> float:
    """Wall microseconds per item of `work` over `items`, in one pass."""
    started = time.perf_counter()
    for item in items:
        work(item)
    return (time.perf_counter() - started) * 1e6 / len(items)


def print_table(args: argparse.Namespace, count: int, heading: str,
                timings: dict[str, list[float]]) -> None:
    """The heading line, then each timing's median and its rounds, us per image."""
    print(f"{count} JPEGs of {args.input_dir}, {args.repeat} rounds; {heading}")
    for name, values in timings.items():
        rounds = ", ".join(f"{value:.1f}" for value in values)
        print(f"  {name:30s} median {statistics.median(values):6.1f} us/image ({rounds})")


@contextmanager
def switched_off(module: ModuleType, name: str) -> Iterator[None]:
    """`module.name`, a fast path that may answer None, made to answer None (so that its
    caller takes its own way), and put back on leaving."""
    fast = getattr(module, name)
    setattr(module, name, lambda *args: None)
    try:
        yield
    finally:
        setattr(module, name, fast)

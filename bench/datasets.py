"""Benchmark inputs made from a Fruits-360 folder without copying image bytes.

`build_copies` gives an N-times larger set (every image N times, as hard links under new
names: `Training/<Class>/copy3_<name>.jpg`) for throughput; `build_subset` gives a seeded
sample of at most N images (for the naive pipeline, which cannot finish on the full set).
Both write into a work folder outside the git tree, mark a finished build with a
`.complete` file describing it, and reuse a finished build with the same description.
Hard links need the work folder on the same filesystem as the source; otherwise symbolic
links are made instead, and the caller is told.

    python -m bench.datasets ../shared/data/fruits360-dev --copies 10
    python -m bench.datasets ../shared/data/fruits360-dev --max-images 300
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORKDIR = Path("/tmp/bovw-bench")
SPLITS = ("Training", "Test")
MARKER = ".complete"


class DatasetError(ValueError):
    """A benchmark input that cannot be built; the message says why and what to do."""


def source_images(source: Path) -> list[Path]:
    """Sorted paths, relative to `source`, of every file in <source>/<split>/<Class>/."""
    files = []
    for split in SPLITS:
        split_dir = source / split
        if not split_dir.is_dir():
            raise DatasetError(f"{split_dir} not found: the source must hold Training/<Class>/ "
                               "and Test/<Class>/ folders")
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            files += [path.relative_to(source) for path in sorted(class_dir.iterdir())
                      if path.is_file() and not path.name.startswith(".")]
    return files


def choose_subset(files: Sequence[Path], max_images: int | None, sample_classes: int | None,
                  seed: int) -> list[Path]:
    """A seeded, sorted sample of `files` (split/Class/name paths): first `sample_classes`
    classes (seeded choice among the sorted class names), then `max_images` files at most."""
    chosen = list(files)
    if sample_classes is not None:
        classes = sorted({path.parts[1] for path in chosen})
        kept = set(random.Random(seed).sample(classes, min(sample_classes, len(classes))))
        chosen = [path for path in chosen if path.parts[1] in kept]
    if max_images is not None and max_images < len(chosen):
        chosen = random.Random(seed).sample(chosen, max_images)
    return sorted(chosen)


def check_outside_repo(target: Path) -> None:
    resolved = target.resolve()
    if resolved == REPO_ROOT or REPO_ROOT in resolved.parents:
        raise DatasetError(f"{target} is inside the git tree {REPO_ROOT}; "
                           f"give a work folder outside it (default {DEFAULT_WORKDIR})")


def _link_all(pairs: Sequence[tuple[Path, Path]], warn: Callable[[str], None]) -> str:
    """Hard-link every (source, link) pair, or symlink all of them if hard links fail."""
    kind = "hard"
    for index, (source, link) in enumerate(pairs):
        link.parent.mkdir(parents=True, exist_ok=True)
        if kind == "hard":
            try:
                os.link(source, link)
                continue
            except OSError as error:
                if index:  # some hard links worked: this is not a filesystem limitation
                    raise
                warn(f"hard links failed ({error.strerror}); making symbolic links instead")
                kind = "symbolic"
        os.symlink(source.resolve(), link)
    return kind


def _build(target: Path, description: dict, pairs: Callable[[], list[tuple[Path, Path]]],
           warn: Callable[[str], None]) -> Path:
    check_outside_repo(target)
    marker = target / MARKER
    if marker.is_file():
        recorded = json.loads(marker.read_text(encoding="utf-8"))
        if {key: recorded.get(key) for key in description} == description:
            return target
        warn(f"{target} was built from other settings; rebuilding it")
    if target.exists():
        shutil.rmtree(target)  # an unfinished or different build: start again
    todo = pairs()
    links = _link_all(todo, warn)
    marker.write_text(json.dumps({**description, "files": len(todo), "links": links}, indent=2),
                      encoding="utf-8")
    return target


def build_copies(source: Path, workdir: Path = DEFAULT_WORKDIR, copies: int = 10,
                 warn: Callable[[str], None] | None = None) -> Path:
    """<workdir>/<source name>-x<copies>: every image of `source` `copies` times, as links
    named copy<i>_<name> in the same split and class folder. Returns that folder.

    An existing complete build of the same source and count is reused as it is.
    """
    if copies < 1:
        raise DatasetError(f"copies must be >= 1 (got {copies})")
    source = Path(source).resolve()
    warn = warn or _stderr
    target = Path(workdir) / f"{source.name}-x{copies}"
    files = source_images(source)

    def pairs() -> list[tuple[Path, Path]]:
        return [(source / path, target / path.parent / f"copy{copy}_{path.name}")
                for path in files for copy in range(copies)]

    return _build(target, {"source": str(source), "copies": copies, "source_files": len(files)},
                  pairs, warn)


def build_subset(source: Path, workdir: Path = DEFAULT_WORKDIR, max_images: int | None = None,
                 sample_classes: int | None = None, seed: int = 0,
                 warn: Callable[[str], None] | None = None) -> Path:
    """<workdir>/<source name>-subset-...: links to a seeded sample of `source` (see
    choose_subset), under the same relative paths. Returns that folder."""
    if max_images is not None and max_images < 1:
        raise DatasetError(f"max_images must be >= 1 (got {max_images})")
    if sample_classes is not None and sample_classes < 1:
        raise DatasetError(f"sample_classes must be >= 1 (got {sample_classes})")
    source = Path(source).resolve()
    warn = warn or _stderr
    name = (f"{source.name}-sample{max_images or 'all'}-classes{sample_classes or 'all'}"
            f"-seed{seed}")
    target = Path(workdir) / name
    chosen = choose_subset(source_images(source), max_images, sample_classes, seed)
    description = {"source": str(source), "max_images": max_images,
                   "sample_classes": sample_classes, "seed": seed}
    return _build(target, description,
                  lambda: [(source / path, target / path) for path in chosen], warn)


def _stderr(message: str) -> None:
    print(f"bench.datasets: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a benchmark input from a Fruits-360 "
                                     "folder (hard links, reused when already complete).")
    parser.add_argument("source")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--copies", type=int, help="N copies of every image")
    parser.add_argument("--max-images", type=int, help="a seeded sample of at most N images")
    parser.add_argument("--sample-classes", type=int, help="keep N seeded-chosen classes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.copies is not None:
            built = build_copies(Path(args.source), args.workdir, args.copies)
        else:
            built = build_subset(Path(args.source), args.workdir, args.max_images,
                                 args.sample_classes, args.seed)
    except (DatasetError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(built)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The descriptors Parquet written with each Parquet codec, and read back.

    python -m bench.descriptor_codecs INPUT [--codecs uncompressed,snappy] [--repeat 2]
        [--workdir /tmp/bovw-bench] [--config FILE] [--k K] [--set section.key=value]

Each run is a Python process of its own with a fresh Spark session, as `bovw run` is: it
lists INPUT, describes every image (bovw.pipeline.descriptors.describe_images) and writes
the descriptors Parquet with the codec (the descriptors stage without its statistics),
then reads the descriptors column back into the Python workers through Arrow, as the
histograms stage does. The codecs run in turn, --repeat rounds, so that a slow minute of
a shared machine falls on both. Prints every run (seconds and bytes), then per codec the
median times and their ratio to the first codec's, pair by pair.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.config_args import add_config_arguments, config_arguments, config_from_args


def _one(args: argparse.Namespace) -> dict:
    import pyarrow as pa
    import pyarrow.compute as pc

    from bovw.columns import DESCRIPTORS
    from bovw.pipeline.descriptors import describe_images
    from bovw.pipeline.ingest import labelled_images
    from bovw.pipeline.inputs import is_local_path
    from bovw.spark import storage
    from bovw.spark.session import build_session

    config = config_from_args(args)
    spark = build_session(config)
    started = time.perf_counter()
    files = labelled_images(spark, args.input, config.ingest, config.seed, log=lambda _: None)
    described = describe_images(files, config.orb, config.ingest.max_file_bytes, config.colour,
                                config.vocabulary.sample_per_image, config.seed, config.tone,
                                read_local=is_local_path(args.input))
    storage.write_parquet(spark, described, args.out, compression=args.codec)
    written = time.perf_counter() - started

    def byte_counts(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            total = pc.sum(pc.binary_length(batch.column(0))).as_py() or 0
            yield pa.RecordBatch.from_pydict({"bytes": pa.array([total], pa.int64())})

    started = time.perf_counter()
    read_bytes = (storage.read_parquet(spark, args.out).select(DESCRIPTORS)
                  .mapInArrow(byte_counts, "bytes long").groupBy().sum().first()[0])
    read = time.perf_counter() - started
    files_bytes = sum(path.stat().st_size for path in Path(args.out).glob("*.parquet"))
    # Before the next run starts: the JVM's exit work never overlaps another codec's time.
    spark.stop()
    return {"codec": args.codec, "write_s": round(written, 2), "read_s": round(read, 2),
            "parquet_bytes": files_bytes, "descriptor_bytes": int(read_bytes or 0)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", help="folder holding Training/<Class>/ and Test/<Class>/")
    parser.add_argument("--codecs", default="uncompressed,snappy",
                        help="Spark Parquet codec names, comma-separated (first: the base)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/bovw-bench", help="a local folder")
    add_config_arguments(parser)
    parser.add_argument("--codec", help=argparse.SUPPRESS)  # one run, in a child process
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.codec:
        print(json.dumps(_one(args)))
        return 0
    codecs = [codec.strip() for codec in args.codecs.split(",") if codec.strip()]
    runs: dict[str, list[dict]] = {codec: [] for codec in codecs}
    for _ in range(args.repeat):
        for codec in codecs:
            out = str(Path(args.workdir) / "codecs" / codec)
            child = subprocess.run(
                [sys.executable, "-m", "bench.descriptor_codecs", args.input,
                 *config_arguments(args), "--codec", codec,
                 "--out", out], capture_output=True, text=True)
            if child.returncode:
                sys.exit(f"the {codec} run failed:\n{child.stderr[-4000:]}")
            result = json.loads(child.stdout.strip().splitlines()[-1])
            runs[codec].append(result)
            print(json.dumps(result), flush=True)
    base = runs[codecs[0]]
    if len({r["descriptor_bytes"] for results in runs.values() for r in results}) != 1:
        sys.exit("the runs read back different descriptor bytes: not the same data")
    for codec in codecs:
        medians = {key: statistics.median(r[key] for r in runs[codec])
                   for key in ("write_s", "read_s")}
        line = [f"{codec}: write median {medians['write_s']:.2f} s",
                f"read median {medians['read_s']:.2f} s",
                f"{runs[codec][0]['parquet_bytes'] / 1e6:.0f} MB"]
        if codec != codecs[0]:
            for key in ("write_s", "read_s"):
                ratios = [r[key] / b[key] for r, b in zip(runs[codec], base, strict=True)]
                line.append(f"{key[:-2]} / {codecs[0]} {statistics.median(ratios):.2f}x "
                            f"({min(ratios):.2f}-{max(ratios):.2f})")
        print(", ".join(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())

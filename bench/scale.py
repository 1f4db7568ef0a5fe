"""How the whole pipeline scales with the number of images, and how much memory the driver uses.

Builds a Fruits-360-like dataset of N small images (a pool of generated images, hard-linked
under N distinct names: building 100,000 files takes seconds and little disk), runs the
pipeline in Spark local mode in this process, and reports wall time per stage, the CPU time
of the driver JVM and its Python workers (steadier than wall time on a shared machine), the
peak resident memory of the driver JVM (VmHWM of /proc/<pid>/status; in local mode that JVM is
also the executor) and of this Python driver process (ru_maxrss).

    python bench/scale.py --images 10000 --workdir /tmp/bovw-scale
    python bench/scale.py --images 100000 --workdir /tmp/bovw-scale

Results are printed and written to <workdir>/scale-<N>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import time
from pathlib import Path

from bovw.config import load_config
from bovw.image.synthetic import CLASS_NAMES, generate_dataset
from bovw.pipeline.run import run_pipeline
from bovw.spark.session import build_session


def build_dataset(workdir: Path, images: int, classes: int, pool_per_class: int) -> Path:
    """`images` files in Training/<Class>/ and Test/<Class>/, hard links into a generated pool.

    Returns the dataset root; an existing complete dataset of the same size is reused.
    """
    root = workdir / f"data-{images}"
    done = root / ".complete"
    if done.exists():
        return root
    pool = workdir / f"pool-{classes}x{pool_per_class}"
    if not (pool / ".complete").exists():
        shutil.rmtree(pool, ignore_errors=True)
        generate_dataset(pool, classes=classes, train_per_class=pool_per_class,
                         test_per_class=max(1, pool_per_class // 3), seed=0)
        (pool / ".complete").touch()
    shutil.rmtree(root, ignore_errors=True)
    names = list(CLASS_NAMES[:classes])
    sources = {(split, name): sorted((pool / split / name).iterdir())
               for split in ("Training", "Test") for name in names}
    for index in range(images):
        name = names[index % classes]
        n = index // classes
        split = "Test" if (n % 4) == 3 else "Training"
        pooled = sources[(split, name)]
        folder = root / split / name
        folder.mkdir(parents=True, exist_ok=True)
        os.link(pooled[n % len(pooled)], folder / f"{n}_100.jpg")
    done.touch()
    return root


def peak_rss_kib(pid: int) -> int:
    """VmHWM (peak resident set size, KiB) of a live process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _descendants(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children.extend(int(child) for child in text)
    return children + [grandchild for child in children for grandchild in _descendants(child)]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and every live descendant, including the
    children they already reaped: for the driver JVM, its Python workers' time too."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for process in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, required=True)
    parser.add_argument("--workdir", default="/tmp/bovw-scale")
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--pool-per-class", type=int, default=150)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--pca", type=int, default=50)
    args = parser.parse_args()

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = build_dataset(workdir, args.images, args.classes, args.pool_per_class)
    build_seconds = time.perf_counter() - started

    config = load_config(None, {
        "spark.master": args.master, "spark.driver_memory": args.driver_memory,
        "spark.shuffle_partitions": 8, "vocabulary.k": args.k, "pca.components": args.pca,
        "spark.conf.spark.ui.enabled": "false",
    })
    spark = build_session(config, java_home=os.environ.get("JAVA_HOME"))
    jvm_pid = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
    output = workdir / f"run-{args.images}-{time.strftime('%Y%m%d-%H%M%S')}"
    started, cpu_before = time.perf_counter(), cpu_seconds(jvm_pid)
    result = run_pipeline(spark, config, str(data), str(output))
    wall = time.perf_counter() - started
    cpu = cpu_seconds(jvm_pid) - cpu_before
    report = {
        "images": args.images,
        "master": args.master,
        "driver_memory": args.driver_memory,
        "k": args.k,
        "accepted": result.summary.counts.accepted,
        "wall_seconds": round(wall, 1),
        "seconds_per_1000_images": round(1000 * wall / args.images, 2),
        "cpu_seconds": round(cpu, 1),
        "cpu_seconds_per_1000_images": round(1000 * cpu / args.images, 2),
        "load_average_1min_at_end": os.getloadavg()[0],
        "stage_seconds": dict(result.summary.timings),
        "driver_jvm_peak_rss_mib": round(peak_rss_kib(jvm_pid) / 1024, 1),
        "driver_python_peak_rss_mib": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "dataset_build_seconds": round(build_seconds, 1),
        "accuracy": result.metrics["accuracy"],
        "output": str(output),
    }
    spark.stop()
    text = json.dumps(report, indent=2)
    print(text)
    (workdir / f"scale-{args.images}.json").write_text(text + "\n")


if __name__ == "__main__":
    main()

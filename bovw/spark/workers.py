"""Spark's Python workers: the Python they run (worker_python), started ahead of the first
Python stage while the driver is busy (warm_python_workers), and an import they fail told
in one line (worker_imports_named).

In local mode the first task of a Python job on each core pays for starting pyspark's
worker daemon, forking a worker, importing pyarrow, pandas and OpenCV there and setting up
the JVM's Arrow path: on fruits360-dev (2 cores) the descriptors stage's first tasks took
3.4 s where the same tasks on the warm workers after them took 1.4-1.6 s. A `bovw run`
spends the seconds before that stage on its driver (the output's lock, run.json, the
listing of the input), with the task slots idle: `warm_python_workers` fills them with one
tiny Arrow job, one task per slot, whose workers the next Python job then reuses (Spark
keeps idle workers for a minute).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from bovw.errors import WorkerError, error_chain
from bovw.spark.progress import clear_job_group

__all__ = ["WARM_UP_GROUP", "WorkerWarmUp", "local_cores", "missing_in_workers",
           "python_while_starting", "warm_python_workers", "worker_imports_named",
           "worker_module_error", "worker_python"]

# The warm-up job's group: bovw.spark.progress shows a stage's own groups only.
WARM_UP_GROUP = "bovw-warm-up"


def local_cores(master: str) -> int | None:
    """The task threads of a local master URL (local, local[N], local[*], local[N, F]);
    None for a cluster, whose cores the session only learns from its executors."""
    if master == "local":
        return 1
    threads = re.fullmatch(r"local\[(\d+|\*)(\s*,\s*\d+)?\]", master)
    if not threads:
        return None
    return os.cpu_count() or 1 if threads.group(1) == "*" else int(threads.group(1))


def worker_python(conf: Mapping[str, str], environ: Mapping[str, str], local: bool
                  ) -> str | None:
    """The Python the session's workers are to run, for $PYSPARK_PYTHON, which pyspark reads
    as its SparkContext starts (spark-submit sets it from the configuration; a JVM that
    pyspark starts itself ignores `spark.pyspark.python`): `conf`'s spark.pyspark.python
    (which Spark documents as winning over the variable), else `environ`'s
    PYSPARK_PYTHON, else, `local`, this very interpreter: `python3` from PATH, pyspark's
    default, outside an activated virtualenv lacks OpenCV and pyarrow. None: pyspark's
    default (`python3` on each node)."""
    return (conf.get("spark.pyspark.python") or environ.get("PYSPARK_PYTHON")
            or (sys.executable if local else None))


@contextmanager
def python_while_starting(python: str | None) -> Iterator[None]:
    """$PYSPARK_PYTHON set to `python` (a worker_python answer; None: left as it is) for
    the block, in which a SparkContext starts, and put back as it was after it.

    The SparkContext keeps the value it read; left set, it outlived the session: a
    session built later in the process (a test's, a notebook's) without
    spark.pyspark.python took the earlier one's Python for its workers, where
    worker_python would give this interpreter.
    """
    if python is None:
        yield
        return
    before = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = python
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYSPARK_PYTHON", None)
        else:
            os.environ["PYSPARK_PYTHON"] = before


class WorkerWarmUp:
    """The warm-up job, running on a daemon thread of its own.

    `error` holds what stopped it, if anything did, and nothing reports it: the warm-up
    makes no result, and a worker that cannot start fails the next Python job too, which
    says so in its own words. A worker that cannot import the per-image code (a Python
    without OpenCV, say) leaves that to the descriptors stage as well, so the console
    shows its traceback once.
    """

    def __init__(self, spark, tasks: int):
        self.tasks = tasks
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(spark,),
                                        name="bovw-warm-up", daemon=True)
        self._thread.start()

    def _run(self, spark) -> None:
        context = None
        try:
            context = spark.sparkContext
            context.setJobGroup(WARM_UP_GROUP, "bovw: Python workers started ahead",
                                interruptOnCancel=True)
            (spark.range(0, self.tasks, numPartitions=self.tasks)
             .mapInArrow(_import_per_image_code, "id long").collect())
        except BaseException as error:  # noqa: BLE001 - kept for the caller, see the class doc
            self.error = error
        finally:
            # Unpinned threads (PYSPARK_PIN_THREAD=false) share JVM threads: the group must
            # not stay on one that later runs a stage's jobs.
            if context is not None:
                try:
                    clear_job_group(context)
                except Exception:  # noqa: BLE001 - a stopped context has no properties left
                    pass

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the warm-up job to end; False if it still runs after `timeout` s."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


def _import_per_image_code(batches: Iterator) -> Iterator:
    # What the descriptors UDF imports (OpenCV, numpy, bovw.image), in the worker that
    # then runs it. One that cannot is left for the descriptors stage to report.
    try:
        import bovw.image.orb  # noqa: F401
    except ImportError:
        pass
    yield from batches


def warm_python_workers(spark) -> WorkerWarmUp | None:
    """Start, in the background, one tiny Python (Arrow) job of one task per task slot of
    a local-mode `spark`; returns its WorkerWarmUp, or None on a cluster, whose executors
    come and go (and are not even there yet under dynamic allocation)."""
    slots = local_cores(spark.sparkContext.master)
    if slots is None:
        return None
    return WorkerWarmUp(spark, slots)


def worker_module_error(module: str) -> str:
    """The one line for Spark's Python workers failing to import `module`."""
    return (f"the Python that Spark's workers run cannot import {module} (a module bovw "
            "needs in every worker); fix: install bovw and its dependencies for that Python "
            "on every node, or name a Python that has them with --set "
            "spark.conf.spark.pyspark.python=PATH (it is spark.pyspark.python, else "
            "$PYSPARK_PYTHON, else python3 on each node)")


def missing_in_workers(error: BaseException) -> str | None:
    """The module a Python worker could not import, when `error` (or an error it was
    raised from or while handling) is Spark's report of that worker's
    ModuleNotFoundError (a PythonException): the driver, which imported it, has it, so
    the workers run another Python. None otherwise."""
    for link in error_chain(error):
        if type(link).__name__ == "PythonException":
            found = re.search(r"ModuleNotFoundError: No module named '([\w.]+)'", str(link))
            if found:
                return found.group(1)
    return None


@contextmanager
def worker_imports_named() -> Iterator[None]:
    """Inside the block, a Python worker's failed import (missing_in_workers) is raised
    as a WorkerError naming the module and the fix, from Spark's PythonException (its
    worker traceback and Java stack, tens of lines); every other error as it is, a
    WorkerError from a block nested inside this one included."""
    try:
        yield
    except WorkerError:
        raise
    except Exception as error:
        missing = missing_in_workers(error)
        if missing is None:
            raise
        raise WorkerError(worker_module_error(missing)) from error

"""Progress of a run's stages on the console, read from Spark's status tracker.

While a stage runs, its Spark jobs carry a job group of their own, and a daemon thread polls
`SparkContext.statusTracker()` for the tasks of that group's jobs: nothing is counted on the
driver, and the stage's work does not know it is watched. On a terminal the stage's line is
rewritten in place (tasks done / tasks so far, Spark jobs started, elapsed time); KMeans and
logistic regression run one Spark job per iteration, so there the job count moves with the
iterations. Elsewhere (CI, a log file) the stage's line is printed once and a plain line
follows every `plain_every` seconds, so that a long stage still shows it is moving.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

__all__ = ["JobTally", "Snapshot", "StageProgress", "clear_job_group", "clock_text"]

_FINISHED = ("SUCCEEDED", "FAILED")
_GROUP_PROPERTIES = ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel")


def clear_job_group(context) -> None:
    """Unset what SparkContext.setJobGroup set on the calling thread (its local
    properties), so that the thread's later jobs belong to no group."""
    for key in _GROUP_PROPERTIES:
        context.setLocalProperty(key, None)


@dataclass(frozen=True)
class Snapshot:
    """Where a stage stands: Spark jobs started, tasks completed and tasks known so far."""

    jobs: int = 0
    done: int = 0
    total: int = 0

    def text(self, elapsed: float) -> str:
        jobs = f"{self.jobs} Spark job{'' if self.jobs == 1 else 's'}"
        return f"{self.done}/{self.total} tasks, {jobs}, {clock_text(elapsed)}"


def clock_text(seconds: float) -> str:
    """Elapsed time as m:ss, or h:mm:ss from an hour on."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class JobTally:
    """The task counts of the jobs of one job group, from a pyspark StatusTracker.

    A finished job is read once and remembered (the tracker forgets old jobs); its skipped
    stages, whose tasks never run, count for nothing. `ignored` jobs (those of the group
    before the stage began) are left out.
    """

    def __init__(self, tracker, group: str, ignored: set[int] | None = None):
        self.tracker, self.group = tracker, group
        self.ignored = set(ignored or ())
        self.finished: dict[int, tuple[int, int]] = {}

    def snapshot(self) -> Snapshot:
        jobs = [job for job in self.tracker.getJobIdsForGroup(self.group)
                if job not in self.ignored]
        done = total = 0
        for job in jobs:
            counts = self.finished.get(job) or self._job_counts(job)
            done, total = done + counts[0], total + counts[1]
        return Snapshot(jobs=len(jobs), done=done, total=total)

    def _job_counts(self, job: int) -> tuple[int, int]:
        info = self.tracker.getJobInfo(job)
        if info is None:
            return 0, 0
        done = total = 0
        for stage in info.stageIds:
            stage_info = self.tracker.getStageInfo(stage)
            if stage_info is not None:
                done += stage_info.numCompletedTasks
                total += stage_info.numTasks
        if info.status in _FINISHED:
            self.finished[job] = (done, done)
            return done, done
        return done, total


class StageProgress:
    """Shows each stage run inside `stage(name)`; see the module's documentation."""

    def __init__(self, context, stream: TextIO | None = None, interval: float = 0.5,
                 plain_every: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.context = context
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.interval, self.plain_every, self.clock = interval, plain_every, clock
        self._lock = threading.Lock()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Run the block as stage `name`: its line, then its progress until it ends."""
        context = self.context
        group = context.getLocalProperty("spark.jobGroup.id")
        own_group = group is None
        if own_group:
            group = f"bovw-{name}-{uuid.uuid4().hex}"
            context.setJobGroup(group, f"bovw {name}")
        tracker = context.statusTracker()
        tally = JobTally(tracker, group, set(tracker.getJobIdsForGroup(group)))
        started = self.clock()
        self._write(f"[bovw] {name}: running", end="" if self.live else "\n")
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(name, tally, started, stop),
                                   name=f"bovw-progress-{name}", daemon=True)
        watcher.start()
        outcome = "stopped"
        try:
            yield
            outcome = "finished"
        finally:
            stop.set()
            watcher.join()
            if own_group:
                clear_job_group(context)
            if self.live:
                self._draw(name, outcome, self._snapshot(tally), started)
                self._write("")

    def _watch(self, name: str, tally: JobTally, started: float, stop: threading.Event
               ) -> None:
        next_plain = started + self.plain_every
        while not stop.wait(self.interval):
            snapshot = self._snapshot(tally)
            if snapshot is None:
                return
            if self.live:
                self._draw(name, "running", snapshot, started)
            elif self.clock() >= next_plain:
                self._write(f"[bovw] {name}: {snapshot.text(self.clock() - started)}")
                next_plain += self.plain_every

    def _snapshot(self, tally: JobTally) -> Snapshot | None:
        try:
            return tally.snapshot()
        except Exception:
            # A display must never break the run it shows (the tracker is gone once the
            # session stops under a failing stage): it just stops showing.
            return None

    def _draw(self, name: str, state: str, snapshot: Snapshot | None, started: float) -> None:
        detail = f"  {snapshot.text(self.clock() - started)}" if snapshot else ""
        line = f"[bovw] {name}: {state}{detail}"
        width = shutil.get_terminal_size().columns - 1
        # Rewritten in place: back to the line's start, then clear what the last one left.
        self._write(f"\r{line[:width]}\x1b[K", end="")

    def _write(self, text: str, end: str = "\n") -> None:
        with self._lock:
            self.stream.write(text + end)
            self.stream.flush()

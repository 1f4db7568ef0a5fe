"""One bovw command at a time per output: a lease file beside the output, kept alive by a
heartbeat.

The lease of output `DIR/NAME` is the file `DIR/.NAME.bovw-lock` (JSON: host, pid, command,
start time, last heartbeat, a random token). It is created before the command touches the
output, rewritten every `HEARTBEAT_SECONDS` by a daemon thread, and deleted when the command
ends, normally or by an error. A command killed with `kill -9` (or a lost machine) cannot
delete it, so a lease is *stale*, and taken over by the next command, when
- it was written on this host and its process is gone (or the pid now belongs to a
  process started later), or
- its last heartbeat is more than `STALE_AFTER_SECONDS` old (any host: clocks are assumed
  to agree within a minute or so, as NTP keeps them).

Only the Hadoop FileSystem API and plain files are used (no flock), so the same lease works
on local disks, HDFS and s3a://. Creating the file is exclusive on local disks (a hard
link) and HDFS (a rename that refuses an existing target); on S3 (and a local filesystem
without hard links) two commands starting in the same instant could both create it, so
each reads it back after a short pause and only the one whose token is there goes on
(bovw.spark.whole_files.create_new). So does a command that took over a stale lease: a
rival taking over the same one in the same instant may delete the new lease with it.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TypeVar

from pyspark.sql import SparkSession

from bovw.errors import OutputInUseError
from bovw.spark import storage

__all__ = ["HEARTBEAT_SECONDS", "LEASE_SUFFIX", "STALE_AFTER_SECONDS", "Lease", "LeaseRecord",
           "acquire", "holding", "lease_path", "refuse_if_held", "stale_reason"]

T = TypeVar("T")

LEASE_SUFFIX = ".bovw-lock"
HEARTBEAT_SECONDS = 30.0
STALE_AFTER_SECONDS = 300.0
# How long a new lease settles before it is read back where a rival may still replace it:
# created shared, or after a takeover (see acquire), keyed by "has an atomic rename" (not an
# object store).
_SETTLE_SECONDS = {True: 0.2, False: 1.0}
_READ_ATTEMPTS = 5


@dataclass(frozen=True)
class LeaseRecord:
    """What a lease file says: who holds the output, since when, last seen when."""

    output: str
    command: str
    host: str
    pid: int
    pid_started: int | None  # the process's start time in clock ticks after boot (Linux)
    user: str
    started: float
    heartbeat: float
    token: str

    def to_bytes(self) -> bytes:
        """The record as the lease file's JSON bytes."""
        return json.dumps({"format": "bovw-lock", **asdict(self)}, indent=2).encode("utf-8")

    @classmethod
    def from_bytes(cls, content: bytes) -> LeaseRecord:
        """Raises ValueError on anything but a complete lease file."""
        data = json.loads(content.decode("utf-8"))
        if not isinstance(data, dict) or data.get("format") != "bovw-lock":
            raise ValueError("not a bovw lock file")
        data.pop("format")
        try:
            return cls(**data)
        except TypeError as error:
            raise ValueError(str(error)) from None

    def describe(self, now: float) -> str:
        """Who holds the lease, in words for a message."""
        started = datetime.fromtimestamp(self.started, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return (f"{self.command} on host {self.host}, pid {self.pid}, started {started}, "
                f"last heartbeat {max(0, round(now - self.heartbeat))} s ago")


def lease_path(spark: SparkSession, output: str) -> str:
    """`DIR/.NAME.bovw-lock` for the output `DIR/NAME`."""
    return storage.sibling(spark, output, f".{storage.base_name(spark, output)}{LEASE_SUFFIX}")


def _process_start(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19]) if fields[0] != b"Z" else -1  # field 22: start time; Z: zombie


def _process_gone(pid: int, started: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        pass
    now_started = _process_start(pid)
    if now_started == -1:
        return True  # a zombie: killed, not yet reaped
    return started is not None and now_started is not None and now_started != started


def stale_reason(record: LeaseRecord, now: float, host: str | None = None,
                 stale_after: float = STALE_AFTER_SECONDS) -> str | None:
    """Why the lease `record` no longer protects anything, or None while its holder lives."""
    if record.host == (host or socket.gethostname()) and _process_gone(record.pid,
                                                                       record.pid_started):
        return f"process {record.pid} on {record.host} is gone"
    if now - record.heartbeat > stale_after:
        return f"its last heartbeat is {round(now - record.heartbeat)} s old"
    return None


class Lease:
    """A held lease; `release()` (or leaving the `with` block) ends it."""

    def __init__(self, spark: SparkSession, path: str, record: LeaseRecord,
                 heartbeat_seconds: float):
        self.spark, self.path, self.record = spark, path, record
        self.lost_to: str | None = None
        # The heartbeat replaces the file whole (storage.replace_file) except on a
        # filesystem without Hadoop's FileContext, where it is rewritten in place and a
        # reader may catch it empty: this process's own checks wait for a rewrite to end.
        self._writing = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(heartbeat_seconds,),
                                        name=f"bovw-lease {path}", daemon=True)
        self._thread.start()

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                current = _read(self.spark, self.path)
                if current is None or current.token != self.record.token:
                    self.lost_to = current.describe(time.time()) if current else "nobody"
                    return
                self.record = LeaseRecord(**{**asdict(self.record), "heartbeat": time.time()})
                with self._writing:
                    storage.replace_file(self.spark, self.path, self.record.to_bytes())
            except Exception:  # noqa: BLE001 - a missed beat is retried; the run goes on
                continue

    def holds(self) -> bool:
        """True while the lease file still carries this lease's token."""
        if self.lost_to is not None:
            return False
        try:
            with self._writing:
                current = _read(self.spark, self.path)
        except ValueError:
            self.lost_to = f"an unreadable lock file ({self.path})"
            return False
        if current is None or current.token != self.record.token:
            self.lost_to = current.describe(time.time()) if current else "nobody"
            return False
        return True

    def release(self) -> None:
        """Stop the heartbeat and delete the lease file if it is still this lease's."""
        self._stop.set()
        self._thread.join(timeout=60)
        try:
            if self.holds():
                storage.delete(self.spark, self.path)
        except Exception:  # noqa: BLE001 - never hide the command's own error; the lease
            pass           # then goes stale with this process

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


class _EmptyLease(ValueError):
    """The lease file stayed empty through every read attempt."""


def _read(spark: SparkSession, path: str) -> LeaseRecord | None:
    """The lease at `path`, None when there is none; a file caught while being created or
    rewritten is read again. Raises ValueError when it stays unreadable (_EmptyLease when
    it stays empty)."""
    for attempt in range(_READ_ATTEMPTS):
        last = attempt == _READ_ATTEMPTS - 1
        try:
            content = storage.read_bytes(spark, path)
        except Exception:  # noqa: BLE001 - py4j's FileNotFoundException: none, or not yet
            if not storage.exists(spark, path):
                return None
            if last:
                raise
            time.sleep(0.1)
            continue
        try:
            return LeaseRecord.from_bytes(content)
        except ValueError:
            if last:
                if not content:
                    raise _EmptyLease(path) from None
                raise
            time.sleep(0.1)
    return None


_ADVICE = "wait for it to end, or choose another --output"


def _refuse(output: str, path: str, holder: str, stale_after: float,
            advice: str = _ADVICE) -> OutputInUseError:
    return OutputInUseError(
        f"output {output} is in use by another {holder}; {advice} (a lock is stale, and "
        f"taken over, once its process is gone on "
        f"the same host or its heartbeat is over {round(stale_after)} s old; if you are sure "
        f"nothing uses {output}, delete {path})")


def acquire(spark: SparkSession, output: str, command: str, *,
            heartbeat_seconds: float = HEARTBEAT_SECONDS,
            stale_after: float = STALE_AFTER_SECONDS,
            log=print, advice: str = _ADVICE) -> Lease:
    """Take the lease of `output` for `command` (e.g. "bovw run"), taking over a stale one.

    Raises OutputInUseError (one line naming the holder, then `advice`) when a live command
    holds it, and OutputError when `output` is a filesystem or bucket root.
    """
    path = lease_path(spark, output)
    now = time.time()
    stale = _stale_or_refuse(spark, output, path, now, stale_after, advice)
    took_over = stale is not None
    if took_over:
        log(f"[bovw] taking over the stale lock {stale}")
        storage.delete(spark, path)
    pid = os.getpid()
    record = LeaseRecord(output=output, command=command, host=socket.gethostname(), pid=pid,
                         pid_started=_process_start(pid), user=_user(), started=now,
                         heartbeat=now, token=uuid.uuid4().hex)
    created = storage.create_new(spark, path, record.to_bytes())
    if created is storage.Creation.SHARED or (took_over and created is not
                                              storage.Creation.EXISTED):
        # Time for a rival's create of the same instant to land over this one (shared), or
        # for a rival taking over the same stale lock to delete this one (a takeover).
        time.sleep(_SETTLE_SECONDS[storage.has_atomic_rename(spark, path)])
    try:
        winner = _read(spark, path)
    except ValueError:  # a rival's lock is still being written
        raise _refuse(output, path, "bovw command (starting at the same time)",
                      stale_after, advice) from None
    if winner is None or winner.token != record.token:
        holder = winner.describe(time.time()) if winner else "bovw command"
        raise _refuse(output, path, holder, stale_after, advice)
    return Lease(spark, path, record, heartbeat_seconds)


def holding(spark: SparkSession, folder: str, command: str, work: Callable[[], T], *,
            advice: str = _ADVICE) -> T:
    """`work()` called holding `folder`'s lease for `command`, so that no other bovw command
    replaces or resumes the folder meanwhile; called as it is when the folder cannot have
    a lease, which no bovw command then writes either (a name with a colon, which Hadoop
    cannot hold a lock for and bovw.spark.outputs refuses, or a filesystem or bucket root).

    Raises OutputInUseError (one line, then `advice`) while a live command holds it.
    """
    if ":" in folder.rstrip("/").rsplit("/", 1)[-1]:
        return work()
    try:
        lease_path(spark, folder)
    except ValueError:
        return work()
    with acquire(spark, folder, command, advice=advice):
        return work()


def refuse_if_held(spark: SparkSession, folder: str, advice: str = _ADVICE) -> None:
    """Raise OutputInUseError (as `acquire` would) while a live bovw command holds
    `folder`'s lease. Only reads: for a command that reads the folder and may have no right
    to write a lock into it (a run on S3, exported with read-only credentials)."""
    try:
        path = lease_path(spark, folder)
    except ValueError:  # a filesystem or bucket root: no bovw command holds one
        return
    _stale_or_refuse(spark, folder, path, time.time(), STALE_AFTER_SECONDS, advice)


def _stale_or_refuse(spark: SparkSession, output: str, path: str, now: float,
                     stale_after: float, advice: str) -> str | None:
    """Judge the lock at `path` (the lease of `output`): raise OutputInUseError while a live
    command holds it; else which stale lock is there to take over, and why (to follow
    "taking over the stale lock "), or None when there is none."""
    try:
        current = _read(spark, path)
    except ValueError as unreadable:
        if isinstance(unreadable, _EmptyLease):
            # A heartbeat rewriting the file in place (truncate, then write a few hundred
            # bytes: earlier versions of bovw on local disks and HDFS, today a filesystem
            # without Hadoop's FileContext) leaves it empty for good only when its command
            # is killed between the two.
            return f"{path}: it is empty (its command was stopped while renewing it)"
        # Unreadable for good, and not empty: judged by its age alone.
        age = now - (storage.modification_seconds(spark, path) or now)
        if age <= stale_after:
            raise _refuse(output, path, f"bovw command (its lock {path} is unreadable)",
                          stale_after, advice) from None
        return f"{path}: it is unreadable and {round(age)} s old"
    if current is None:
        return None
    reason = stale_reason(current, now, stale_after=stale_after)
    if reason is None:
        raise _refuse(output, path, current.describe(now), stale_after, advice)
    return f"of {current.describe(now)}: {reason}"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"

"""Ctrl-C during a Spark job, stopped cleanly: one line, the output's lock released.

pyspark's own SIGINT handler cancels the jobs on the py4j connection the main thread is
waiting on, inside that very wait: py4j fails ("reentrant call"), logs the whole failure
through the root logger (about 45 lines) and leaves the connection broken. bovw's handler
instead cancels the jobs from another thread, lets the main thread's py4j call return (a
cancelled job answers with an error), and raises KeyboardInterrupt at the first Python
line run outside py4j. bovw.cli.command then says so in one line, exit code 130. What the
driver writes to stderr from then on (a killed task's Python worker trace) is dropped
(bovw.spark.console.silence_driver).
"""

from __future__ import annotations

import builtins
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["EXIT_INTERRUPTED", "exiting", "held", "imports_held", "install"]

# The exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130

_PY4J = f"{os.sep}py4j{os.sep}"


@contextmanager
def held() -> Iterator[None]:
    """SIGINT held back (blocked) inside the block, and delivered, when one came, as the
    block ends: start Spark and `install` inside it.

    A Ctrl-C while pyspark starts the JVM stopped pyspark's wait for the JVM's connection
    file and deleted its folder: the JVM, in a session of its own, failed to write it,
    printed a Java trace and ran on with no parent, until killed. One just after the
    SparkContext started met pyspark's own handler, and its 45-line py4j failure, before
    `install` replaced it. Held, it reaches bovw's handler instead, a few seconds later.
    Threads started inside the block keep SIGINT blocked for good (a thread inherits its
    creator's mask), so they never take one meant for the main thread: one that could
    would run the handler of the moment at once, block or not. bovw.cli.main loads the
    command's modules, and with them numpy's and OpenCV's threads, inside the block too.
    Only the main thread can hold it (as it handles signals); elsewhere nothing changes.

    A process started with SIGINT ignored (a script's background job, `bovw run ... &`)
    keeps ignoring it: pyspark's SparkContext sets its handler whatever was there, and
    `install` sets bovw's; both are undone as the block ends, and a SIGINT held meanwhile
    is dropped, as the shell meant.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(
            signal, "pthread_sigmask"):
        yield
        return
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    # The mask as it is, asked without changing it: a Ctrl-C already taken but not yet
    # handled raises here, with nothing held. Blocking returns the same mask, but raises
    # such a Ctrl-C only once the mask is changed, and the block would stay for good.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        yield
    finally:
        if ignored:  # before unblocking: a pending SIGINT is discarded, not delivered
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def imports_held() -> Iterator[None]:
    """Every import the main thread makes inside the block runs `held`: a Ctrl-C while a
    module loads stops the command once the outermost import is done, from the line that
    asked for it.

    Raised inside a library's loading, it could be lost, or worse: pyspark.ml.linalg loads
    SciPy inside `except BaseException` (SciPy being optional to it), and SciPy loads part
    of NumPy through `exec` of a string, which marks the process as ended by an unhandled
    Ctrl-C. A Ctrl-C one second into `bovw run` (as `bovw.pipeline.run` loads) was then
    either swallowed, the run going on to its end with exit status 0, or said in one line
    with the process then killing itself by SIGINT (exit status -2): 3 runs in about 30.
    Main thread only, as `held`; other threads' imports are left as they are.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(
            signal, "pthread_sigmask"):
        yield
        return
    original = builtins.__import__
    main = threading.main_thread().ident

    def held_import(name: str, globals: Any = None, locals: Any = None,
                    fromlist: Any = (), level: int = 0) -> Any:
        if threading.get_ident() != main or _loaded(name, fromlist, level):
            # A function's import of a module already loaded: most of a run's 16,000
            # import statements, which holding (14 us each) would make 0.2 s of a run.
            return original(name, globals, locals, fromlist, level)
        with held():
            return original(name, globals, locals, fromlist, level)

    builtins.__import__ = held_import
    try:
        yield
    finally:
        builtins.__import__ = original


def _loaded(name: str, fromlist: Any, level: int) -> bool:
    """Whether an import statement of `name` (absolute) loads nothing: the module and
    every name it asks from it are there (`from M import *` is not known to). A name is
    looked up in the module's namespace, not with getattr, which a module's __getattr__
    (NumPy's) would answer by loading it."""
    if level != 0:
        return False
    module = sys.modules.get(name)
    if module is None:
        return False
    namespace = getattr(module, "__dict__", {})
    # "*" may load the submodules the module's __all__ names.
    return all(item != "*" and item in namespace for item in fromlist or ())


def exiting() -> None:
    """Ignore SIGINT from now on: the command has said it was interrupted and exits with
    EXIT_INTERRUPTED. As Python finalises, it puts SIGINT back to its default action
    wherever a handler of its own was set (bovw's is): a Ctrl-C then, or one more the
    handler's trip left pending, killed the process by SIGINT after its one line (exit
    status -2 instead of 130, about one run in 18 of tests/test_interrupt.py). Main thread
    only, as signal handlers are."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def install(spark: Any) -> None:
    """Handle SIGINT for the rest of the command with `spark` (a SparkSession) as above.
    Only the main thread can: elsewhere (a test's thread) Python's default stays."""
    if threading.current_thread() is not threading.main_thread():
        return
    # Here, not at the top: bovw.cli.main holds SIGINT with this module before it loads
    # anything else, and the console module loads the settings' dataclasses.
    from bovw.spark.console import silence_driver

    received = 0

    def handler(_signum: int, frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        silence_driver()
        threading.Thread(target=_cancel_jobs, args=(spark,), name="bovw-interrupt",
                         daemon=True).start()
        if received > 1 or frame is None or not _inside_py4j(frame):
            raise KeyboardInterrupt  # a second Ctrl-C does not wait
        _raise_outside_py4j(frame)

    signal.signal(signal.SIGINT, handler)


def _cancel_jobs(spark: Any) -> None:
    try:
        spark.sparkContext.cancelAllJobs()
    except Exception:  # the JVM may be gone already: nothing is left to cancel
        pass


def _inside_py4j(frame: FrameType | None) -> bool:
    while frame is not None:
        if _PY4J in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _raise_outside_py4j(frame: FrameType) -> None:
    """Trace the main thread until it runs a line outside py4j (and what py4j calls),
    and raise KeyboardInterrupt there; the trace ends with it."""
    def trace(current: FrameType, event: str, _arg: Any):
        if event in ("call", "line") and not _inside_py4j(current):
            raise KeyboardInterrupt
        return trace

    while frame is not None:
        frame.f_trace = trace
        frame.f_trace_lines = True
        frame = frame.f_back
    sys.settrace(trace)

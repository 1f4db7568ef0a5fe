"""The `bovw` command (entry point `bovw.cli:main`; the command itself is bovw.cli.command).

The command's modules load numpy, OpenCV and pyarrow, whose native libraries start threads
of their own as they load. Every module the command loads, then or later, loads with SIGINT
held (bovw.cli.interrupt.imports_held): those threads never take a Ctrl-C, which then
always reaches the main thread's handler, and a Ctrl-C while a module loads is one line,
as later, instead of an import's trace, or a Ctrl-C that a library's loading swallowed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None, environ: dict | None = None) -> int:
    """Run the `bovw` command with `argv` (sys.argv[1:] when None) in `environ` (a copy of
    os.environ when None). Returns the process exit code."""
    from bovw.cli import interrupt

    try:
        # Each import with SIGINT held, the command's own later ones too (imports_held).
        with interrupt.imports_held():
            from bovw.cli.command import main as command

            code = command(argv, environ)
    except KeyboardInterrupt:  # before the command began (it says so itself after)
        print("bovw: interrupted", file=sys.stderr)
        code = interrupt.EXIT_INTERRUPTED
    if code == interrupt.EXIT_INTERRUPTED and argv is None:
        # The process's own command (not a caller's in-process one) has said it stopped.
        interrupt.exiting()
    return code

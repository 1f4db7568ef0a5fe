"""The `bovw` command: parse arguments, build the session, call one library function.

Each command group has its module (bovw.cli.run, cloud, predict, experiments) giving its
sub-parsers (`add_commands`) and handlers (`HANDLERS`); bovw.cli.common holds what they
share. No Spark is imported until a handler runs.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from collections.abc import Sequence

from bovw.cli import cloud, experiments, predict, run
from bovw.cli.interrupt import EXIT_INTERRUPTED
from bovw.cloud.s3a import refuse_credentials_in_url
from bovw.config.log_masking import masked
from bovw.config.redaction import has_url_credentials, url_credentials_error
from bovw.errors import BovwError, ConfigError, error_chain

__all__ = ["build_parser", "main"]

COMMAND_GROUPS = (run, cloud, predict, experiments)


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose mistakes are one line like every other bovw error: argparse
    prints the command's whole usage block above them (7 lines for `bovw run`)."""

    def error(self, message: str):
        hint = ""
        if self.prog == "bovw run" and re.search(r"invalid \w+ value: '[^']*,", message):
            # Review 5: `bovw run --k 10,20`.
            hint = "; several values are a sweep: bovw sweep takes the same flags"
        self.exit(2, f"bovw: config error: {message}{hint}; fix: see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    """The `bovw` argument parser with every sub-command."""
    parser = _Parser(
        prog="bovw", description="Bag-of-visual-words image classification on Spark."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_commands(commands)
    _add_verbose(parser)
    return parser


def _add_verbose(parser: argparse.ArgumentParser, top: bool = True) -> None:
    """--verbose on `parser` and on every sub-command below it, so that it may come before
    or after the sub-command. Below the top, an absent flag leaves the value alone
    (SUPPRESS): a sub-parser's default would otherwise reset a --verbose given before it."""
    parser.add_argument("--verbose", action="store_true",
                        default=False if top else argparse.SUPPRESS,
                        help="on an error, show its full trace (Python, Java, AWS) too")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in {id(sub): sub for sub in action.choices.values()}.values():
                _add_verbose(sub, top=False)


def main(argv: Sequence[str] | None = None, environ: dict | None = None) -> int:
    """Entry point of `bovw` and of the jobs/ scripts. Returns the process exit code."""
    args = build_parser().parse_args(argv)
    environ = dict(os.environ if environ is None else environ)
    handlers = {name: handler for group in COMMAND_GROUPS
                for name, handler in group.HANDLERS.items()}
    _expand_home(args, environ.get("HOME") or os.path.expanduser("~"))
    try:
        _refuse_credentials_in_flags(args)
        return handlers[args.command](args, environ)
    except ConfigError as error:
        return _fail("config error", error, args.verbose, 2)
    except (KeyboardInterrupt, Exception) as error:
        # An error raised while a Ctrl-C unwinds is the Ctrl-C's doing: pyspark's toArrow
        # asks the JVM for its cancelled job's result in a `finally`, and that raises
        # SPARK_JOB_CANCELLED over the KeyboardInterrupt.
        if _interrupted(error):
            return _stopped(error, args.verbose, _resumes(args))
        if _output_closed(error):
            return _closed_output(_resumes(args))
        if isinstance(error, BovwError):
            return _fail("error", error, args.verbose, 1)
        from bovw.spark.workers import missing_in_workers, worker_module_error

        missing = missing_in_workers(error)
        if missing:
            if args.verbose:
                _print_trace(error)
            print(f"bovw: error: {worker_module_error(missing)}", file=sys.stderr)
            return 1
        if not _driver_lost(error):
            raise
        if args.verbose:
            _print_trace(error)
        print(f"bovw: error: {DRIVER_LOST}", file=sys.stderr)
        return 1


# What a stopped command that keeps its finished work adds to its one line.
_GOES_ON = "what was finished is kept, and the same command again goes on from there"


def _resumes(args: argparse.Namespace) -> bool:
    """Whether the same command again goes on where this one stopped: it writes an output
    that keeps its finished work (a run, sweep, comparison, report or export, an upload
    that skips what S3 holds, a folder's predictions). One that only prints (bovw s3 ls,
    predictions of photo files, an EMR dry-run) has nothing to go on from, and an EMR
    submission made again makes another cluster or step."""
    if args.command == "s3":
        return args.s3_command == "upload"
    if args.command == "predict":
        return bool(getattr(args, "output", None))
    return args.command != "emr"


def _stopped(error: BaseException, verbose: bool, resumes: bool) -> int:
    # Ctrl-C: by now the output's lock is released and its finished stages are kept; the
    # trace of wherever py4j was waiting tells the user nothing.
    if verbose:
        _print_trace(error)
    print("bovw: interrupted" + (f": {_GOES_ON}" if resumes else ""), file=sys.stderr)
    return EXIT_INTERRUPTED


# The exit code of a process killed by SIGPIPE (128 + 13), which Python ignores.
EXIT_OUTPUT_CLOSED = 141


def _output_closed(error: BaseException) -> bool:
    """Whether `error` is bovw's own console line failing because what read its output
    went away (`bovw run ... | head -1`): a BrokenPipeError raised in bovw's code, not in
    a socket of py4j's or Spark's."""
    if not isinstance(error, BrokenPipeError):
        return False
    frames = traceback.extract_tb(error.__traceback__)
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return bool(frames) and os.path.abspath(frames[-1].filename).startswith(package + os.sep)


def _closed_output(resumes: bool) -> int:
    # Stdout points at /dev/null from here on: Python flushes it once more at exit, which
    # would fail again and print "Exception ignored ... BrokenPipeError".
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # a stdout without a file (io.UnsupportedOperation)
        pass
    finally:
        os.close(devnull)
    try:
        print("bovw: stopped: what read its output closed it (a broken pipe)"
              + (f"; {_GOES_ON}" if resumes else ""), file=sys.stderr)
    except OSError:  # stderr went the same way
        pass
    return EXIT_OUTPUT_CLOSED


def _interrupted(error: BaseException) -> bool:
    """Whether `error` is a KeyboardInterrupt, or was raised from or while handling one."""
    return any(isinstance(link, KeyboardInterrupt) for link in error_chain(error))


# What a user is told when the Spark driver's JVM went away mid-command (py4j's connection
# to it failed): most often it ran out of memory, which Spark's log says just above.
DRIVER_LOST = ("the Spark driver (its JVM) stopped in the middle of the work, most often "
               "for want of memory (an OutOfMemoryError above); what was finished is kept, "
               "and the same command again goes on from there: give the driver more memory "
               "(--set spark.driver_memory=8g) or ask for less (a smaller vocabulary.k, fewer "
               "histograms.pyramid_levels)")


def _driver_lost(error: BaseException) -> bool:
    """Whether `error`, or an error it was raised from or while handling, is py4j losing
    its connection to the driver JVM: its Py4JNetworkError, or a socket error raised inside
    py4j (the calls that clean up after it find nothing to connect to)."""
    for link in error_chain(error):
        if type(link).__name__ == "Py4JNetworkError" and type(link).__module__.startswith(
                "py4j"):
            return True
        if isinstance(link, ConnectionError):
            frames = traceback.extract_tb(link.__traceback__)
            if frames and "/py4j/" in frames[-1].filename.replace("\\", "/"):
                return True
    return False


def _expand_home(args: argparse.Namespace, home: str) -> None:
    """Paths given as ~ or ~/x, which a shell leaves as they are when quoted, made $HOME
    and $HOME/x: `--output '~/runs'` created a folder named ~ in the current one."""
    def expanded(word: object) -> object:
        if isinstance(word, str) and (word == "~" or word.startswith("~/")):
            return home.rstrip("/") + word[1:]
        return word

    for dest, value in vars(args).items():
        setattr(args, dest, [expanded(word) for word in value] if isinstance(value, list)
                else expanded(value))


def _refuse_credentials_in_flags(args: argparse.Namespace) -> None:
    """Refuse, before any work, a flag whose value holds a URL with credentials
    (`scheme://user:password@host`): bovw saves and prints its paths and settings, and
    the libraries it calls print URLs (Ivy its repositories, botocore its endpoint)."""
    for dest, value in vars(args).items():
        for word in value if isinstance(value, list) else [value]:
            if not isinstance(word, str):
                continue
            flag = f"--{dest.replace('_', '-')}"
            key, sep, setting = word.partition("=")
            if dest in ("set", "param") and sep:
                flag, word = f"{flag} {key}", setting
            elif dest != "endpoint" and re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", word):
                refuse_credentials_in_url(word)  # a path: its own message
            if has_url_credentials(word):
                raise url_credentials_error(flag, word)


def _print_trace(error: BaseException) -> None:
    """The whole trace of `error` on stderr, masked as log records are
    (bovw.config.log_masking.masked: the secrets bovw resolved, AWS tokens in headers, a
    URL's user:password@, from an endpoint in the environment, say, quoted by botocore)."""
    text = "".join(traceback.format_exception(error))
    print(masked(text), end="", file=sys.stderr)


def _fail(kind: str, error: Exception, verbose: bool, code: int) -> int:
    """Report a user error as one line (after its whole trace with --verbose), masked as
    log records are."""
    if verbose:
        _print_trace(error)
    message = masked(" ".join(str(error).splitlines()))
    print(f"bovw: {kind}: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())

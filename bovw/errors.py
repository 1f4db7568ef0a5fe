"""The errors a user can cause, each reported as one line; free of Spark so the CLI loads fast.

Every one of them is a BovwError: the `bovw` command catches that base once and prints the
message (`bovw: error: ...`, exit code 1; a ConfigError: `bovw: config error: ...`, 2).
Each also keeps the built-in base it always had (ValueError or RuntimeError), so code that
caught those still does. Anything else reaching the command is a bug and shows its trace.
"""

from collections.abc import Iterator

__all__ = [
    "BovwError", "CloudError", "CnnError", "ColourError", "CompareError", "ConfigError",
    "ExportError", "FruitCatalogueError", "InputError", "JavaError", "ModelFileError",
    "OutputError", "OutputInUseError", "ReuseError", "SparkStartError", "StorageError",
    "ToneError", "TrainingError", "VocabularyError", "WorkerError", "error_chain",
    "first_line",
]


class BovwError(Exception):
    """A problem with what the user gave bovw (settings, input, output, model, cloud setup,
    environment); the message names the cause and the fix in one line."""


# ---------------------------------------------------------------- settings and input

class ConfigError(BovwError, ValueError):
    """A configuration problem, reported to the user as one line."""


class InputError(BovwError, ValueError):
    """The input folder is missing, empty, or laid out in a way the pipeline cannot use."""


# ---------------------------------------------------------------- outputs

class OutputError(BovwError, ValueError):
    """The output folder cannot be used for this run; the message says what to do."""


class OutputInUseError(OutputError):
    """Another live bovw command holds the output's lock; the message names it."""


class StorageError(OutputError):
    """A file or folder could not be read or written: one line naming the path, the cause
    and the fix."""


class ReuseError(OutputError):
    """Reused outputs contradict what the configuration asks for; the message says the fix."""


class ExportError(OutputError):
    """The run folder cannot be exported; the message says what to do."""


# ---------------------------------------------------------------- what a run learns

class VocabularyError(BovwError, ValueError):
    """The Training descriptors cannot support the requested vocabulary."""


class TrainingError(BovwError, RuntimeError):
    """A model fitted on the Training rows learned nothing usable (Training features that do
    not vary, a classifier that did not train); the message names the cause and the fix."""


class ColourError(BovwError, ValueError):
    """The colour block was asked for but the descriptors carry none (or another size)."""


class ToneError(BovwError, ValueError):
    """The tone block was asked for but the descriptors carry none (or another size)."""


class CompareError(BovwError, ValueError):
    """External features that cannot be matched to the images; the message says why."""


class CnnError(BovwError, RuntimeError):
    """The CNN backbone cannot be loaded; the message says what to install or set."""


# ---------------------------------------------------------------- prediction

class ModelFileError(BovwError, ValueError):
    """A model file that cannot be used; the message says what to do."""


class FruitCatalogueError(BovwError, ValueError):
    """The catalogue file cannot be used; the message names the entry and the fix."""


# ---------------------------------------------------------------- environment

class CloudError(BovwError, RuntimeError):
    """A cloud setup or access problem, reported to the user as one line naming cause and fix."""


class JavaError(BovwError, RuntimeError):
    """No usable JDK: the message names the install command."""


class SparkStartError(BovwError, RuntimeError):
    """Spark could not start: the message names the cause and the fix."""


class WorkerError(BovwError, RuntimeError):
    """Spark's Python workers cannot run bovw's per-image code (their Python lacks a module
    it needs): the message names the module and the fix."""


def error_chain(error: BaseException) -> Iterator[BaseException]:
    """`error` and the errors it was raised from or while handling, each once."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none), at most
    200 characters: how a failure is reported in one line."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:200]

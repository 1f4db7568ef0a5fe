"""The errors a user can cause, each reported as one line; free of Spark so the CLI loads fast."""


class InputError(ValueError):
    """The input folder is missing, empty, or laid out in a way the pipeline cannot use."""


class OutputError(ValueError):
    """The output folder cannot be used for this run; the message says what to do."""


class OutputInUseError(OutputError):
    """Another live bovw command holds the output's lock; the message names it."""


class VocabularyError(ValueError):
    """The Training descriptors cannot support the requested vocabulary."""


class CloudError(RuntimeError):
    """A cloud setup or access problem, reported to the user as one line naming cause and fix."""


class ColourError(ValueError):
    """The colour block was asked for but the descriptors carry none (or another size)."""


class ToneError(ValueError):
    """The tone block was asked for but the descriptors carry none (or another size)."""


class CompareError(ValueError):
    """External features that cannot be matched to the images; the message says why."""


class CnnError(RuntimeError):
    """The CNN backbone cannot be loaded; the message says what to install or set."""


class TrainingError(RuntimeError):
    """A model fitted on the Training rows learned nothing usable (Training features that do
    not vary, a classifier that did not train); the message names the cause and the fix."""

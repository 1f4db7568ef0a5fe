"""The errors a user can cause, each reported as one line; free of Spark so the CLI loads fast."""


class InputError(ValueError):
    """The input folder is missing, empty, or laid out in a way the pipeline cannot use."""


class OutputError(ValueError):
    """The output folder cannot be used for this run; the message says what to do."""


class VocabularyError(ValueError):
    """The Training descriptors cannot support the requested vocabulary."""


class CloudError(RuntimeError):
    """A cloud setup or access problem, reported to the user as one line naming cause and fix."""

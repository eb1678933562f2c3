"""The exceptions rnnstab raises for user mistakes.

Each one carries a one-line message that names what was wrong and what was expected; the CLI
prints it as ``Error: <message>`` and exits with the code given here. Anything else that escapes
is a bug.
"""


class RnnstabError(Exception):
    """Base class: a user-facing error with a one-line message."""

    exit_code: int = 1


class UsageError(RnnstabError, ValueError):
    """Bad options, unknown names, values out of range. A ValueError too, so that code calling
    the Python API can catch bad arguments the way it catches numpy's."""

    exit_code = 2


class DataError(RnnstabError):
    """A data file that is missing, unreadable or not of the expected form."""

    exit_code = 3


class CheckpointError(RnnstabError):
    """A checkpoint or result store that is missing, damaged or incompatible."""

    exit_code = 4


class InstallError(RnnstabError):
    """Files that ship with rnnstab (the presets) are missing: the installation is broken, not
    the command. Exit code 1, an error that is not the user's input."""

    exit_code = 1

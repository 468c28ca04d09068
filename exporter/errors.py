"""The exporter's exceptions: one-line messages that say what went wrong and what to do next."""

from __future__ import annotations


class ExportError(Exception):
    """An export failed; nothing was added to the repository.

    The message is a single line naming the file or value at fault, so the CLI can print it as is.
    """


class ExportInputError(ExportError):
    """The caller's input is unusable: a missing, corrupt or unknown checkpoint, a bad model name or repository path.

    Kept apart from other failures because the CLI exits with status 2 (bad usage) for these, as
    argparse does, and with 1 when a valid input failed to export (e.g. parity exceeded).
    """


class ParityError(ExportError):
    """An exported artifact does not reproduce the eager model within the tolerance."""

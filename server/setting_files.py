"""Files that security settings name (TLS material, token files): one error type, one way to read them.

Shared by :mod:`server.tls` and :mod:`server.auth`, so that both report a bad path the same way:
naming the setting, the path and what to do about it.
"""

from __future__ import annotations

from pathlib import Path


class SecurityConfigError(ValueError):
    """A TLS or authentication setting cannot be used; the message names the file and the fix."""


def read_setting_file(path: Path, what: str) -> bytes:
    """Reads a whole file named by a setting, turning OS errors into a message that names it and the fix.

    Args:
        path: The file.
        what: What the file is for (e.g. "TLS certificate"), used in error messages.

    Returns:
        The file's bytes.

    Raises:
        SecurityConfigError: The file is missing, a directory, unreadable or cannot be read.
    """
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise SecurityConfigError(f"{what} file {str(path)!r} does not exist: check the path") from exc
    except IsADirectoryError as exc:
        raise SecurityConfigError(f"{what} file {str(path)!r} is a directory: give the path of the file") from exc
    except PermissionError as exc:
        raise SecurityConfigError(
            f"{what} file {str(path)!r} is not readable by this user: fix its permissions or run as its owner"
        ) from exc
    except OSError as exc:
        raise SecurityConfigError(f"cannot read {what} file {str(path)!r}: {exc.strerror or exc}") from exc

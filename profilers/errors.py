"""Errors of the profilers package, each meant to be shown to a user as one line.

The board-side runner prints any :class:`ProfilerError` as ``error: <message>`` and exits
with status 2, so every message here names the file, key or setting at fault and fits on
one line.
"""

from __future__ import annotations

import re

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "KitError",
    "MeasurementsError",
    "ModelLoadError",
    "ProfilerError",
    "first_line",
]


class ProfilerError(Exception):
    """Base class: an expected failure with a one-line, user-facing message."""


class KitError(ProfilerError):
    """A kit zip is unreadable, truncated, of an unsupported schema, or incomplete."""


class MeasurementsError(ProfilerError):
    """A measurements file is unreadable, of another run, or would lose data if written."""


class BackendError(ProfilerError):
    """A backend is unknown or cannot honour a setting (device, precision, delegate)."""


class BackendUnavailable(BackendError):
    """A known backend whose runtime is not installed (or not usable) on this machine."""


class ModelLoadError(BackendError):
    """The runtime refused a model file (unreadable, unsupported op, failed first run)."""


# OpenVINO prefixes its messages with lines such as "Exception from src/core.cpp:84:".
_SOURCE_POSITION = re.compile(r"^Exception from \S+:\d+:$")


def first_line(error: BaseException | str, *, limit: int = 300) -> str:
    """The first informative line of an error message, shortened to ``limit`` characters.

    Runtimes raise multi-line messages (C++ source positions, hints); a user needs the
    first line that says what is wrong. Lines that only give a C++ source position are
    skipped; an empty message falls back to the exception's class name.

    Example:
        >>> first_line(RuntimeError("Exception from core.cpp:84:\\nUnable to read x"))
        'Unable to read x'
    """
    lines = [part.strip() for part in str(error).splitlines() if part.strip()]
    informative = [part for part in lines if not _SOURCE_POSITION.match(part)]
    line = (informative or lines or [""])[0]
    if not line:
        line = type(error).__name__ if isinstance(error, BaseException) else "unknown error"
    return line if len(line) <= limit else line[: limit - 3] + "..."

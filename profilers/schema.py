"""Helpers shared by the kit and measurements formats: versions, one-line errors, atomic writes.

Every file that profilers reads carries a ``schema_version``; checking it before pydantic
validation turns an old or future file into one clear line ("kit manifest schema_version 7
is not supported (expected 1)") instead of a list of field errors.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO, TypeVar

from pydantic import BaseModel, ValidationError

__all__ = [
    "check_schema_version",
    "describe_validation_error",
    "replace_atomically",
    "validate_versioned",
]

ModelT = TypeVar("ModelT", bound=BaseModel)


def check_schema_version(data: object, *, expected: int, what: str, required: bool = True) -> None:
    """Raise ValueError naming ``what`` when ``data`` carries another schema_version.

    Args:
        data: The parsed JSON (or the keyword arguments of a model being built).
        expected: The version this code reads.
        what: What the data is, for the message (``kit manifest``).
        required: Files must state their version; objects built in Python may leave it
            to its default (``required=False``).
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be a JSON object, got {type(data).__name__}")
    if "schema_version" not in data and not required:
        return
    version = data.get("schema_version")
    if version != expected:
        raise ValueError(f"{what} schema_version {version} is not supported (expected {expected})")


def validate_versioned(data: object, model: type[ModelT], *, expected: int, what: str) -> ModelT:
    """Check ``data``'s schema_version, then validate it as ``model``.

    Raises:
        ValueError: One line: the version problem, or the first invalid field as
            ``field.path: message`` (plus how many more fields are invalid).
    """
    check_schema_version(data, expected=expected, what=what)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from exc


def describe_validation_error(error: ValidationError) -> str:
    """The first invalid field as ``field.path: message`` (plus how many more are invalid)."""
    errors = error.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "(root)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg'].removeprefix('Value error, ')}{more}"


def replace_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then move it over ``path``.

    A reader sees the old file or the new one, never half of one, even if the process dies
    while writing. The file keeps the mode of the file it replaces; a new file gets the
    usual mode (0o666 less the umask), not the private 0o600 of a temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    """The permission bits a file written at ``path`` should get."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)  # reading the umask means setting it; put it straight back
        os.umask(umask)
        return 0o666 & ~umask

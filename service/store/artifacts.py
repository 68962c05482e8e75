"""Artifact storage: files that jobs write (kits, models, reports) behind a narrow interface.

Names are relative POSIX paths such as `jobs/12/model.onnx`. Every name is checked
before it touches the file system, so `../x`, `/etc/passwd` or `a/./b` are refused
(`ArtifactNameError`) instead of escaping the store's folder. :class:`LocalArtifacts`
keeps them in a local directory; an object store can replace it by implementing
:class:`ArtifactStore`.
"""

from __future__ import annotations

import os
import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


class ArtifactNameError(ValueError):
    """An artifact name that is not a plain relative path inside the store."""


def check_name(name: str) -> str:
    """Return `name` if it is a safe relative artifact path.

    Raises:
        ArtifactNameError: Empty, absolute, with `.`/`..` parts, or odd characters.
    """
    parts = name.split("/")
    if not name or len(name) > 512 or not all(_PART.match(part) for part in parts):
        raise ArtifactNameError(
            f"artifact name {name!r}: expected relative path parts of letters, digits, "
            "'.', '_' and '-' (no '..', no leading '/')"
        )
    if any(part in (".", "..") for part in parts):
        raise ArtifactNameError(f"artifact name {name!r}: '.' and '..' are not allowed")
    return name


class ArtifactStore(ABC):
    """Where job outputs live. Reads are streams; writes are whole files, atomic."""

    @abstractmethod
    def put(self, name: str, source: Path) -> int:
        """Copy the local file `source` in as `name` (replacing it); returns its size."""

    @abstractmethod
    def open(self, name: str) -> BinaryIO:
        """A binary stream of `name`.

        Raises:
            FileNotFoundError: No artifact has that name.
        """

    @abstractmethod
    def size(self, name: str) -> int:
        """Size in bytes of `name` (FileNotFoundError if missing)."""

    @abstractmethod
    def list(self, prefix: str) -> list[tuple[str, int]]:
        """(name, bytes) of every artifact under the folder `prefix`, sorted by name."""

    @abstractmethod
    def delete(self, prefix: str) -> None:
        """Remove `prefix` (a file or a whole folder); missing is not an error."""

    @abstractmethod
    def local_dir(self, prefix: str) -> Path:
        """A local folder whose files are the artifacts under `prefix` (jobs write there)."""

    @abstractmethod
    def local_path(self, name: str) -> Path:
        """A local path of the artifact `name` (jobs read inputs there)."""


class LocalArtifacts(ArtifactStore):
    """Artifacts as files under one local directory (shared with Ray workers by a volume)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, name: str) -> Path:
        path = (self.root / check_name(name)).resolve()
        if self.root not in path.parents:
            raise ArtifactNameError(f"artifact name {name!r} leaves the store")
        return path

    def put(self, name: str, source: Path) -> int:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.{os.getpid()}.part")
        shutil.copyfile(source, scratch)
        os.replace(scratch, path)
        return path.stat().st_size

    def open(self, name: str) -> BinaryIO:
        path = self._path(name)
        if not path.is_file():
            raise FileNotFoundError(f"artifact {name!r} not found")
        return path.open("rb")

    def size(self, name: str) -> int:
        path = self._path(name)
        if not path.is_file():
            raise FileNotFoundError(f"artifact {name!r} not found")
        return path.stat().st_size

    def list(self, prefix: str) -> list[tuple[str, int]]:
        folder = self._path(prefix)
        if not folder.is_dir():
            return []
        return sorted(
            (f"{prefix}/{path.relative_to(folder).as_posix()}", path.stat().st_size)
            for path in _files(folder)
        )

    def delete(self, prefix: str) -> None:
        path = self._path(prefix)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    def local_dir(self, prefix: str) -> Path:
        folder = self._path(prefix)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def local_path(self, name: str) -> Path:
        return self._path(name)


def _files(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            yield path

"""The profiling kit: a zip of small model files plus ``manifest.json`` mapping LUT keys to them.

The service writes kits (models/ exports one file per distinct cell of a space, the stem
and head, and a few whole architectures) with :func:`write_kit`; the board-side runner
reads them with :func:`read_kit`. Both sides share these functions so the format has one
definition. Every way a kit can be broken (not a zip, truncated, no manifest, another
schema_version, a listed file missing, a member escaping the folder) raises
:class:`~profilers.errors.KitError` with one line naming the kit and the problem.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from profilers.errors import KitError, first_line
from profilers.schema import check_schema_version, replace_atomically, validate_versioned

__all__ = [
    "KIT_SCHEMA_VERSION",
    "MANIFEST_NAME",
    "EntryKind",
    "KitEntry",
    "KitFormat",
    "KitManifest",
    "Precision",
    "manifest_hash",
    "read_kit",
    "read_manifest",
    "write_kit",
]

KIT_SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"

Precision = Literal["fp32", "fp16", "bf16", "int8"]
KitFormat = Literal["onnx", "tflite", "openvino", "pt2"]
EntryKind = Literal["cell", "stem", "head", "fixed", "arch"]


def _safe_member(name: str) -> str:
    """Check that ``name`` is a relative path that stays inside the kit (no ``..``, no root)."""
    path = PurePosixPath(name)
    if not name or "\\" in name or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{name!r} is not a relative path inside the kit")
    return name


class KitEntry(BaseModel):
    """One model file of a kit: what it measures (its LUT key) and how to feed it.

    Attributes:
        key: The LUT key, e.g. ``mbconv-k5-e6-se-hswish-in28x28x40-out14x14x80-s2``; for
            ``kind == "arch"`` any unique name (the arch string is in ``arch``).
        kind: ``cell`` (a searchable op), ``stem``, ``head`` or ``fixed`` (the fixed parts
            of a space, e.g. NAS-Bench-201's residual blocks): together the LUT; or ``arch``
            (a whole network, measured to validate predictors end to end).
        file: Path of the model file inside the zip (POSIX separators, relative).
        input_shape: The model's input shape, NCHW, as the model was built. It fills
            dynamic dimensions only: a file's static shape wins (an NHWC TFLite input).
        arch: The architecture string (the space's canonical form) for ``kind == "arch"``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1)
    kind: EntryKind
    file: str
    input_shape: list[int] = Field(min_length=1)
    arch: str | None = None

    @model_validator(mode="after")
    def _check(self) -> KitEntry:
        _safe_member(self.file)
        if self.file == MANIFEST_NAME:
            raise ValueError(f"entry {self.key!r} cannot use the name {MANIFEST_NAME}")
        if any(dim <= 0 for dim in self.input_shape):
            raise ValueError(f"entry {self.key!r}: input_shape {self.input_shape} must be > 0")
        if (self.kind == "arch") != (self.arch is not None):
            raise ValueError(f"entry {self.key!r}: arch is required for kind 'arch' and only there")
        return self


class KitManifest(BaseModel):
    """``manifest.json`` of a kit: the space it was made from and one entry per model file.

    Attributes:
        schema_version: Must be :data:`KIT_SCHEMA_VERSION`.
        space: Name of the search space (e.g. ``mbv2``).
        params: The space's parameters (resolution, width, classes...), free-form JSON.
        format: File format of every model in the kit; ``pt2`` is a ``torch.export``
            program saved with ``torch.export.save``, for the torch backend.
        precision: Precision the files were exported in (``int8`` for quantised files);
            the runner's default ``--precision``.
        created_at: When the kit was written (ISO 8601, with time zone).
        entries: One per model file; keys are unique.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = KIT_SCHEMA_VERSION
    space: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    format: KitFormat
    precision: Precision = "fp32"
    created_at: datetime
    entries: list[KitEntry] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _version(cls, data: Any) -> Any:
        check_schema_version(data, expected=KIT_SCHEMA_VERSION, what="kit manifest", required=False)
        return data

    @model_validator(mode="after")
    def _unique(self) -> KitManifest:
        seen: set[str] = set()
        for entry in self.entries:
            if entry.key in seen:
                raise ValueError(f"duplicate key {entry.key!r}")
            seen.add(entry.key)
        return self


def manifest_hash(manifest: KitManifest) -> str:
    """SHA-256 (hex) of the manifest's canonical JSON; identifies a kit in measurements."""
    canonical = json.dumps(manifest.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_kit(zip_path: str | Path, manifest: KitManifest, files: Mapping[str, str | Path]) -> None:
    """Write a kit zip: ``manifest.json`` plus ``files`` (name in the zip -> local file).

    Every entry's ``file`` must be among ``files``; extra files (an OpenVINO ``.bin`` next
    to its ``.xml``) are allowed. The zip is written to a temporary file and moved into
    place, so a reader never sees half a kit.

    Example:
        >>> files = {"cells/conv.onnx": Path("out/conv.onnx")}
        >>> write_kit("kit.zip", manifest, files)  # doctest: +SKIP

    Raises:
        KitError: A listed file is not in ``files`` or not on disk, or a name is unsafe.
    """
    zip_path = Path(zip_path)
    for entry in manifest.entries:
        if entry.file not in files:
            raise KitError(f"kit entry {entry.key!r}: file {entry.file!r} not given to write_kit")
    for name, source in files.items():
        try:
            _safe_member(name)
        except ValueError as exc:
            raise KitError(str(exc)) from exc
        if name == MANIFEST_NAME:
            raise KitError(f"{MANIFEST_NAME} is written by write_kit, not given as a file")
        if not Path(source).is_file():
            raise KitError(f"kit file {name!r}: {source} does not exist")

    def write(handle: BinaryIO) -> None:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(MANIFEST_NAME, manifest.model_dump_json(indent=2))
            for name, source in sorted(files.items()):
                archive.write(source, arcname=name)

    replace_atomically(zip_path, write)


def _open_zip(zip_path: Path) -> zipfile.ZipFile:
    if not zip_path.is_file():
        raise KitError(f"kit not found: {zip_path}")
    try:
        return zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise KitError(f"{zip_path} is not a readable zip (corrupt or truncated: {exc})") from exc


def _manifest_from(archive: zipfile.ZipFile, zip_path: Path) -> KitManifest:
    if MANIFEST_NAME not in archive.namelist():
        raise KitError(f"{zip_path}: no {MANIFEST_NAME} in the kit")
    try:
        data = json.loads(archive.read(MANIFEST_NAME))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KitError(f"{zip_path}: {MANIFEST_NAME} is not valid JSON ({exc})") from exc
    try:
        return validate_versioned(
            data, KitManifest, expected=KIT_SCHEMA_VERSION, what="kit manifest"
        )
    except ValueError as exc:
        raise KitError(f"{zip_path}: {exc}") from exc


def read_manifest(zip_path: str | Path) -> KitManifest:
    """Read and validate a kit's manifest without extracting anything.

    Raises:
        KitError: Not a zip, truncated, no manifest, wrong schema_version, invalid fields.
    """
    zip_path = Path(zip_path)
    try:
        with _open_zip(zip_path) as archive:
            return _manifest_from(archive, zip_path)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise KitError(f"{zip_path} is corrupt ({first_line(exc)})") from exc


def read_kit(zip_path: str | Path, dest: str | Path | None = None) -> tuple[KitManifest, Path]:
    """Validate a kit and extract it; returns the manifest and the folder it is in.

    Args:
        zip_path: The kit zip.
        dest: Folder to extract into (created if needed); a new temporary folder when
            None, which the caller removes when done.

    Raises:
        KitError: Anything :func:`read_manifest` rejects, a file listed in the manifest but
            absent from the zip, an unsafe member name, or a member that fails its CRC.
    """
    zip_path = Path(zip_path)
    try:
        with _open_zip(zip_path) as archive:
            manifest = _manifest_from(archive, zip_path)
            names = set(archive.namelist())
            for entry in manifest.entries:
                if entry.file not in names:
                    raise KitError(
                        f"{zip_path}: {entry.file} is listed for {entry.key!r} but not in the kit"
                    )
            for name in names:
                try:
                    _safe_member(name.rstrip("/"))
                except ValueError as exc:
                    raise KitError(f"{zip_path}: {exc}") from exc
            out = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="hwnas-kit-"))
            out.mkdir(parents=True, exist_ok=True)
            try:
                archive.extractall(out)
            except BaseException:
                if dest is None:
                    shutil.rmtree(out, ignore_errors=True)
                raise
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise KitError(f"{zip_path} is corrupt ({first_line(exc)})") from exc
    except OSError as exc:
        raise KitError(f"cannot extract {zip_path}: {first_line(exc)}") from exc
    return manifest, out

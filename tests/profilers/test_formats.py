"""Kit and measurements formats: round trips, every way a file can be broken, safe saving."""

from __future__ import annotations

import json
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from profilers.errors import KitError, MeasurementsError
from profilers.formats import (
    MANIFEST_NAME,
    BackendSettings,
    HostInfo,
    KitEntry,
    KitManifest,
    KitRef,
    Measurement,
    MeasurementsFile,
    ProtocolSettings,
    load_measurements,
    manifest_hash,
    read_kit,
    read_manifest,
    save_measurements,
    write_kit,
)


def _entry(key: str = "cell-a", file: str = "cells/a.onnx", **extra: object) -> KitEntry:
    return KitEntry(key=key, kind="cell", file=file, input_shape=[1, 3, 8, 8], **extra)


def _manifest(*entries: KitEntry) -> KitManifest:
    return KitManifest(
        space="toy",
        params={"resolution": 8},
        format="onnx",
        created_at=datetime(2025, 1, 2, tzinfo=UTC),
        entries=list(entries) or [_entry()],
    )


@pytest.fixture
def kit(tmp_path: Path) -> Path:
    """A valid kit with two entries over small files."""
    (tmp_path / "a.onnx").write_bytes(b"model a" * 100)
    (tmp_path / "b.onnx").write_bytes(b"model b" * 100)
    manifest = _manifest(
        _entry(), _entry("arch-0", "archs/b.onnx").model_copy(update={"kind": "arch", "arch": "x"})
    )
    path = tmp_path / "kit.zip"
    write_kit(
        path, manifest, {"cells/a.onnx": tmp_path / "a.onnx", "archs/b.onnx": tmp_path / "b.onnx"}
    )
    return path


def _rezip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_kit_round_trip(kit: Path, tmp_path: Path) -> None:
    manifest, folder = read_kit(kit, tmp_path / "out")
    assert manifest == read_manifest(kit)
    assert [e.key for e in manifest.entries] == ["cell-a", "arch-0"]
    assert (folder / "cells/a.onnx").read_bytes() == b"model a" * 100
    assert (folder / "archs/b.onnx").read_bytes() == b"model b" * 100


def test_manifest_hash_identifies_content() -> None:
    assert manifest_hash(_manifest()) == manifest_hash(_manifest())
    assert manifest_hash(_manifest()) != manifest_hash(_manifest(_entry("cell-b")))
    assert len(manifest_hash(_manifest())) == 64


def test_wrong_schema_version_is_one_clear_line(kit: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(kit) as archive:
        data = json.loads(archive.read(MANIFEST_NAME))
    data["schema_version"] = 7
    bad = _rezip(tmp_path / "v7.zip", {MANIFEST_NAME: json.dumps(data).encode()})
    with pytest.raises(
        KitError, match=r"kit manifest schema_version 7 is not supported \(expected 1\)"
    ):
        read_manifest(bad)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p, kit: p.write_bytes(b"not a zip at all"), "not a readable zip"),
        (
            lambda p, kit: p.write_bytes(kit.read_bytes()[: kit.stat().st_size // 2]),
            "not a readable zip",
        ),
        (lambda p, kit: _rezip(p, {"cells/a.onnx": b"x"}), "no manifest.json"),
        (lambda p, kit: _rezip(p, {MANIFEST_NAME: b"{not json"}), "not valid JSON"),
        (lambda p, kit: _rezip(p, {MANIFEST_NAME: b"[]"}), "must be a JSON object"),
        (
            lambda p, kit: _rezip(p, {MANIFEST_NAME: b'{"schema_version": 1}'}),
            "space: Field required",
        ),
    ],
    ids=["not-zip", "truncated", "no-manifest", "bad-json", "not-object", "missing-field"],
)
def test_broken_kits_raise_kit_error(make: object, message: str, kit: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    make(bad, kit)  # type: ignore[operator]
    with pytest.raises(KitError, match=message) as error:
        read_kit(bad, tmp_path / "out")
    assert "\n" not in str(error.value)


def test_listed_file_missing(kit: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(kit) as archive:
        manifest = archive.read(MANIFEST_NAME)
    bad = _rezip(tmp_path / "bad.zip", {MANIFEST_NAME: manifest, "cells/a.onnx": b"x"})
    with pytest.raises(KitError, match=r"archs/b\.onnx is listed for 'arch-0' but not in the kit"):
        read_kit(bad, tmp_path / "out")


def test_member_escaping_the_folder(kit: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(kit) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    bad = _rezip(tmp_path / "bad.zip", {**members, "../evil.sh": b"rm -rf"})
    with pytest.raises(KitError, match="not a relative path inside the kit"):
        read_kit(bad, tmp_path / "out")
    assert not (tmp_path / "evil.sh").exists()


def test_corrupt_member_fails_crc(kit: Path, tmp_path: Path) -> None:
    data = bytearray(kit.read_bytes())
    with zipfile.ZipFile(kit) as archive:
        info = archive.getinfo("cells/a.onnx")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 2 : start + 6] = b"\xff\x00\xff\x00"
    bad = tmp_path / "crc.zip"
    bad.write_bytes(bytes(data))
    with pytest.raises(KitError, match="corrupt"):
        read_kit(bad, tmp_path / "out")


def test_kit_not_found(tmp_path: Path) -> None:
    with pytest.raises(KitError, match="kit not found"):
        read_manifest(tmp_path / "missing.zip")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"file": "../a.onnx"}, "not a relative path"),
        ({"file": "/abs/a.onnx"}, "not a relative path"),
        ({"input_shape": [1, 0, 8, 8]}, "must be > 0"),
        ({"kind": "arch"}, "arch is required"),
        ({"arch": "x"}, "arch is required"),
        ({"file": MANIFEST_NAME}, "cannot use the name"),
    ],
)
def test_entry_validation(fields: dict[str, object], message: str) -> None:
    data = {"key": "k", "kind": "cell", "file": "a.onnx", "input_shape": [1, 3, 8, 8], **fields}
    with pytest.raises(ValidationError, match=message):
        KitEntry(**data)


def test_duplicate_keys_rejected() -> None:
    with pytest.raises(ValidationError, match="duplicate key"):
        _manifest(_entry(), _entry(file="cells/b.onnx"))


def test_write_kit_checks_files(tmp_path: Path) -> None:
    with pytest.raises(KitError, match="not given to write_kit"):
        write_kit(tmp_path / "kit.zip", _manifest(), {})
    with pytest.raises(KitError, match="does not exist"):
        write_kit(tmp_path / "kit.zip", _manifest(), {"cells/a.onnx": tmp_path / "nope"})
    assert not (tmp_path / "kit.zip").exists()


def _measurement(key: str, kind: str = "cell", median: float = 1.0) -> Measurement:
    return Measurement(
        key=key,
        kind=kind,  # type: ignore[arg-type]
        backend="onnxruntime",
        backend_version="1.0",
        device="CPU",
        threads=1,
        precision="fp32",
        median_ms=median,
        p10_ms=median * 0.9,
        p90_ms=median * 1.2,
        mean_ms=median * 1.05,
        cv=0.02,
        runs=30,
        host=HostInfo.current(),
        timestamp=datetime.now(UTC),
    )


def _measurements(*cells: str, archs: tuple[str, ...] = ()) -> MeasurementsFile:
    return MeasurementsFile(
        kit=KitRef.of(_manifest()),
        settings=BackendSettings(
            backend="onnxruntime", backend_version="1.0", device="CPU", threads=1, precision="fp32"
        ),
        protocol=ProtocolSettings(),
        host=HostInfo.current(),
        reference_key="cell-a",
        reference=[1.0, 1.1],
        cells=[_measurement(key) for key in cells],
        archs=[_measurement(key, "arch") for key in archs],
    )


def test_measurements_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    doc = _measurements("a", "b", archs=("arch-0",))
    save_measurements(path, doc)
    assert load_measurements(path) == doc
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary file left


def test_save_never_loses_measurements(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    save_measurements(path, _measurements("a", "b"))
    before = path.read_bytes()
    with pytest.raises(MeasurementsError, match=r"\(2 measurements\) with fewer \(1\)"):
        save_measurements(path, _measurements("a"))
    assert path.read_bytes() == before
    save_measurements(path, _measurements("a", "b", "c"))
    assert load_measurements(path).count() == 3


def test_save_refuses_to_replace_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text("my notes, not measurements")
    with pytest.raises(MeasurementsError, match="refusing to overwrite"):
        save_measurements(path, _measurements("a"))
    assert path.read_text() == "my notes, not measurements"


def test_measurements_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    data = json.loads(_measurements("a").model_dump_json())
    data["schema_version"] = 7
    path.write_text(json.dumps(data))
    with pytest.raises(
        MeasurementsError, match=r"measurements file schema_version 7 is not supported"
    ):
        load_measurements(path)


def test_measurements_validation() -> None:
    with pytest.raises(ValidationError, match="p10_ms <= median_ms <= p90_ms"):
        Measurement.model_validate(_measurement("a").model_dump() | {"p10_ms": 5.0})
    with pytest.raises(ValidationError, match="measured twice"):
        _measurements("a", "a")
    with pytest.raises(ValidationError, match="cells holds kinds"):
        MeasurementsFile.model_validate(
            _measurements().model_dump() | {"cells": [_measurement("x", "arch").model_dump()]}
        )


def test_protocol_settings_are_consistent() -> None:
    with pytest.raises(ValidationError, match="min_runs"):
        ProtocolSettings(runs=5, min_runs=10)
    with pytest.raises(ValidationError, match="rounds"):
        ProtocolSettings(runs=5, min_runs=5, rounds=6)


def test_host_info() -> None:
    host = HostInfo.current()
    assert host.cpu and host.cores >= 1 and host.machine and host.python.startswith("3.")


def test_fixed_parts_belong_to_the_lut(tmp_path: Path) -> None:
    fixed = KitEntry(
        key="nb201-resblock-in32x32x16-out16x16x32-s2",
        kind="fixed",
        file="f.onnx",
        input_shape=[1, 16, 32, 32],
    )
    assert _manifest(fixed).entries[0].kind == "fixed"
    doc = _measurements("a")
    doc.cells.append(_measurement(fixed.key, "fixed"))
    save_measurements(tmp_path / "m.json", doc)
    assert load_measurements(tmp_path / "m.json").cells[-1].kind == "fixed"


def test_written_files_are_not_private(kit: Path, tmp_path: Path) -> None:
    """Temporary files are 0o600; the files that replace them get the usual mode."""
    path = tmp_path / "m.json"
    save_measurements(path, _measurements("a"))
    umask = os.umask(0)
    os.umask(umask)
    assert kit.stat().st_mode & 0o777 == path.stat().st_mode & 0o777 == 0o666 & ~umask
    path.chmod(0o640)
    save_measurements(path, _measurements("a", "b"))
    assert path.stat().st_mode & 0o777 == 0o640

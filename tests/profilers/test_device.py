"""Device profiles: valid files load, bad ones fail with the field named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from profilers.device import DeviceError, DeviceProfile, load_device


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "device.json"
    path.write_text(json.dumps(data))
    return path


def test_round_trip(tmp_path: Path) -> None:
    dev = DeviceProfile(name="pi4", backend="tflite", threads=4, precision="int8",
                        hardware="Raspberry Pi 4, Cortex-A72")
    loaded = load_device(write(tmp_path, dev.model_dump()))
    assert loaded == dev
    assert loaded.kit_format == "tflite"


@pytest.mark.parametrize(("data", "needle"), [
    ({"schema_version": 1, "name": "x", "backend": "tensorrt"}, "backend"),
    ({"schema_version": 1, "name": "x", "backend": "onnxruntime", "threads": 0}, "threads"),
    ({"schema_version": 2, "name": "x", "backend": "onnxruntime"}, "schema_version 2"),
    ({"schema_version": 1, "name": "a/b", "backend": "onnxruntime"}, "name"),
    ({"schema_version": 1, "name": "x", "backend": "onnxruntime", "gpu": True}, "gpu"),
    ([1, 2], "JSON object"),
])
def test_bad_profiles_name_the_field(tmp_path: Path, data: object, needle: str) -> None:
    with pytest.raises(DeviceError, match=needle):
        load_device(write(tmp_path, data))


def test_missing_and_not_json(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="does not exist"):
        load_device(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(DeviceError, match="not readable JSON"):
        load_device(bad)

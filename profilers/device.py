"""The device profile: which runtime, hardware, threads and precision a target means.

A device profile is what a user hands hwnas about a target ("a Raspberry Pi 4 running
LiteRT with 4 threads, int8"). The profiler reads it to measure with the right settings,
the search reads it to pick the kit format, the deployment resolution and the exported
file type. It is a versioned JSON file (``schema_version``), documented in
``docs/formats.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from profilers.errors import ProfilerError
from profilers.schema import validate_versioned

DEVICE_SCHEMA_VERSION = 1
BackendName = Literal["onnxruntime", "openvino", "tflite", "torch"]

# The kit format each backend reads. OpenVINO reads ONNX itself, and ONNX cells export
# ~10x faster than IR ones.
KIT_FORMAT: dict[str, str] = {
    "onnxruntime": "onnx", "openvino": "onnx", "tflite": "tflite", "torch": "pt2",
}


class DeviceError(ProfilerError):
    """A device profile file that is missing, not JSON, or fails validation."""


class DeviceProfile(BaseModel):
    """One target device.

    Example:
        >>> DeviceProfile(name="pi4", backend="tflite", threads=4).kit_format
        'tflite'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = DEVICE_SCHEMA_VERSION
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    backend: BackendName
    hardware: str = Field(default="", max_length=500,
                          description="Free text: board, SoC, accelerator.")
    threads: int = Field(default=1, ge=1, le=256)
    precision: Literal["fp32", "int8"] = "fp32"
    device: str | None = Field(default=None, max_length=50,
                               description="Runtime device name: CPU, GPU, NPU, cuda:0.")
    delegate: str | None = Field(default=None, max_length=500,
                                 description="TFLite external delegate library on the board.")
    resolution: int = Field(default=224, ge=16, le=1024,
                            description="Input height and width the deployed model takes.")

    @property
    def kit_format(self) -> str:
        return KIT_FORMAT[self.backend]


def load_device(path: str | Path) -> DeviceProfile:
    """Read and validate a device profile JSON file; `DeviceError` names what is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DeviceError(f"device file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DeviceError(f"device file {path} is not readable JSON: {err}") from None
    try:
        return validate_versioned(data, DeviceProfile, expected=DEVICE_SCHEMA_VERSION,
                                  what=f"device file {path}")
    except ValueError as err:
        raise DeviceError(f"device file {path}: {err}") from None

"""Session fixtures for the profilers tests: model files per format, and kits made from them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from profilers.formats import write_kit
from tests.profilers.builders import SPECS, kit_manifest, make_model

ModelFiles = Callable[[str], dict[str, Path]]


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> ModelFiles:
    """``model_files(fmt)`` -> {"small", "big", "arch"} -> file, made once per session."""
    made: dict[str, dict[str, Path]] = {}

    def files(fmt: str) -> dict[str, Path]:
        if fmt not in made:
            folder = tmp_path_factory.mktemp(f"models-{fmt}")
            made[fmt] = {name: make_model(fmt, name, folder) for name in SPECS}
        return made[fmt]

    return files


@pytest.fixture(scope="session")
def make_kit(
    model_files: ModelFiles, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """``make_kit(fmt)`` -> a kit zip with two cells and one arch in that format."""
    kits: dict[str, Path] = {}

    def make(fmt: str) -> Path:
        if fmt not in kits:
            manifest, mapping = kit_manifest(fmt, model_files(fmt))
            kits[fmt] = tmp_path_factory.mktemp(f"kit-{fmt}") / "kit.zip"
            write_kit(kits[fmt], manifest, mapping)
        return kits[fmt]

    return make

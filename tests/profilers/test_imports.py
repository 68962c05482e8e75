"""The board-side runner imports the standard library, numpy, pydantic and ONE runtime only.

Each check runs ``python -m profilers run`` in a fresh interpreter and reads
``sys.modules`` at exit (an atexit hook writes it), so nothing imported by pytest or by
another test can hide an import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from profilers.base import BackendInfo
from tests.profilers.builders import backend_params

REPO = Path(__file__).resolve().parents[2]
HWNAS_PACKAGES = {"spaces", "models", "latency", "search", "service"}
CORE = {
    "numpy",
    "pydantic",
    "pydantic_core",
    "typing_extensions",
    "typing_inspection",
    "annotated_types",
}
# Modules that are not packages of their own: numpy.random's Cython runtime and the data
# module of the standard library's sysconfig.
INTERNALS = ("_cython_", "cython_runtime", "_sysconfigdata_")
RUNTIMES = {"onnxruntime", "openvino", "ai_edge_litert", "tflite_runtime", "torch"}

MODULES_AT_EXIT = """
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
"""


def _top_level_modules(tmp_path: Path, code: str, *args: str) -> set[str]:
    """Top-level names in ``sys.modules`` when a fresh interpreter running ``code`` exits."""
    out = tmp_path / f"modules-{len(list(tmp_path.iterdir()))}.json"
    subprocess.run(
        [sys.executable, "-c", MODULES_AT_EXIT + code, str(out), *args],
        cwd=REPO,
        capture_output=True,
        check=False,
        timeout=300,
    )
    return {name.split(".")[0] for name in json.loads(out.read_text())}


@pytest.mark.parametrize(
    "info",
    [p for p in backend_params(real_models=True) if p.id != "torch"],  # type: ignore[attr-defined]
)
def test_runner_imports_only_its_runtime(
    info: BackendInfo, make_kit: Callable[[str], Path], tmp_path: Path
) -> None:
    kit = make_kit(info.formats[0])
    run = (
        "import runpy; sys.argv[0] = 'profilers'; "
        "runpy.run_module('profilers', run_name='__main__')"
    )
    flags = ["--runs", "4", "--rounds", "2", "--quiet", "-o", str(tmp_path / "m.json")]
    used = _top_level_modules(tmp_path, run, "run", str(kit), "--backend", info.name, *flags)
    assert (tmp_path / "m.json").exists(), "the runner did not finish"

    runtime = _top_level_modules(
        tmp_path, f"from profilers.base import get_backend; get_backend({info.name!r})"
    )
    bare = _top_level_modules(tmp_path, "")
    assert "torch" not in used
    assert not used & HWNAS_PACKAGES
    assert not (used & RUNTIMES) - runtime, "another runtime was imported"
    unexpected = {
        name
        for name in used - runtime - bare - CORE - set(sys.stdlib_module_names) - {"profilers"}
        if not name.startswith(INTERNALS)
    }
    assert not unexpected, f"the runner imports more than its runtime: {sorted(unexpected)}"


def test_importing_profilers_imports_no_runtime(tmp_path: Path) -> None:
    used = _top_level_modules(
        tmp_path, "import profilers, profilers.base, profilers.formats, profilers.runner"
    )
    assert not used & (RUNTIMES | HWNAS_PACKAGES)

"""The `hwnas` CLI: listing, sampling, and one readable error line for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from service.cli import main
from spaces import get_space


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_spaces_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spaces", "list")
    assert code == 0
    assert out.splitlines()[0].startswith("mbv2") and "nb201" in out
    code, out, _ = run(capsys, "spaces", "show", "mbv2", "-p", "resolution=32")
    assert code == 0
    assert "resolution=32" in out
    assert "s6.0   in    4x4x192 out    4x4x320 s1 36 choices" in out


def test_spaces_sample_is_seeded_and_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "spaces", "sample", "nb201", "--seed", "5", "-n", "4")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 4
    space = get_space("nb201")
    assert all(space.encode(space.decode(line)) == line for line in lines)
    assert run(capsys, "spaces", "sample", "nb201", "--seed", "5", "-n", "4")[1] == out


BAD = [
    (["spaces", "show", "resnet"], "error: unknown space 'resnet' (known: mbv2, nb201)"),
    (["spaces", "sample", "mbv2", "-p", "width"], "error: --param 'width': expected KEY=VALUE"),
    (["spaces", "sample", "mbv2", "-p", "width=wide"],
     "error: --param width: expected float, got 'wide'"),
    (["spaces", "sample", "mbv2", "-p", "depth=3"],
     "error: space 'mbv2' has no parameter 'depth' (it takes: resolution, width, classes)"),
    (["spaces", "sample", "mbv2", "-p", "classes=0"],
     "error: classes must be a positive integer, got 0"),
    (["build", "mbv2", "k3e6-relu,skip"], "error: mbv2 arch string has 2 ops, the space has 21"),
    (["build", "mbv2", ",".join(["skip"] * 21)],
     "error: slot s1.0: op 'skip' is not allowed here"),
    (["build", "mbv2", ",".join(["k4e6-relu"] * 21)],
     "error: slot s1.0: 'k4e6-relu' is not an mbv2 op"),
    (["build", "nb201", "|nor_conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|"],
     "error: nb201 edge 1<-0: op 'nor_conv_5x5' is not allowed here"),
    (["build", "nb201", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--export", "pdf"],
     "error: --export: unknown format 'pdf'"),
]


@pytest.mark.parametrize(("argv", "message"), BAD)
def test_bad_input_gives_one_line_and_nonzero_exit(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(message)


def test_bad_calibration_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "calib.npy"
    np.save(bad, np.zeros((4, 3, 8, 8), dtype=np.float32))
    arch = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"
    code, _, err = run(capsys, "build", "nb201", arch, "--export", "tflite-int8",
                       "--calibration", str(bad), "-o", str(tmp_path / "out"))
    assert code == 2
    assert err.strip() == (f"error: --calibration {bad}: expected shape (N, 3, 32, 32), "
                           "got (4, 3, 8, 8)")
    code, _, err = run(capsys, "build", "nb201", arch, "--export", "tflite-int8",
                       "--calibration", str(tmp_path / "missing.npz"))
    assert code == 2 and "no such file" in err


def test_console_script_exit_code() -> None:
    script = Path(sys.executable).with_name("hwnas")
    proc = subprocess.run([script, "spaces", "show", "x"], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: unknown space 'x' (known: mbv2, nb201)"
    assert "Traceback" not in proc.stderr


def test_build_exports_onnx_and_checks_it(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    space = get_space("mbv2", resolution=32, width=0.25, classes=10)
    arch = space.encode(space.sample(np.random.default_rng(0)))
    code, out, err = run(capsys, "build", "mbv2", arch, "-p", "resolution=32", "-p",
                         "width=0.25", "-p", "classes=10", "--export", "onnx",
                         "-o", str(tmp_path))
    assert code == 0, err
    report = json.loads((tmp_path / "build.json").read_text())
    assert report["arch"] == arch
    assert report["files"]["onnx"]["ok"] is True
    assert report["files"]["onnx"]["rel_err"] < 1e-4
    assert (tmp_path / "model.onnx").stat().st_size == report["files"]["onnx"]["bytes"]
    assert "onnx" in out and "ok" in out


@pytest.mark.slow
def test_build_mbv2_to_onnx_and_tflite_runs_within_tolerance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = get_space("mbv2", resolution=32, width=0.25, classes=10)
    arch = space.encode(space.sample(np.random.default_rng(4)))
    params = ["-p", "resolution=32", "-p", "width=0.25", "-p", "classes=10"]
    code, _, err = run(capsys, "build", "mbv2", arch, *params,
                         "--export", "onnx,tflite,tflite-int8,openvino", "-o", str(tmp_path))
    assert code == 0, err
    files = json.loads((tmp_path / "build.json").read_text())["files"]
    assert set(files) == {"onnx", "tflite", "tflite-int8", "openvino"}
    for fmt in ("onnx", "tflite", "openvino"):
        assert files[fmt]["rel_err"] < 1e-4, fmt
    assert files["tflite-int8"]["rel_err"] < 0.35
    assert files["tflite-int8"]["bytes"] < 0.5 * files["tflite"]["bytes"]
    for fmt, name in (("onnx", "model.onnx"), ("tflite", "model.tflite")):
        assert files[fmt]["bytes"] == (tmp_path / name).stat().st_size
    ir = (tmp_path / "model.xml").stat().st_size + (tmp_path / "model.bin").stat().st_size
    assert files["openvino"]["bytes"] == ir
    assert all((tmp_path / f["path"]).exists() for f in files.values())


def test_profile_writes_measurements_and_reuses_its_kit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["profile", "--backend", "onnxruntime", "--space", "nb201", "-p", "resolution=16",
            "-p", "channels=8", "-p", "cells=1", "--archs", "1", "-o", str(tmp_path)]
    code, _, err = run(capsys, *args)
    assert code == 0, err
    doc = json.loads((tmp_path / "measurements.json").read_text())
    space = get_space("nb201", resolution=16, channels=8, cells=1)
    assert {m["key"] for m in doc["cells"]} == {c.key for c in space.cells()}
    assert len(doc["archs"]) == 1 and doc["complete"] is True
    assert all(m["median_ms"] > 0 and m["threads"] == 1 for m in doc["cells"])
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert "reusing" in out


def test_profile_bad_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "profile", "--backend", "tensorrt", "--space", "nb201",
                       "-o", str(tmp_path))
    assert code == 2
    assert err.strip() == ("error: --backend: unknown backend 'tensorrt' "
                           "(known: onnxruntime, openvino, tflite, torch)")

"""`hwnas predictor fit|eval` and `hwnas predict`, and one `error:` line for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from profilers.formats import save_measurements
from service.cli import main

from .conftest import MBV2, Profile, simulated_measurements


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_fit_eval_predict(sim_dir: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    pred = tmp_path / "fox.json"
    code, out, err = run(capsys, "predictor", "fit", "--measurements",
                         str(sim_dir / "measurements.json"), "--e2e", str(sim_dir / "train.json"),
                         "--kind", "fox", "-o", str(pred))
    assert code == 0, err
    assert "lut_ms" in out and json.loads(pred.read_text())["kind"] == "fox"
    code, out, err = run(capsys, "predictor", "eval", str(pred), "--e2e",
                         str(sim_dir / "held.csv"))
    assert code == 0, err
    assert out.startswith("fox") and "+-10%" in out
    code, out, _ = run(capsys, "predictor", "eval", str(pred), "--e2e",
                       str(sim_dir / "held.json"), "--json")
    assert json.loads(out)["archs"] == 100
    arch = "k3e6-relu," * 20 + "k3e6-relu"
    code, out, err = run(capsys, "predict", str(pred), arch, arch.replace("k3e6", "k5e6"))
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].endswith(arch) and " ms +- " in lines[0]


def test_fit_from_csv_alone_and_transfer(sim_dir: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "predictor", "fit", "--e2e", str(sim_dir / "train.csv"),
                         "--space", "mbv2", "--kind", "residual", "-o", str(tmp_path / "r.json"))
    assert code == 0, err
    assert "mflops" in out
    code, out, err = run(capsys, "predictor", "fit", "-m", str(sim_dir / "measurements.json"),
                         "--e2e", str(sim_dir / "train.csv"), "--e2e-limit", "10",
                         "-o", str(tmp_path / "t.json"))
    assert code == 0, err
    assert json.loads((tmp_path / "t.json").read_text())["e2e_samples"] == 10
    code, _, err = run(capsys, "predictor", "fit", "-m", str(sim_dir / "measurements.json"),
                       "--kind", "lut", "--statistic", "p10_ms", "-o", str(tmp_path / "l.json"))
    assert code == 0, err
    assert json.loads((tmp_path / "l.json").read_text())["lut"]["statistic"] == "p10_ms"


@pytest.mark.slow
def test_fit_from_a_real_profile(nb201_profile: Profile, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The kit beside measurements.json names the measured whole archs."""
    code, _out, err = run(capsys, "predictor", "fit", "-m", str(nb201_profile.measurements),
                         "--kind", "fox", "-o", str(tmp_path / "f.json"))
    assert code == 0, err
    assert json.loads((tmp_path / "f.json").read_text())["e2e_samples"] == 12


def _bad_inputs(sim_dir: Path, tmp: Path) -> dict[str, tuple[list[str], str]]:
    other = tmp / "other.json"
    save_measurements(other, simulated_measurements(backend="openvino"))
    small = tmp / "small.json"
    save_measurements(small, simulated_measurements(params={**MBV2, "resolution": 192}))
    nan = tmp / "nan.csv"
    nan.write_text("arch,latency_ms\n" + "k3e6-relu," * 21 + "nan\n")
    neg = tmp / "neg.json"
    data = json.loads((sim_dir / "train.json").read_text())
    data["samples"][3]["latency_ms"] = -1.0
    neg.write_text(json.dumps(data))
    badarch = tmp / "badarch.csv"
    badarch.write_text("arch,latency_ms\n" + "k9e6-relu," * 21 + "3.0\n")
    fit = ["predictor", "fit", "-o", str(tmp / "p.json")]
    m = ["-m", str(sim_dir / "measurements.json")]
    train = str(sim_dir / "train.json")
    return {
        "other backend": ([*fit, "-m", str(other), "--e2e", train], "backend 'onnxruntime'"),
        "other space": ([*fit, "-m", str(small), "--e2e", train], "space parameters"),
        "nan": (fit + m + ["--e2e", str(nan)], "finite and > 0"),
        "negative": (fit + m + ["--e2e", str(neg)], "finite number > 0"),
        "bad arch": (fit + m + ["--e2e", str(badarch)], "line 2"),
        "missing file": ([*fit, "-m", str(tmp / "none.json")], "no such file"),
        "unknown kind": (fit + m + ["--kind", "magic"], "unknown predictor kind"),
        "no e2e": (fit + m + ["--kind", "fox"], "at least 3"),
        "csv without space": ([*fit, "--e2e", str(sim_dir / "train.csv")], "space"),
        "predict bad arch": (["predict", str(tmp / "lut.json"), "k3e6-relu"], "21 slots"),
        "eval missing": (["predictor", "eval", str(tmp / "lut.json"), "--e2e",
                          str(tmp / "x.csv")], "no such file"),
    }


BAD = ("other backend", "other space", "nan", "negative", "bad arch", "missing file",
       "unknown kind", "no e2e", "csv without space", "predict bad arch", "eval missing")


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_error_line(case: str, sim_dir: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predictor", "fit", "-m", str(sim_dir / "measurements.json"), "--kind", "lut",
                 "-o", str(tmp_path / "lut.json")]) == 0
    capsys.readouterr()
    argv, message = _bad_inputs(sim_dir, tmp_path)[case]
    code, _, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err

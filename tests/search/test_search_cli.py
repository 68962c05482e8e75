"""`hwnas search` end to end on a small nb201 space: profile, search, export, time, report.

The real pipeline at a size that takes seconds: this machine is profiled on onnxruntime
(kit, board runner, FOX-NAS fit), the params estimator scores, the winner is exported to
ONNX and timed on onnxruntime.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from search.api import SearchSpec, run_search
from service.cli import main

SMALL = ["--space", "nb201", "-p", "channels=8", "-p", "cells=1", "--resolution", "16"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def search(capfd: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["search", *argv])
    out, err = capfd.readouterr()
    return code, out, err


def test_search_writes_a_model_and_a_report(capfd: pytest.CaptureFixture[str], cache: Path,
                                           tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, err = search(capfd, *SMALL, "--backend", "onnxruntime", "--budget-ms", "50",
                               "--estimator", "params", "--evaluations", "12", "--keep", "3",
                               "--export", "onnx", "--cache", str(cache), "-o", str(out))
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    target = report["targets"][0]
    assert target["within_budget_predicted"] and target["measured"]["measured"]
    # The default 1-sigma margin: the budget was checked above the prediction.
    assert target["bound_ms"] == pytest.approx(
        target["predicted_ms"] + target["predicted_std_ms"]) and target["bound_ms"] <= 50
    assert target["measured"]["median_ms"] > 0 and target["error_vs_predicted"] is not None
    ref = target["measured"]["reference"]  # the profiling run's reference cell, timed beside
    assert target["measured"]["drift_corrected_ms"] == pytest.approx(
        target["measured"]["median_ms"] * ref["profiled_ms"] / ref["now_ms"])
    assert report["files"]["onnx"]["ok"] and (out / "model.onnx").exists()
    assert [s["name"] for s in report["stages"]] == ["stage1", "stage2"]
    assert all(2 <= len(slot["kept"]) <= 3 for slot in report["tailored"])
    assert report["trained"] is False and report["pareto"]
    assert "## Latency" in (out / "report.md").read_text()
    assert f"best {report['arch']}" in stdout
    # A second search on the same device reuses the cached predictor (no new profiling).
    assert len(list(cache.iterdir())) == 1



class _Closable:
    """An estimator wrapper (as the Ray one is) that notes what the search had said when
    it was closed, and refuses to score after."""

    def __init__(self, inner: Any, said: list[str]) -> None:
        self.inner, self.said, self.closed_after = inner, said, None

    def score(self, archs: Any) -> Any:
        assert self.closed_after is None, "scored after close"
        return self.inner.score(archs)

    def describe(self) -> str:
        return self.inner.describe()

    def close(self) -> None:
        self.closed_after = list(self.said)


def test_wrapped_estimator_is_closed_once_the_search_ends(
        capfd: pytest.CaptureFixture[str], cache: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    code, _, err = search(capfd, *SMALL, "--backend", "onnxruntime", "--budget-ms", "50",
                          "--estimator", "params", "--evaluations", "8", "--export", "onnx",
                          "--cache", str(cache), "-o", str(first))
    assert code == 0, err
    spec = SearchSpec.model_validate_json((first / "spec.json").read_text())
    said: list[str] = []
    wrappers: list[_Closable] = []

    def wrap(estimator: Any) -> _Closable:
        wrappers.append(_Closable(estimator, said))
        return wrappers[-1]

    result = run_search(spec, tmp_path / "again", estimator_wrapper=wrap,
                        progress=lambda _, message: said.append(message))
    assert result.arch == json.loads((first / "report.json").read_text())["arch"]
    (wrapper,) = wrappers
    assert wrapper.closed_after is not None and wrapper.closed_after
    assert not any(m.startswith(("exporting", "timing")) for m in wrapper.closed_after)
    assert any(m.startswith("exporting") for m in said)

def test_two_devices_one_arch_meets_both(capfd: pytest.CaptureFixture[str], cache: Path,
                                         tmp_path: Path) -> None:
    devices = []
    for name, backend in (("ort", "onnxruntime"), ("ov", "openvino")):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"schema_version": 1, "name": name, "backend": backend,
                                    "resolution": 16}))
        devices += ["--device", str(path)]
    out = tmp_path / "out"
    code, _, err = search(capfd, "--space", "nb201", "-p", "channels=8", "-p", "cells=1",
                          *devices, "--budget-ms", "50", "--budget-ms", "40",
                          "--estimator", "params", "--evaluations", "8", "--export", "onnx",
                          "--cache", str(cache), "-o", str(out))
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert [(t["device"], t["budget_ms"]) for t in report["targets"]] == [("ort", 50.0),
                                                                         ("ov", 40.0)]
    assert all(t["within_budget_predicted"] for t in report["targets"])
    # The one ONNX file is timed on both runtimes.
    assert all(t["measured"]["file"] == "model.onnx" for t in report["targets"])
    assert all(set(p["latency_ms"]) == {"ort", "ov"} for p in report["pareto"])


@pytest.mark.parametrize(("argv", "needle"), [
    (["--budget-ms", "5", "--budget-ms", "6"], "--budget-ms: give one budget per device"),
    (["--budget-ms", "5", "--strategy", "nope"], "--strategy: unknown strategy 'nope'"),
    (["--budget-ms", "5", "--estimator", "nope"], "--estimator: unknown estimator 'nope'"),
    (["--budget-ms", "5", "--backend", "tensorrt"], "--backend: unknown backend"),
    (["--budget-ms", "-1"], "budget_ms: Input should be greater than 0"),
    (["--budget-ms", "5", "--margin-sigmas", "-1"], "margin_sigmas: Input should be greater"),
    (["--budget-ms", "5", "-p", "classes=3"], "space_params: 'classes' is set by the device"),
])
def test_bad_input_is_one_line(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                               argv: list[str], needle: str) -> None:
    code, _, err = search(capfd, *SMALL, *argv, "-o", str(tmp_path / "o"))
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("error: ") and needle in err


def test_bad_device_file(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps({"schema_version": 1, "name": "pi", "backend": "onnxruntime",
                               "threads": 0}))
    code, _, err = search(capfd, "--device", str(dev), "--budget-ms", "5", "-o",
                          str(tmp_path / "o"))
    assert code == 2 and "threads" in err


def test_budget_below_the_fastest_arch(capfd: pytest.CaptureFixture[str], cache: Path,
                                       tmp_path: Path) -> None:
    code, _, err = search(capfd, *SMALL, "--backend", "onnxruntime", "--budget-ms", "0.0001",
                          "--estimator", "params", "--cache", str(cache), "-o",
                          str(tmp_path / "o"))
    assert code == 2
    assert "fastest reachable latency is local-onnxruntime:" in err


def test_search_trains_and_ships_the_most_accurate(capfd: pytest.CaptureFixture[str],
                                                   cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = [*SMALL, "--backend", "onnxruntime", "--budget-ms", "50", "--estimator", "params",
            "--evaluations", "8", "--keep", "3", "--export", "onnx", "--cache",
            str(cache), "--train-epochs", "1", "--train-top", "2", "-o", str(out)]
    code, stdout, err = search(capfd, *argv)
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["schema_version"] == 2 and report["trained"]
    accuracy = report["training"]["val_accuracy"]
    assert set(accuracy) == {"torch", "onnx"}
    # Deployed at 16x16, below 64 px: trained there too, and the files are run at 16x16.
    assert report["training"]["preprocessing"] | {"resolution": 16, "train_resolution": 16,
                                                  "final_resolution": 16} \
        == report["training"]["preprocessing"]
    candidates = report["candidates"]
    assert len(candidates) == 2 and [c["chosen"] for c in candidates].count(True) == 1
    chosen = next(c for c in candidates if c["chosen"])
    assert chosen["arch"] == report["arch"] == report["training"]["arch"]
    assert chosen["val_accuracy"] == max(c["val_accuracy"] for c in candidates)
    card = (out / "model_card.md").read_text()
    assert report["arch"] in card and "strategy `evolution`" in card
    assert "hwnas search --space nb201" in card and "--train-epochs 1" in card
    assert "val accuracy torch" in stdout
    # The spec the search wrote replays it: everything is resumed, nothing retrained.
    code, _, err = search(capfd, "--spec", str(out / "spec.json"), "-o", str(out))
    assert code == 0, err
    again = json.loads((out / "report.json").read_text())
    assert again["arch"] == report["arch"] and again["candidates"] == candidates


def test_spec_alone(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text("{}")
    code, _, err = search(capfd, "--spec", str(spec), "--budget-ms", "5", "-o",
                          str(tmp_path / "o"))
    assert code == 2 and "--spec: give the spec file alone" in err
    code, _, err = search(capfd, "--spec", str(spec), "-o", str(tmp_path / "o"))
    assert code == 2 and "schema_version" in err

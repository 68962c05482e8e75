"""``python -m profilers``: end to end on real kits, resuming, and one-line errors for bad input."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import profilers.base
import profilers.runner
from profilers.base import BackendInfo, register_backend
from profilers.formats import (
    MANIFEST_NAME,
    MeasurementsFile,
    load_measurements,
    save_measurements,
    write_kit,
)
from profilers.protocol import ReferenceProbe
from profilers.runner import main
from tests.profilers.builders import KIT_ENTRIES, backend_params, info_of, kit_manifest
from tests.profilers.conftest import ModelFiles

MakeKit = Callable[[str], Path]
QUICK = ["--runs", "10", "--rounds", "2"]


def _run(capfd: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    """Run the CLI in this process; returns its exit code and everything written to fd 2."""
    code = main([str(arg) for arg in args])
    return code, capfd.readouterr().err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("info", backend_params(real_models=True))
def test_measures_a_kit(
    info: BackendInfo, make_kit: MakeKit, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "measurements.json"
    code, err = _run(
        capfd, "run", make_kit(info.formats[0]), "--backend", info.name, *QUICK, "-o", out
    )
    assert code == 0, err
    doc = load_measurements(out)
    assert doc.complete
    assert [m.key for m in doc.cells] == ["cell-small", "cell-big"]
    assert [m.key for m in doc.archs] == ["arch-0"]
    assert doc.settings.backend == info.name and doc.settings.threads == 1
    # Both cells are far below 2 ms, so the longer one is the reference.
    assert doc.reference_key == "cell-big" and len(doc.reference) >= 2
    for m in (*doc.cells, *doc.archs):
        assert 0 < m.p10_ms <= m.median_ms <= m.p90_ms
        assert m.reference_ms is not None and min(doc.reference) <= m.reference_ms
        fixed = doc.drift_corrected(m)
        assert fixed.median_ms / m.median_ms == pytest.approx(fixed.reference_ms / m.reference_ms)
        assert fixed.reference_ms == sorted(doc.reference)[len(doc.reference) // 2]
        assert m.runs >= 10 and m.threads == 1 and m.precision == "fp32"
    assert "measured 2 LUT entries and 1 archs" in err


@pytest.fixture
def measured(make_kit: MakeKit, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> Path:
    """A complete measurements file of the onnx kit, on onnxruntime."""
    out = tmp_path / "measurements.json"
    code, err = _run(capfd, "run", make_kit("onnx"), "--backend", "onnxruntime", *QUICK, "-o", out)
    assert code == 0, err
    return out


def test_resume_skips_measured_keys(
    measured: Path, make_kit: MakeKit, capfd: pytest.CaptureFixture[str]
) -> None:
    doc = load_measurements(measured)
    first = doc.cells[0].model_copy(update={"median_ms": 123.0, "p10_ms": 100.0, "p90_ms": 150.0})
    partial = doc.model_copy(update={"cells": [first], "archs": [], "complete": False})
    measured.unlink()
    save_measurements(measured, partial)

    # --retries 0: a quieter machine now would otherwise re-measure the saved entry.
    args = ("run", make_kit("onnx"), "--backend", "onnxruntime", *QUICK, "--retries", "0")
    code, err = _run(capfd, *args, "-o", measured)
    assert code == 0, err
    resumed = load_measurements(measured)
    assert resumed.complete
    assert resumed.cells[0].median_ms == 123.0  # not measured again
    assert [m.key for m in (*resumed.cells, *resumed.archs)] == [key for key, _, _ in KIT_ENTRIES]
    assert len(resumed.reference) > len(partial.reference)


def test_interrupted_run_keeps_finished_chunks(
    make_kit: MakeKit,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    measure_many = profilers.runner.measure_many

    def interrupt_second_chunk(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return measure_many(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(profilers.runner, "measure_many", interrupt_second_chunk)
    out = tmp_path / "m.json"
    args = ("run", make_kit("onnx"), "--backend", "onnxruntime", *QUICK, "--chunk", "2", "--quiet")
    args = (*args, "--retries", "0", "-o", out)  # no re-timing of the kept chunk on resume
    code, err = _run(capfd, *args)
    assert code == 130
    assert "2 of 3 entries are saved" in _one_error_line(err)
    partial = load_measurements(out)
    assert partial.keys() == {"cell-small", "arch-0"} and not partial.complete  # chunk 1 of 2

    monkeypatch.setattr(profilers.runner, "measure_many", measure_many)
    code, err = _run(capfd, *args)
    assert code == 0, err
    assert load_measurements(out).cells[0] == partial.cells[0]


def _slowed_calls(monkeypatch: pytest.MonkeyPatch, slowdown: dict[int, float]) -> list[float]:
    """Make the n-th chunk measured look timed on a slow machine: the reference medians its
    probe took are scaled by ``slowdown[n]`` (1-based). Returns each call's level."""
    levels: list[float] = []
    measure_many = profilers.runner.measure_many

    def slowed(*args: object, reference: ReferenceProbe, **kwargs: object) -> object:
        first = len(reference.medians_ms)
        stats = measure_many(*args, reference=reference, **kwargs)  # type: ignore[arg-type]
        factor = slowdown.get(len(levels) + 1, 1.0)
        reference.medians_ms[first:] = [m * factor for m in reference.medians_ms[first:]]
        levels.append(float(np.median(reference.medians_ms[first:])))
        return stats

    monkeypatch.setattr(profilers.runner, "measure_many", slowed)
    return levels


def _run_split(
    capfd: pytest.CaptureFixture[str], make_kit: MakeKit, tmp_path: Path, *flags: str
) -> tuple[MeasurementsFile, str]:
    """Measure the onnx kit in chunks [cell-small, arch-0] and [cell-big], no settling.

    Slow means twice as slow as the quietest here: the tests slow a chunk 10x, and this
    VM's own noise on models this small (up to ~50%) must not trigger a retry.
    """
    out = tmp_path / "m.json"
    args = ("run", make_kit("onnx"), "--backend", "onnxruntime", *QUICK, "--chunk", "2")
    code, err = _run(capfd, *args, "--settle-s", "0", "--slow-above", "1", *flags, "-o", out)
    assert code == 0, err
    return load_measurements(out), err


def test_slow_chunk_is_measured_again(
    make_kit: MakeKit,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    levels = _slowed_calls(monkeypatch, {1: 10.0})
    doc, err = _run_split(capfd, make_kit, tmp_path, "--retries", "1")
    assert len(levels) == 3  # two chunks, then the slow first chunk again
    assert "re-measuring 2 entries timed while the machine was slow" in err
    by_key = {m.key: m for m in (*doc.cells, *doc.archs)}
    for key in ("cell-small", "arch-0"):
        assert by_key[key].reference_ms == pytest.approx(levels[2])
        assert by_key[key].timestamp > by_key["cell-big"].timestamp
    assert by_key["cell-big"].reference_ms == pytest.approx(levels[1])
    assert len(doc.reference) > 3 and doc.complete


def test_slow_arch_probe_alone_is_measured_again(
    make_kit: MakeKit,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A spell that slows whole archs but not the small reference cell: the whole-arch
    # probe (timed outside measure_many, at each chunk's start and end) sees it.
    outside = {"samples": 0}
    measure_many, sample = profilers.runner.measure_many, ReferenceProbe.sample
    calls: list[int] = []
    inside = False

    def probe_sample(self: ReferenceProbe, runs: int) -> float:
        median = sample(self, runs)
        if not inside:
            outside["samples"] += 1
            if outside["samples"] <= 2:  # the first chunk's start and end
                self.medians_ms[-1] = median = median * 10
        return median

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal inside
        calls.append(1)
        inside = True
        try:
            return measure_many(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            inside = False

    monkeypatch.setattr(ReferenceProbe, "sample", probe_sample)
    monkeypatch.setattr(profilers.runner, "measure_many", counted)
    doc, err = _run_split(capfd, make_kit, tmp_path, "--retries", "1")
    assert len(calls) == 3 and "re-measuring 2 entries" in err and "probe arch-0" in err
    assert doc.probe_key == "arch-0" and len(doc.probe) == 6  # start and end of 3 chunks
    by_key = {m.key: m for m in (*doc.cells, *doc.archs)}
    slow = (doc.probe[0] + doc.probe[1]) / 2
    for key in ("cell-small", "arch-0"):
        assert by_key[key].probe_ms is not None and by_key[key].probe_ms < slow / 3


@pytest.mark.parametrize(
    ("slowdown", "flags", "calls"),
    [
        ({1: 10.0, 3: 20.0}, ("--retries", "1"), 3),  # and the retry was slower still
        ({1: 10.0}, ("--retries", "0"), 2),
    ],
    ids=["slower-retry", "no-retries"],
)
def test_slow_record_is_kept(
    slowdown: dict[int, float],
    flags: tuple[str, ...],
    calls: int,
    make_kit: MakeKit,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    levels = _slowed_calls(monkeypatch, slowdown)
    doc, err = _run_split(capfd, make_kit, tmp_path, *flags)
    assert len(levels) == calls
    assert ("re-measuring" in err) == (calls > 2)
    assert doc.cells[0].key == "cell-small"
    assert doc.cells[0].reference_ms == pytest.approx(levels[0])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--threads", "2"], "threads 1 != 2"),
        (["--runs", "12"], "runs 10 != 12"),
        (["--no-resume"], "exists; choose another -o"),
    ],
)
def test_other_settings_never_overwrite(
    flags: list[str],
    message: str,
    measured: Path,
    make_kit: MakeKit,
    capfd: pytest.CaptureFixture[str],
) -> None:
    before = measured.read_bytes()
    code, err = _run(
        capfd, "run", make_kit("onnx"), "--backend", "onnxruntime", *QUICK, *flags, "-o", measured
    )
    assert code == 2
    assert message in _one_error_line(err)
    assert measured.read_bytes() == before


def _rewrite_manifest(kit: Path, dest: Path, change: Callable[[dict], None]) -> Path:
    with zipfile.ZipFile(kit) as source, zipfile.ZipFile(dest, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == MANIFEST_NAME:
                manifest = json.loads(data)
                change(manifest)
                data = json.dumps(manifest).encode()
            target.writestr(name, data)
    return dest


def _truncated(kit: Path, dest: Path) -> Path:
    dest.write_bytes(kit.read_bytes()[: kit.stat().st_size * 2 // 3])
    return dest


def _corrupt(kit: Path, dest: Path) -> Path:
    dest.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    return dest


def _wrong_version(kit: Path, dest: Path) -> Path:
    return _rewrite_manifest(kit, dest, lambda m: m.update(schema_version=7))


@pytest.mark.parametrize(
    ("break_kit", "message"),
    [
        (_corrupt, "not a readable zip"),
        (_truncated, "not a readable zip"),
        (_wrong_version, "kit manifest schema_version 7 is not supported (expected 1)"),
    ],
    ids=["corrupt", "truncated", "schema-version"],
)
def test_bad_kits(
    break_kit: Callable[[Path, Path], Path],
    message: str,
    measured: Path,
    make_kit: MakeKit,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    before = measured.read_bytes()
    bad = break_kit(make_kit("onnx"), tmp_path / "bad.zip")
    code, err = _run(capfd, "run", bad, "--backend", "onnxruntime", *QUICK, "-o", measured)
    assert code == 2
    assert message in _one_error_line(err)
    assert measured.read_bytes() == before


def test_refused_model_keeps_measured_entries(
    model_files: ModelFiles, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not an onnx model")
    manifest, mapping = kit_manifest("onnx", model_files("onnx"))
    mapping["cells/big.onnx"] = garbage
    kit = tmp_path / "kit.zip"
    write_kit(kit, manifest, mapping)
    out = tmp_path / "m.json"
    args = ("run", kit, "--backend", "onnxruntime", *QUICK, "--chunk", "2", "--quiet", "-o", out)
    code, err = _run(capfd, *args)
    assert code == 2
    assert "onnxruntime refused big.onnx" in _one_error_line(err)
    assert "(kit entry 'cell-big')" in err
    partial = load_measurements(out)
    assert partial.keys() == {"cell-small", "arch-0"} and not partial.complete


def test_backend_errors(
    make_kit: MakeKit,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(profilers.base, "_REGISTRY", dict(profilers.base._REGISTRY))

    @register_backend
    class NotInstalled:
        name = "not-installed"
        formats = ("onnx",)
        precisions = ("fp32",)
        install = "pip install not-installed-runtime"

        def available(self) -> tuple[bool, str]:
            return profilers.base.probe_import("not_installed_runtime", self.install)

    kit, out = make_kit("onnx"), tmp_path / "m.json"
    cases = [
        (["--backend", "nope"], "unknown backend 'nope'; known backends:"),
        (["--backend", "not-installed"], "not available: cannot import not_installed_runtime"),
        (["--backend", "tflite"], "backend tflite reads tflite kits"),
        (["--backend", "onnxruntime", "--precision", "bf16"], "cannot run precision 'bf16'"),
        (["--backend", "onnxruntime", "--delegate", tmp_path / "x.so"], "takes no delegate"),
        (["--backend", "onnxruntime", "--runs", "0"], "invalid protocol setting: runs"),
        (["--backend", "onnxruntime", "--retries", "-1"], "--retries must be >= 0, got -1"),
        (["--backend", "onnxruntime", "--slow-above", "0"], "--slow-above must be > 0, got 0"),
        (["--backend", "onnxruntime", "--settle-s", "nan"], "--settle-s must be >= 0, got nan"),
    ]
    for flags, message in cases:
        code, err = _run(capfd, "run", kit, *flags, "-o", out)
        assert code == 2, flags
        assert message in _one_error_line(err), flags
        assert not out.exists()


def test_usage_errors_are_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "kit.zip", "--backend"])
    assert exit_info.value.code == 2
    assert "expected one argument" in _one_error_line(capfd.readouterr().err)


@pytest.mark.skipif(not info_of("tflite").available, reason="no TFLite interpreter installed")
def test_unknown_delegate_path(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "garbage.tflite"
    model.write_bytes(b"not a model")
    manifest, _ = kit_manifest("tflite", dict.fromkeys(("small", "big", "arch"), model))
    kit = tmp_path / "kit.zip"
    write_kit(kit, manifest, {entry.file: model for entry in manifest.entries})
    code, err = _run(
        capfd, "run", kit, "--backend", "tflite", "--delegate", tmp_path / "libnope.so"
    )
    assert code == 2
    assert "tflite delegate not found" in _one_error_line(err)


def test_backends_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert {line.split()[0] for line in lines} >= {"onnxruntime", "openvino", "tflite", "torch"}

"""evaluate/accuracy on known numbers, and the whole pipeline on a real profiling run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from latency import (
    LookupTable,
    accuracy,
    evaluate,
    get_predictor,
    list_predictors,
    samples_from_measurements,
)
from profilers.formats import load_measurements, read_manifest

from .conftest import Profile


def test_accuracy_numbers() -> None:
    measured = np.array([10.0, 20.0, 30.0, 40.0])
    predicted = np.array([10.4, 21.5, 30.0, 30.0])  # 4%, 7.5%, 0%, 25%
    rep = accuracy("x", predicted, measured, noise_floor=0.01)
    assert rep.within_5pct == 0.5 and rep.within_10pct == 0.75
    assert rep.mape == pytest.approx((0.04 + 0.075 + 0 + 0.25) / 4)
    assert rep.rmse_ms == pytest.approx(np.sqrt((0.16 + 2.25 + 0 + 100) / 4))
    assert rep.kendall_tau == pytest.approx(5 / np.sqrt(6 * 5))  # tau-b, one tie
    assert "+-10%" in rep.line()
    with pytest.raises(ValueError, match="one length"):
        accuracy("x", predicted[:2], measured)


@pytest.mark.slow
def test_real_profile_pipeline(nb201_profile: Profile) -> None:
    doc = load_measurements(nb201_profile.measurements)
    lut = LookupTable.from_measurements(doc)
    samples = samples_from_measurements(doc, read_manifest(nb201_profile.kit))
    assert len(samples) == len(doc.archs) > 10 and samples.device == lut.device
    for kind in list_predictors():
        pred = get_predictor(kind).fit(lut=lut, samples=samples)
        rep = evaluate(pred, samples)
        assert rep.archs == len(samples) and rep.noise_floor is not None
        assert np.isfinite(rep.rmse_ms)
    plain = get_predictor("lut").fit(lut=lut)
    # the LUT sum of a real run is within a factor of two of the whole nets
    ratio = plain.predict(samples.archs) / samples.latency_ms
    assert 0.5 < float(np.median(ratio)) < 2.0


@pytest.mark.slow
def test_manifest_must_match(nb201_profile: Profile, tmp_path: Path) -> None:
    doc = load_measurements(nb201_profile.measurements)
    manifest = read_manifest(nb201_profile.kit).model_copy(update={"space": "other"})
    with pytest.raises(ValueError, match="not the one these measurements"):
        samples_from_measurements(doc, manifest)


def test_predict_needs_no_torch(sim_dir: Path, tmp_path: Path) -> None:
    lut = LookupTable.from_measurements(sim_dir / "measurements.json")
    from latency import load_samples

    get_predictor("residual").fit(lut=lut, samples=load_samples(sim_dir / "train.json")
                                  ).save(tmp_path / "p.json")
    code = (
        "import sys, json\n"
        "import latency\n"
        "from latency import load_predictor\n"
        f"p = load_predictor({str(tmp_path / 'p.json')!r})\n"
        "ms = p.predict([p.space.default()])\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'ms': float(ms[0]),"
        " 'sklearn': 'sklearn' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parents[2], check=True)
    result = json.loads(out.stdout)
    assert result == {"torch": False, "ms": pytest.approx(result["ms"]), "sklearn": False}
    assert result["ms"] > 0

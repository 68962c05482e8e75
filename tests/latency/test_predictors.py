"""Every registered predictor: fit, predict, std, save/load, describe, binding, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from latency import (
    LookupTable,
    NotFittedError,
    Samples,
    SpaceRef,
    evaluate,
    get_predictor,
    list_predictors,
    load_predictor,
    load_samples,
    transfer_fox,
)
from latency.ridge import fit_ridge
from latency.trees import fit_boosting, predict_boosting
from search.protocols import LatencyModel
from spaces import get_space

from .conftest import MBV2, simulated_measurements


@pytest.fixture(scope="module")
def lut(sim_dir: Path) -> LookupTable:
    return LookupTable.from_measurements(sim_dir / "measurements.json")


@pytest.fixture(scope="module")
def train(sim_dir: Path) -> Samples:
    return load_samples(sim_dir / "train.json")


@pytest.fixture(scope="module")
def held(sim_dir: Path) -> Samples:
    return load_samples(sim_dir / "held.json")


def fitted(kind: str, lut: LookupTable, train: Samples):
    pred = get_predictor(kind)
    return pred.fit(lut=lut if pred.needs_lut is not False else None,
                    samples=train if pred.min_samples else None)


def test_registry() -> None:
    assert {"lut", "fox", "residual", "flops"} <= set(list_predictors())
    with pytest.raises(ValueError, match="unknown predictor kind"):
        get_predictor("nope")


@pytest.mark.parametrize("kind", list_predictors())
def test_fit_predict_save_load(kind: str, lut: LookupTable, train: Samples, held: Samples,
                               tmp_path: Path) -> None:
    pred = fitted(kind, lut, train)
    assert isinstance(pred, LatencyModel)
    ms, std = pred.predict(held.archs), pred.predict_std(held.archs)
    assert ms.dtype == np.float64 and ms.shape == (len(held),) and np.all(ms > 0)
    assert np.all(np.isfinite(std)) and np.all(std > 0)
    space = pred.space
    assert np.array_equal(pred.predict(space.to_indices(held.archs)), ms)
    pred.save(tmp_path / "p.json")
    back = load_predictor(tmp_path / "p.json")
    assert back.kind == kind
    np.testing.assert_allclose(back.predict(held.archs), ms, rtol=1e-12)
    np.testing.assert_allclose(back.predict_std(held.archs), std, rtol=1e-12)
    assert kind in pred.describe()
    report = evaluate(back, held)
    assert report.archs == len(held) and 0 <= report.within_10pct <= 1


def test_fox_recovers_the_simulated_device(lut: LookupTable, train: Samples,
                                           held: Samples) -> None:
    fox = get_predictor("fox").fit(lut=lut, samples=train)
    plain = get_predictor("lut").fit(lut=lut)
    assert evaluate(fox, held).within_10pct >= 0.95
    assert evaluate(fox, held).mape < evaluate(plain, held).mape
    text = fox.describe()
    assert "lut_ms" in text and "se" in text and "leave-one-out" in text


@pytest.mark.parametrize("kind", ["fox", "residual"])
def test_fox_stays_within_the_fitted_corrections(kind: str, lut: LookupTable, train: Samples,
                                                 held: Samples, tmp_path: Path) -> None:
    fox = get_predictor(kind).fit(lut=lut, samples=train)
    plain = get_predictor("lut").fit(lut=lut)
    base = plain.predict(held.archs)
    measured = train.latency_ms / plain.predict(train.archs) - 1
    low, high = fox.correction
    assert (low, high) == pytest.approx((measured.min(), measured.max()))
    assert "of the LUT sum" in fox.describe()
    # A correction far outside what the fitted archs needed (as on archs unlike them) is
    # cut to the fitted range; a file without the bounds (written before) is not cut.
    fox.intercept += 100.0
    np.testing.assert_allclose(fox.predict(held.archs), base * (1 + high), rtol=1e-9)
    fox.intercept -= 200.0
    np.testing.assert_allclose(fox.predict(held.archs), base * (1 + low), rtol=1e-9)
    fox.save(tmp_path / "p.json")
    np.testing.assert_allclose(load_predictor(tmp_path / "p.json").predict(held.archs),
                               base * (1 + low), rtol=1e-9)
    doc = json.loads((tmp_path / "p.json").read_text())
    del doc["state"]["correction"]
    (tmp_path / "old.json").write_text(json.dumps(doc))
    assert np.all(load_predictor(tmp_path / "old.json").predict(held.archs) < base * (1 + low))


def test_fit_from_samples_alone(sim_dir: Path, held: Samples) -> None:
    space_ref = SpaceRef.of(get_space("mbv2", **MBV2))
    train = load_samples(sim_dir / "train.csv", space=space_ref)
    for kind in ("fox", "residual", "flops"):
        pred = get_predictor(kind).fit(samples=train)
        assert pred.lut is None and pred.device is None
        assert evaluate(pred, held).kendall_tau > 0.2


def test_transfer_fox(lut: LookupTable, train: Samples, held: Samples) -> None:
    fox = transfer_fox(lut, train, n=10, seed=3)
    assert fox.e2e_samples == 10 and evaluate(fox, held).within_10pct > 0.8
    with pytest.raises(ValueError, match="between 3"):
        transfer_fox(lut, train, n=2)


def test_bad_input(lut: LookupTable, train: Samples) -> None:
    with pytest.raises(ValueError, match="needs a LUT"):
        get_predictor("lut").fit(samples=train)
    with pytest.raises(ValueError, match="at least 10"):
        get_predictor("residual").fit(lut=lut, samples=train.subset(range(5)))
    with pytest.raises(NotFittedError):
        get_predictor("fox").predict([get_space("mbv2").default()])
    other = LookupTable.from_measurements(simulated_measurements(backend="openvino"))
    with pytest.raises(ValueError, match="backend 'onnxruntime'"):
        get_predictor("fox").fit(lut=other, samples=train)
    fox = get_predictor("fox").fit(lut=lut, samples=train)
    small = get_space("mbv2", resolution=32)
    with pytest.raises(ValueError, match="space parameters"):
        evaluate(fox, Samples(SpaceRef.of(small), train.archs, train.latency_ms))
    nb = get_space("nb201")
    with pytest.raises(ValueError, match="nb201"):
        evaluate(fox, Samples(SpaceRef.of(nb), [nb.default()], np.array([1.0])))
    with pytest.raises(ValueError, match="finite and > 0"):
        Samples(train.space, train.archs[:2], np.array([1.0, np.nan]))


def test_predictor_file_version(lut: LookupTable, tmp_path: Path) -> None:
    get_predictor("lut").fit(lut=lut).save(tmp_path / "p.json")
    data = json.loads((tmp_path / "p.json").read_text())
    data["schema_version"] = 2
    (tmp_path / "p.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="schema_version 2"):
        load_predictor(tmp_path / "p.json")


def test_ridge_loo_is_exact() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 4)), rng.normal(size=12)
    w = rng.uniform(0.5, 2, size=12)
    fit = fit_ridge(x, y, weights=w, alphas=(0.3, 1e9))
    assert fit.alpha in (0.3, 1e9)
    # exact leave-one-out, checked where refitting cannot change the penalty: no penalty
    ols = fit_ridge(x, y, weights=w, alphas=(0.0,))
    for i in range(12):
        keep = np.arange(12) != i
        alone = fit_ridge(x[keep], y[keep], weights=w[keep], alphas=(0.0,))
        assert y[i] - alone.predict(x[i : i + 1])[0] == pytest.approx(ols.loo_residuals[i])


def test_trees_reproduce_sklearn() -> None:
    from sklearn.ensemble import GradientBoostingRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = x[:, 0] ** 2 + x[:, 1]
    state = fit_boosting(x, y, seed=1)
    model = GradientBoostingRegressor(n_estimators=200, learning_rate=0.05, max_depth=2,
                                      min_samples_leaf=3, subsample=0.8, random_state=1)
    model.fit(x, y)
    probe = rng.normal(size=(40, 5))
    np.testing.assert_allclose(predict_boosting(state, probe), model.predict(probe), rtol=1e-9)
    json.dumps(state)

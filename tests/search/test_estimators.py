"""Every registered estimator, run for real on the bundled data with tiny nets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models import build, count_params
from search.data import load_dataset
from search.estimators import estimator_settings, get_estimator, list_estimators, zico_score
from search.protocols import AccuracyEstimator
from search.training import TrainSettings, train_supernet
from tests.conftest import small_space

SPACE = small_space("nb201")


@pytest.fixture(scope="module")
def data():
    return load_dataset(None, resolution=16, seed=0)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory, data) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    out = {}
    for mode in ("spos", "bn", "pi"):
        out[mode] = root / f"{mode}.pt"
        train_supernet(SPACE, data, out=out[mode], steps=3,
                       settings=TrainSettings(mode=mode, batch_size=8, warmup_steps=1, queue=8))
    return out


def make(name: str, data, checkpoints: dict[str, Path], mode: str = "bn"
         ) -> AccuracyEstimator:
    allowed = estimator_settings(name)
    kw: dict[str, object] = {"space": SPACE}
    if "checkpoint" in allowed:
        kw["checkpoint"] = checkpoints[mode]
    if "data" in allowed:
        kw["data"] = data
    if "batch_size" in allowed:
        kw["batch_size"] = 16
    if "calib_batches" in allowed:
        kw["calib_batches"] = 2
    return get_estimator(name, **kw)


@pytest.mark.parametrize("name", list_estimators())
def test_protocol_shape_and_determinism(name: str, data, checkpoints) -> None:
    archs = [SPACE.sample(np.random.default_rng(i)) for i in range(3)]
    est = make(name, data, checkpoints)
    assert isinstance(est, AccuracyEstimator)
    scores = est.score(archs)
    assert scores.shape == (3,) and scores.dtype == np.float64
    assert np.isfinite(scores).all()
    np.testing.assert_array_equal(make(name, data, checkpoints).score(archs), scores)
    assert est.score([]).shape == (0,)
    assert isinstance(est.describe(), str) and name in est.describe()


def _released_zico(grads: list[list[np.ndarray]]) -> float:
    # The computation of SLDGroup/ZiCo's `caculate_zico`, on numpy arrays.
    total = 0.0
    for g in grads:
        arr = np.array(g)
        std = np.std(arr, axis=0)
        nz = np.nonzero(std)[0]
        tmp = np.sum(np.mean(np.abs(arr), axis=0)[nz] / std[nz])
        if tmp != 0:
            total += np.log(tmp)
    return float(total)


def test_zico_matches_the_released_computation(data) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    batches = [(data.x_train[i:i + 16], data.y_train[i:i + 16]) for i in (0, 16)]
    grads: list[list[np.ndarray]] = [[], []]
    for x, y in batches:
        net.zero_grad()
        F.cross_entropy(net(x), y).backward()
        grads[0].append(net[0].weight.grad.numpy().ravel().copy())
        grads[1].append(net[5].weight.grad.numpy().ravel().copy())
    assert zico_score(net, batches) == pytest.approx(_released_zico(grads), rel=1e-4)
    with pytest.raises(ValueError, match="at least 2 mini-batches"):
        zico_score(net, batches[:1])


@pytest.mark.slow
def test_zico_on_the_32px_mbv2_space_and_baselines() -> None:
    space = small_space("mbv2")
    archs = [space.default(), space.sample(np.random.default_rng(1))]
    zico = get_estimator("zico", space=space, batch_size=8)
    assert np.isfinite(zico.score(archs)).all()
    params = get_estimator("params", space=space).score(archs)
    assert params.tolist() == [count_params(build(space, a)) for a in archs]
    flops = get_estimator("flops", space=space).score(archs)
    assert (flops > 0).all()
    r0 = get_estimator("random", space=space, seed=0).score(archs)
    assert not np.array_equal(r0, get_estimator("random", space=space, seed=1).score(archs))


def test_bn_indicator_sums_the_chosen_ops_gammas(checkpoints) -> None:
    est = get_estimator("bn", space=SPACE, checkpoint=checkpoints["bn"])
    # Only conv edges have a BN; `none`, skip and pooling add nothing.
    no_bn = SPACE.decode("|none~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|none~2|")
    assert est.score([no_bn]).tolist() == [0.0]
    one = SPACE.decode("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert est.score([one])[0] > 0


def test_pi_checkpoint_is_scored_by_a_probe(data, checkpoints) -> None:
    est = make("supernet", data, checkpoints, mode="pi")
    assert "nearest-class-mean" in est.describe()
    scores = est.score([SPACE.sample(np.random.default_rng(0))])
    assert 0.0 <= scores[0] <= 1.0


def test_registry_errors(checkpoints) -> None:
    with pytest.raises(ValueError, match="unknown estimator 'nope'"):
        get_estimator("nope", space=SPACE)
    with pytest.raises(ValueError, match="has no setting 'checkpoint'"):
        get_estimator("params", space=SPACE, checkpoint="x")
    with pytest.raises(ValueError, match="needs the setting 'checkpoint'"):
        get_estimator("bn", space=SPACE)
    with pytest.raises(ValueError, match="batches must be"):
        get_estimator("zico", space=SPACE, batches=1)
    with pytest.raises(ValueError, match="trained on space nb201"):
        get_estimator("bn", space=small_space("mbv2"), checkpoint=checkpoints["bn"])


NB201_P = ["-p", "resolution=16", "-p", "channels=8", "-p", "cells=1"]


def test_cli_score(capsys: pytest.CaptureFixture[str], checkpoints) -> None:
    from service.cli import main

    archs = [SPACE.encode(SPACE.sample(np.random.default_rng(i))) for i in range(2)]
    assert main(["score", "--space", "nb201", *NB201_P, "--estimator", "params", *archs]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split()[1] for line in lines] == archs
    expected = get_estimator("params", space=SPACE).score([SPACE.decode(a) for a in archs])
    assert [float(line.split()[0]) for line in lines] == expected.tolist()
    assert "s/arch" in err
    assert main(["score", "--space", "nb201", *NB201_P, "--estimator", "bn",
                 "--checkpoint", str(checkpoints["bn"]), *archs]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


@pytest.mark.parametrize(("argv", "message"), [
    (["--estimator", "zico2"], "error: unknown estimator 'zico2'"),
    (["--estimator", "bn"], "error: --checkpoint: the bn estimator needs a supernet checkpoint"),
    (["--estimator", "params", "--checkpoint", "x.pt"],
     "error: --checkpoint: the params estimator takes no checkpoint"),
    (["--estimator", "bn", "--checkpoint", "missing.pt"], "error: checkpoint: no such file"),
    (["--estimator", "zico", "--data", "missing.npz"], "error: data: no such file"),
    (["--estimator", "params", "-p", "classes=x"], "error: --param classes: expected int"),
])
def test_cli_score_errors(capsys: pytest.CaptureFixture[str], argv: list[str],
                          message: str) -> None:
    from service.cli import main

    arch = SPACE.encode(SPACE.default())
    code = main(["score", "--space", "nb201", *NB201_P, *argv, arch])
    out, err = capsys.readouterr()
    assert out == ""
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(message)

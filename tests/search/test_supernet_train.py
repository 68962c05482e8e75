"""Supernet training: every mode trains, checkpoints load safely, resume is exact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from search.data import load_dataset
from search.training import (
    MODES,
    TrainProgress,
    TrainSettings,
    bn_parameters,
    load_checkpoint,
    load_supernet,
    train_supernet,
)
from tests.conftest import small_space

SPACE = small_space("nb201")  # 16 px, 8 channels, one cell per stage: fast on two cores


@pytest.fixture(scope="module")
def data():
    return load_dataset(None, resolution=16, seed=0)


def settings(mode: str, **kw: object) -> TrainSettings:
    return TrainSettings(mode=mode, batch_size=8, warmup_steps=2, queue=16, **kw)


@pytest.mark.parametrize("mode", [pytest.param(m, marks=pytest.mark.slow) if m == "pi" else m
                                  for m in MODES])
def test_resume_continues_the_same_run(tmp_path: Path, data, mode: str) -> None:
    straight = train_supernet(SPACE, data, out=tmp_path / "a.pt", settings=settings(mode),
                              steps=4)
    train_supernet(SPACE, data, out=tmp_path / "b.pt", settings=settings(mode), steps=2)
    resumed = train_supernet(SPACE, data, out=tmp_path / "b.pt", settings=settings(mode),
                             steps=4)
    assert straight.step == resumed.step == 4
    assert straight.loss == pytest.approx(resumed.loss, rel=1e-5)
    _, a = load_checkpoint(tmp_path / "a.pt")
    _, b = load_checkpoint(tmp_path / "b.pt")
    for key, value in a["model"].items():
        assert torch.allclose(value.float(), b["model"][key].float(), atol=1e-6), key


def test_bn_mode_trains_only_the_ops_last_bns_after_warmup(tmp_path: Path, data) -> None:
    out = tmp_path / "bn.pt"
    train_supernet(SPACE, data, out=out, settings=settings("bn"), steps=2)  # warm-up only
    _, before = load_supernet(out)
    train_supernet(SPACE, data, out=out, settings=settings("bn"), steps=5)
    _, after = load_supernet(out)
    trainable = {id(p) for p in bn_parameters(after)}
    changed = {name for (name, p), q in zip(after.named_parameters(), before.parameters(),
                                            strict=True) if not torch.equal(p, q)}
    assert changed, "BN-only phase changed nothing"
    allowed = {name for name, p in after.named_parameters() if id(p) in trainable}
    assert changed <= allowed


def test_bn_phase_passes_over_a_path_with_no_bn(tmp_path: Path, data,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # nb201's none/skip/pool edges hold no BN: such a path has nothing to train after the
    # warm-up (its loss needs no gradient), and the run goes on instead of failing.
    free = SPACE.decode("|none~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|skip_connect~2|")
    monkeypatch.setattr(SPACE, "sample", lambda rng: free)
    out = tmp_path / "bn.pt"
    train_supernet(SPACE, data, out=out, settings=settings("bn"), steps=2)
    _, before = load_supernet(out)
    meta = train_supernet(SPACE, data, out=out, settings=settings("bn"), steps=5)
    _, after = load_supernet(out)
    assert meta.step == 5
    for p, q in zip(after.parameters(), before.parameters(), strict=True):
        assert torch.equal(p, q)


def test_progress_cancel_and_time_budget(tmp_path: Path, data) -> None:
    seen: list[TrainProgress] = []
    meta = train_supernet(SPACE, data, out=tmp_path / "c.pt", settings=settings("spos"),
                          steps=100, progress=seen.append, cancel=lambda: len(seen) >= 3)
    assert meta.step == 3
    assert [p.step for p in seen] == [1, 2, 3]
    assert seen[-1].fraction == pytest.approx(0.03)
    timed = train_supernet(SPACE, data, out=tmp_path / "d.pt", settings=settings("spos"),
                           minutes=1e-4)
    assert timed.step >= 1
    assert timed.seconds >= 6e-3


def test_errors(tmp_path: Path, data) -> None:
    out = tmp_path / "e.pt"
    with pytest.raises(ValueError, match="give a budget"):
        train_supernet(SPACE, data, out=out)
    with pytest.raises(ValueError, match="minutes must be > 0"):
        train_supernet(SPACE, data, out=out, minutes=0)
    with pytest.raises(ValueError, match="classes=5 does not match"):
        train_supernet(small_space("nb201").__class__(resolution=16, channels=8, cells=1,
                                                      classes=5), data, out=out, steps=1)
    train_supernet(SPACE, data, out=out, settings=settings("spos"), steps=1)
    with pytest.raises(ValueError, match="settings differs"):
        train_supernet(SPACE, data, out=out, settings=settings("spos", lr=0.2), steps=2)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="cannot read"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a hwnas supernet checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


NB201_P = ["-p", "resolution=16", "-p", "channels=8", "-p", "cells=1"]


def test_cli_supernet_train(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli import main

    out = tmp_path / "s.pt"
    argv = ["supernet", "train", "--space", "nb201", *NB201_P, "--mode", "bn",
            "--steps", "2", "--batch-size", "8", "-o", str(out)]
    assert main(argv) == 0
    assert f"{out}: 2 steps" in capsys.readouterr().out
    meta, _ = load_checkpoint(out)
    assert (meta.settings.mode, meta.step) == ("bn", 2)
    assert main([*argv[:-4], "--steps", "3", *argv[-4:]]) == 0  # resumes
    assert load_checkpoint(out)[0].step == 3
    for bad, message in ((["--mode", "darts"], "error: --mode: unknown mode 'darts'"),
                         ([], "error: --minutes/--steps: give a budget")):
        code = main(["supernet", "train", "--space", "nb201", *NB201_P, *bad, "-o", str(out)])
        assert code == 2
        assert capsys.readouterr().err.startswith(message)

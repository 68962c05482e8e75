"""Training one arch (`search.training.recipe`), shipping it (`search.ship`), `hwnas train`.

All on a tiny nb201 (8 channels, one cell per stage, 16x16 digits): an epoch takes about
a second here, so budgets, resume and bad input are exercised for real.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models import build
from search.data import load_dataset
from search.training import TrainSettings, train_supernet
from search.training.augment import augment, zoom_in
from search.training.loop import channels_last, random_batch
from search.training.recipe import (
    CHECKPOINT,
    Recipe,
    TrainingCancelled,
    learning_rate,
    load_trained,
    train_arch,
)
from service.cli import main
from spaces import get_space

TINY = {"channels": 8, "cells": 1, "classes": 10}
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def data():  # a search.data.Dataset
    return load_dataset(None, resolution=16, seed=0)


@pytest.fixture(scope="module")
def space():  # a spaces.Space
    return get_space("nb201", resolution=16, **TINY)


def test_epochs_budget_trains_and_checkpoints(space, data, tmp_path: Path) -> None:
    seen = []
    result = train_arch(space, space.decode(ARCH), data, out=tmp_path, epochs=3,
                        progress=seen.append)
    meta = result.meta
    assert meta.finished and meta.epoch == 3 and len(meta.history) == 3
    assert meta.step == 3 * (len(data.y_train) // 64) == seen[-1].step
    assert seen[-1].fraction == 1.0 and seen[0].fraction < 0.1
    assert meta.val_accuracy > 0.3  # 10 classes: chance is 0.1
    # Trained in channels_last, handed back in the usual layout for the exporters.
    assert all(p.is_contiguous() for p in result.net.parameters())
    saved, _ = load_trained(tmp_path / CHECKPOINT)
    assert saved.finished and saved.val_accuracy == meta.val_accuracy
    # A finished run is returned as is, without training again.
    again = train_arch(space, space.decode(ARCH), data, out=tmp_path, epochs=3)
    assert again.meta.step == meta.step
    assert all(torch.equal(a, b) for a, b in zip(again.net.state_dict().values(),
                                                 result.net.state_dict().values(), strict=True))


def test_channels_last_is_the_same_math(space, data) -> None:
    # In float64, where rounding cannot hide a layout bug, SGD steps in channels_last
    # give NCHW's losses and weights.
    torch.manual_seed(0)
    nets = [build(space, space.decode(ARCH)).double() for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    channels_last(nets[1])
    assert nets[1].stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    rng = np.random.default_rng(0)
    batches = [random_batch(data, 32, rng) for _ in range(3)]
    losses = []
    for net in nets:
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        losses.append([])
        for x, y in batches:
            loss = F.cross_entropy(net(x.double()), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses[-1].append(float(loss))
    assert losses[0] == pytest.approx(losses[1], rel=1e-9)
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_interrupted_run_resumes_to_the_same_weights(space, data, tmp_path: Path) -> None:
    whole = train_arch(space, space.decode(ARCH), data, out=tmp_path / "whole", epochs=2)
    steps = {"n": 0}

    def cancel_in_epoch_two() -> bool:
        steps["n"] += 1
        return steps["n"] == len(data.y_train) // 64 + 3

    with pytest.raises(TrainingCancelled, match="epoch 2"):
        train_arch(space, space.decode(ARCH), data, out=tmp_path / "cut", epochs=2,
                   cancel=cancel_in_epoch_two)
    kept, _ = load_trained(tmp_path / "cut" / CHECKPOINT)
    assert kept.epoch == 1 and not kept.finished  # the last good checkpoint
    resumed = train_arch(space, space.decode(ARCH), data, out=tmp_path / "cut", epochs=2)
    assert resumed.meta.step == whole.meta.step
    assert resumed.meta.val_accuracy == whole.meta.val_accuracy
    for a, b in zip(resumed.net.state_dict().values(), whole.net.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)


def test_minutes_budget_stops_at_the_time(space, data, tmp_path: Path) -> None:
    # Batches of 256: an epoch is 5 steps, so even a loaded machine fits one in 30 s.
    result = train_arch(space, space.decode(ARCH), data, out=tmp_path, minutes=0.5,
                        recipe=Recipe(batch_size=256))
    # Ends at the budget: the training stops early enough for the BN recalibration and
    # the final evaluation to fit in it (timed up front), give or take a step. The end
    # (16 recalibration batches and 359 val images) takes about 1 s alone and 3.5 s was
    # seen beside another job; a fifth of the budget would mean it does too much.
    assert 0 < result.meta.end_seconds < 6.0
    assert 28.5 <= result.meta.seconds <= 32.0
    assert result.meta.epoch >= 1 and result.meta.finished
    # The last epoch is evaluated once, after the recalibration: its record is the final.
    assert result.meta.history[-1].val_accuracy == result.meta.val_accuracy
    assert result.meta.history[-1].epoch == result.meta.epoch


def test_budget_spent_in_an_epochs_evaluation_ends_with_the_final_accuracy(
        space, data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Seen under load: the last epoch's evaluation ran past the budget, the loop ended
    # there, and that epoch kept its pre-recalibration accuracy as the final record.
    import search.training.recipe as recipe_module

    calls = []

    def slow_first(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(6.5)  # past the whole 6 s budget
            return 0.0123
        return real(*args, **kwargs)

    real = recipe_module.evaluate
    monkeypatch.setattr(recipe_module, "evaluate", slow_first)
    result = train_arch(space, space.decode(ARCH), data, out=tmp_path, minutes=0.1,
                        recipe=Recipe(batch_size=256))
    assert len(calls) == 2 and result.meta.finished
    assert result.meta.val_accuracy != 0.0123
    assert [r.epoch for r in result.meta.history] == [1] == [result.meta.epoch]
    assert result.meta.history[-1].val_accuracy == result.meta.val_accuracy
    kept, _ = load_trained(tmp_path / CHECKPOINT)
    assert kept.history[-1].val_accuracy == result.meta.val_accuracy


def test_budget_under_one_epoch_is_refused_before_writing(space, data,
                                                          tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="less than one epoch"):
        train_arch(space, space.decode(ARCH), data, out=tmp_path, minutes=1e-4)
    assert not (tmp_path / CHECKPOINT).exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "exactly one budget"),
    ({"epochs": 1, "minutes": 1.0}, "exactly one budget"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"minutes": float("nan")}, "minutes must be a positive number"),
])
def test_bad_budgets(space, data, tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        train_arch(space, space.decode(ARCH), data, out=tmp_path, **kwargs)


def test_data_the_space_cannot_take(data, tmp_path: Path) -> None:
    five = get_space("nb201", resolution=16, channels=8, cells=1, classes=5)
    with pytest.raises(ValueError, match="classes=5 does not match"):
        train_arch(five, five.decode(ARCH), data, out=tmp_path, epochs=1)


def test_checkpoint_of_another_run_or_unreadable(space, data, tmp_path: Path) -> None:
    train_arch(space, space.decode(ARCH), data, out=tmp_path, epochs=1)
    other = ARCH.replace("skip_connect~1", "nor_conv_1x1~1")
    with pytest.raises(ValueError, match="another arch"):
        train_arch(space, space.decode(other), data, out=tmp_path, epochs=1)
    with pytest.raises(ValueError, match="another recipe"):
        train_arch(space, space.decode(ARCH), data, out=tmp_path, epochs=1,
                   recipe=Recipe(lr=0.01))
    (tmp_path / CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        train_arch(space, space.decode(ARCH), data, out=tmp_path, epochs=1)


def test_init_from_a_supernet(space, data, tmp_path: Path) -> None:
    ckpt = tmp_path / "sup.pt"
    train_supernet(space, data, out=ckpt, steps=3, settings=TrainSettings(batch_size=16))
    result = train_arch(space, space.decode(ARCH), data, out=tmp_path / "run", epochs=1,
                        init=ckpt)
    assert result.meta.init == str(ckpt)
    wide = get_space("nb201", resolution=16, channels=16, cells=1, classes=10)
    with pytest.raises(ValueError, match=r"init: .* is a supernet of nb201"):
        train_arch(wide, wide.decode(ARCH), data, out=tmp_path / "wide", epochs=1, init=ckpt)


def test_schedule_and_augmentation() -> None:
    assert learning_rate(0.1, 0.0) < 0.01 and learning_rate(0.1, 0.03) == pytest.approx(0.1)
    assert learning_rate(0.1, 1.0) == pytest.approx(0.0, abs=1e-12)
    # With a final phase over the last quarter: the first cycle ends at zero when the
    # phase begins, and the phase warms up to the peak again and decays to zero.
    assert learning_rate(0.1, 0.5, 0.25) == pytest.approx(learning_rate(0.1, 2 / 3))
    assert learning_rate(0.1, 0.7499, 0.25) < 1e-5
    assert learning_rate(0.1, 0.75, 0.25) < 0.01
    assert learning_rate(0.1, 0.75 + 0.03 * 0.25, 0.25) == pytest.approx(0.1)
    assert learning_rate(0.1, 0.875, 0.25) == pytest.approx(learning_rate(0.1, 0.5))
    assert learning_rate(0.1, 1.0, 0.25) == pytest.approx(0.0, abs=1e-12)
    x = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).reshape(2, 3, 16, 16)
    y = augment(x, Recipe(), torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.equal(x, y)
    assert torch.equal(augment(x, Recipe(translate=0.0), torch.Generator()), x)
    # A zoom of 1 draws nothing more; a larger one changes the translated images.
    assert torch.equal(augment(x, Recipe(), torch.Generator().manual_seed(0), zoom=1.0), y)
    zoomed = augment(x, Recipe(), torch.Generator().manual_seed(0), zoom=2.0)
    assert zoomed.shape == x.shape and not torch.equal(zoomed, y)


def test_zoom_in_is_a_resized_window() -> None:
    x = torch.rand(2, 3, 16, 16)
    # The central half (side 0.5, no shift) and the bottom-right quarter (shift +0.5, +0.5)
    # blown up to the whole image, as bilinear resizing of those windows gives them; but
    # for the outermost pixels, where resizing a cut-out window clamps at its edge and
    # zoom_in reads the pixels beyond it.
    out = zoom_in(x, torch.tensor([0.5, 0.5]), torch.tensor([[0.0, 0.0], [0.5, 0.5]]))
    windows = torch.stack([x[0, :, 4:12, 4:12], x[1, :, 8:, 8:]])
    resized = F.interpolate(windows, size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(out[..., 1:-1, 1:-1], resized[..., 1:-1, 1:-1], atol=1e-5)
    assert torch.allclose(zoom_in(x, torch.ones(2), torch.zeros(2, 2)), x, atol=1e-5)


def test_hwnas_train_ships_files_accuracy_and_a_card(capfd: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["train", "--space", "nb201", "-p", "channels=8", "-p", "cells=1",
            "-p", "resolution=16", "--arch", ARCH, "--epochs", "2",
            "--export", "onnx,tflite,tflite-int8", "-o", str(out)]
    assert main(argv) == 0, capfd.readouterr().err
    report = json.loads((out / "train.json").read_text())
    acc = report["val_accuracy"]
    assert set(acc) == {"torch", "onnx", "tflite", "tflite-int8"}
    # The fp32 files hold the torch net's weights and BN statistics: same predictions.
    assert acc["onnx"] == pytest.approx(acc["torch"], abs=0.01)
    assert report["int8_drop"] == pytest.approx(acc["tflite"] - acc["tflite-int8"])
    assert report["epochs"] == 2 and report["preprocessing"]["resolution"] == 16
    card = (out / "model_card.md").read_text()
    assert ARCH in card and "## Reproduce" in card and "--epochs 2" in card
    assert "local-tflite-int8" in card and "model-int8.tflite" in card
    assert {p.name for p in out.iterdir()} >= {"model.onnx", "model.tflite",
                                               "model-int8.tflite", "model_card.md"}


def test_hwnas_train_deploys_at_another_resolution(capfd: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["train", "--space", "nb201", "-p", "channels=8", "-p", "cells=1",
                 "-p", "resolution=16", "--arch", ARCH, "--epochs", "1",
                 "--deploy-resolution", "24", "--export", "onnx", "-o", str(out)]) == 0
    report = json.loads((out / "train.json").read_text())
    # Trained at 16 px, its last quarter at the deployment's 24 px (progressive resizing).
    assert report["preprocessing"]["resolution"] == report["preprocessing"][
        "final_resolution"] == 24
    assert report["preprocessing"]["train_resolution"] == 16
    # Before that phase the images were zoomed in by up to 24 / 16, and the card says so.
    assert report["recipe"]["zoom"] is True
    assert "zoomed in at random by up to 1.5x" in (out / "model_card.md").read_text()
    from models.export import run_exported

    assert run_exported(out / "model.onnx", np.zeros((1, 3, 24, 24), np.float32)).shape == (1, 10)
    capfd.readouterr()


@pytest.mark.parametrize(("extra", "message"), [
    (["--epochs", "1", "-p", "classes=3"], "classes=3 does not match"),
    (["--minutes", "0.00001"], "less than one epoch"),
    (["--epochs", "1", "--init", "missing.pt"], "no such file"),
    (["--epochs", "1", "--minutes", "1"], "exactly one budget"),
    (["--epochs", "1", "--optimizer", "adam"], "optimizer"),
])
def test_hwnas_train_bad_input(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                               extra: list[str], message: str) -> None:
    code = main(["train", "--space", "nb201", "-p", "channels=8", "-p", "cells=1",
                 "-p", "resolution=16", "--arch", ARCH, "-o", str(tmp_path / "o"), *extra])
    err = capfd.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_hwnas_train_refuses_a_checkpoint_of_another_kind(capfd: pytest.CaptureFixture[str],
                                                          space, data, tmp_path: Path) -> None:
    train_arch(space, space.decode(ARCH), data, out=tmp_path / "run", epochs=1)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 64)
    for init, message in ((tmp_path / "run" / CHECKPOINT, "is not a hwnas supernet checkpoint"),
                          (garbage, "cannot read")):
        code = main(["train", "--space", "nb201", "-p", "channels=8", "-p", "cells=1",
                     "-p", "resolution=16", "--arch", ARCH, "--epochs", "1", "--init",
                     str(init), "-o", str(tmp_path / "o")])
        err = capfd.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_hwnas_train_refuses_another_topology(capfd: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    space = get_space("mbv2", resolution=32, width=0.25, classes=10)
    arch = space.encode(space.sample(np.random.default_rng(0)))
    code = main(["train", "--space", "mbv2", "-p", "width=0.25", "-p", "resolution=32",
                 "--arch", arch, "--epochs", "1", "--deploy-resolution", "224",
                 "-o", str(tmp_path / "o")])
    err = capfd.readouterr().err
    assert code == 2 and "builds another topology" in err and "train at 112 px" in err, err
    assert not (tmp_path / "o" / "train").exists()

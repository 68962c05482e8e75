"""The data layer: bundled digits, npz and ImageFolder sources, splits, and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from search.data import BUNDLED, check_compatible, load_dataset


@pytest.fixture(scope="module")
def digits():
    return load_dataset(None, resolution=32, seed=0)


def test_bundled_digits_fit_the_32px_mbv2_space(digits) -> None:
    assert digits.source == BUNDLED
    assert digits.classes == 10
    assert digits.x_train.shape[1:] == (3, 32, 32)
    assert len(digits.y_train) + len(digits.y_val) == 1797
    assert abs(len(digits.y_val) / 1797 - 0.2) < 0.01
    # Normalised with the train split's own statistics.
    assert torch.allclose(digits.x_train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(digits.x_train.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)
    # Stratified: every class is in both splits.
    assert set(digits.y_val.tolist()) == set(range(10))
    check_compatible(digits, {"resolution": 32, "classes": 10, "width": 0.5})


def test_split_is_seeded(digits) -> None:
    again = load_dataset(None, resolution=32, seed=0)
    other = load_dataset(None, resolution=32, seed=1)
    assert torch.equal(again.x_val, digits.x_val)
    assert not torch.equal(other.y_val, digits.y_val) or not torch.equal(other.x_val,
                                                                         digits.x_val)


def test_batches(digits) -> None:
    batches = list(digits.train_batches(100, seed=3))
    assert all(len(y) == 100 for _, y in batches)
    assert len(batches) == len(digits.y_train) // 100
    first = next(digits.train_batches(100, seed=3))[1]
    assert torch.equal(first, batches[0][1])
    assert sum(len(y) for _, y in digits.val_batches(64)) == len(digits.y_val)
    with pytest.raises(ValueError, match="batch_size"):
        next(digits.val_batches(0))


@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw"])
def test_npz(tmp_path: Path, layout: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 12, 12, 3), dtype=np.uint8)
    y = np.repeat(np.arange(4), 10)
    arr = {"nhw": x[..., 0], "nhwc": x, "nchw": x.transpose(0, 3, 1, 2)}[layout]
    np.savez(tmp_path / "d.npz", x=arr, y=y)
    data = load_dataset(tmp_path / "d.npz", resolution=16, seed=0, val_fraction=0.2)
    assert data.classes == 4
    assert data.x_train.shape == (32, 3, 16, 16)
    assert data.x_val.shape == (8, 3, 16, 16)


def test_image_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog"]):
        (tmp_path / name).mkdir()
        for i in range(4):
            pix = rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8) // (c + 1)
            Image.fromarray(pix).save(tmp_path / name / f"{i}.png")
    data = load_dataset(tmp_path, resolution=8, seed=0, val_fraction=0.25)
    assert data.classes == 2
    assert data.x_train.shape == (6, 3, 8, 8)
    assert sorted(data.y_val.tolist()) == [0, 1]
    with pytest.raises(ValueError, match="classes=10 does not match the data"):
        check_compatible(data, {"classes": 10, "resolution": 8})


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def test_errors(tmp_path: Path) -> None:
    y = np.repeat(np.arange(2), 5)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_dataset(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="no array 'y'"):
        load_dataset(_npz(tmp_path / "a.npz", x=np.zeros((10, 8, 8))))
    with pytest.raises(ValueError, match="x must be"):
        load_dataset(_npz(tmp_path / "b.npz", x=np.zeros((10, 5, 8, 8)), y=y))
    with pytest.raises(ValueError, match="x has 10 images but y has 9"):
        load_dataset(_npz(tmp_path / "c.npz", x=np.zeros((10, 8, 8)), y=y[:9]))
    with pytest.raises(ValueError, match="y must be a 1-d integer"):
        load_dataset(_npz(tmp_path / "d.npz", x=np.zeros((10, 8, 8)), y=y.astype(float)))
    with pytest.raises(ValueError, match="class 1 has 0 images"):
        load_dataset(_npz(tmp_path / "e.npz", x=np.zeros((10, 8, 8)), y=y * 2))
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ValueError, match="neither a directory"):
        load_dataset(tmp_path / "f.txt")
    (tmp_path / "bad.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="cannot read"):
        load_dataset(tmp_path / "bad.npz")
    folder = tmp_path / "folder"
    (folder / "only").mkdir(parents=True)
    with pytest.raises(ValueError, match="at least 2 class subdirectories"):
        load_dataset(folder)
    (folder / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        load_dataset(folder)
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset(None, val_fraction=1.0)
    with pytest.raises(ValueError, match="resolution"):
        load_dataset(None, resolution=2)

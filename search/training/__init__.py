"""Training: plain nets (the harness's ground truth) and supernets (SPOS, BN-NAS, Pi-NAS).

Example:
    >>> from spaces import get_space
    >>> from search.data import load_dataset
    >>> from search.training import TrainSettings, train_supernet
    >>> space = get_space("mbv2", resolution=32, width=0.25, classes=10)
    >>> meta = train_supernet(space, load_dataset(None), out="/tmp/sup.pt", steps=2,
    ...                       settings=TrainSettings(mode="spos", batch_size=8), resume=False)
    >>> meta.step
    2
"""

from __future__ import annotations

from .checkpoint import MODES, CheckpointMeta, TrainSettings, load_checkpoint, save_checkpoint
from .loop import evaluate, features, torch_threads, train_net
from .supernet import TrainProgress, bn_parameters, load_supernet, train_supernet

__all__ = [
    "MODES",
    "CheckpointMeta",
    "TrainProgress",
    "TrainSettings",
    "bn_parameters",
    "evaluate",
    "features",
    "load_checkpoint",
    "load_supernet",
    "save_checkpoint",
    "torch_threads",
    "train_net",
    "train_supernet",
]

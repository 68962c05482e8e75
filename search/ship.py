"""Ship a trained model: train an arch, export it, measure the files' accuracy, write its card.

Used by `hwnas train` and by a search with `train_minutes` (`search.api.run_search`):

1. `search.training.train_arch` trains the arch at a training resolution
   (`train_resolution`: half the deployment one, at least 64 px, so the network has the
   deployment topology; the images are resized to it);
2. `search.deliver.export_winner` loads those weights into the same arch built at the
   deployment resolution (the device profile's), re-estimates its BN statistics there on
   training images resized to it, and exports ONNX / TFLite fp32 / TFLite int8 (int8
   calibrated on the same images) / OpenVINO IR;
3. `search.deliver.exported_accuracy` runs every exported file on its own runtime over
   the val split resized to the deployment resolution: the accuracy a user gets from
   the file, and the int8 drop measured, not assumed;
4. `model_card` writes `model_card.md`: what the model is, where it came from, how it
   was trained, its accuracy and latency, and the command that reproduces it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from spaces import Arch, Space

from .data import Dataset


def train_resolution(deploy: int) -> int:
    """The default training resolution for a deployment resolution.

    Half the deployment resolution, at least 64 (and the deployment resolution itself
    below that): large enough that a space builds the same topology as at deployment
    (`mbv2` keeps stride 1 in its stem and first stage below 64 px), small enough to
    train on a CPU (at 112 px an `mbv2` step costs about what it costs at 32 px in the
    small-input topology), and a 2x gap that BN recalibration at the deployment
    resolution closes (FixRes trains at 128-224 to test at 224-448).
    """
    return deploy if deploy <= 64 else max(64, deploy // 2)


def check_same_topology(train: Space, deploy: Space) -> None:
    """Raise if `train` and `deploy` stride differently (the weights would not transfer)."""
    strides = [s.stride for s in train.slots], [s.stride for s in deploy.slots]
    if strides[0] != strides[1]:
        raise ValueError(
            f"resolution: {train.name} at {train.params.get('resolution')} px builds another "
            f"topology (slot strides {strides[0]}) than at the deployment's "
            f"{deploy.params.get('resolution')} px ({strides[1]}); train at "
            f"{train_resolution(int(deploy.params['resolution']))} px (the default)")


class TrainingResult(BaseModel):
    """A trained and exported model (`training` in report.json, `train.json`)."""

    model_config = ConfigDict(extra="forbid")

    arch: str
    train_params: dict[str, Any]
    deploy_params: dict[str, Any]
    recipe: dict[str, Any]
    data: str
    budget: dict[str, float | int | None]
    init: str | None
    epochs: int
    steps: int
    seconds: float
    history: list[dict[str, Any]]
    preprocessing: dict[str, Any]
    val_accuracy: dict[str, float]
    int8_drop: float | None


def train_and_export(train_space: Space, deploy_space: Space, arch: Arch, data: Dataset,
                     out: Path, *, formats: Sequence[str], minutes: float | None = None,
                     epochs: int | None = None, recipe: Any = None,
                     init: str | Path | None = None, resume: bool = True,
                     progress: Callable[[Any], None] | None = None,
                     cancel: Callable[[], bool] | None = None,
                     threads: int = 1) -> tuple[TrainingResult, dict[str, dict[str, Any]]]:
    """Train `arch` on `data` into `out/train/`, export it into `out`, measure the files.

    Returns the `TrainingResult` and `models.export.check_exported`'s entry per format.
    Raises what `search.training.train_arch` raises.
    """
    from .training import torch_threads
    from .training.recipe import train_arch

    check_same_topology(train_space, deploy_space)
    with torch_threads(threads):
        trained = train_arch(train_space, arch, data, out=out / "train", minutes=minutes,
                             epochs=epochs, recipe=recipe, init=init, resume=resume,
                             final_resolution=int(deploy_space.params["resolution"]),
                             progress=progress, cancel=cancel)
    return export_trained(trained, deploy_space, data, out, formats=formats, threads=threads)


def export_trained(trained: Any, deploy_space: Space, data: Dataset, out: Path, *,
                   formats: Sequence[str], calibration: int = 128,
                   threads: int = 1) -> tuple[TrainingResult, dict[str, dict[str, Any]]]:
    """Export a `search.training.TrainedArch` into `out` at `deploy_space`'s resolution and
    run every file over the val split; writes `out/train.json`."""
    from .deliver import calibration_images, export_winner, exported_accuracy
    from .training import torch_threads

    meta = trained.meta
    check_same_topology(trained.space, deploy_space)
    arch = deploy_space.decode(meta.arch)
    resolution = int(deploy_space.params["resolution"])
    trained_at = meta.final_resolution or data.resolution
    images = calibration_images(data, resolution, seed=meta.recipe.seed, count=calibration)
    with torch_threads(threads):
        files = export_winner(deploy_space, arch, out, formats=formats, calibration=images,
                              weights=trained.net.state_dict(),
                              recalibrate=resolution != trained_at)
    accuracy = {"torch": float(meta.val_accuracy or 0.0)}
    accuracy |= exported_accuracy(out, files, data.x_val, data.y_val, resolution=resolution,
                                  threads=threads)
    result = TrainingResult(
        arch=meta.arch, train_params=meta.params, deploy_params=deploy_space.params,
        recipe=meta.recipe.model_dump(mode="json") | {"lr": meta.recipe.base_lr},
        data=data.describe(), budget={"minutes": meta.minutes, "epochs": meta.epochs},
        init=meta.init, epochs=meta.epoch, steps=meta.step, seconds=round(meta.seconds, 2),
        history=[h.model_dump() for h in meta.history],
        preprocessing={"layout": "NCHW float32", "resolution": resolution,
                       "train_resolution": data.resolution, "final_resolution": trained_at,
                       "mean": list(data.mean),
                       "std": list(data.std),
                       "scale": "pixels in [0, 1], then (x - mean) / std per channel"},
        val_accuracy=accuracy,
        int8_drop=(accuracy["tflite"] - accuracy["tflite-int8"]
                   if {"tflite", "tflite-int8"} <= accuracy.keys() else None))
    (out / "train.json").write_text(result.model_dump_json(indent=2) + "\n")
    return result, files


def latency_rows(measured: dict[str, dict[str, Any]], predicted: dict[str, float] | None = None,
                 budgets: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """One row per device for the card: predicted and measured ms, and the budget."""
    rows = []
    for device, got in measured.items():
        rows.append({"device": device, "file": got.get("file"),
                     "predicted_ms": (predicted or {}).get(device),
                     "measured_ms": got.get("median_ms"),
                     "profiling_speed_ms": got.get("drift_corrected_ms"),
                     "budget_ms": (budgets or {}).get(device),
                     "note": None if got.get("measured") else got.get("reason")})
    return rows


def model_card(*, space: str, training: TrainingResult, latency: list[dict[str, Any]],
               command: str, origin: dict[str, Any] | None = None) -> str:
    """`model_card.md`: the model, its origin, training, accuracy, latency, and how to redo it.

    `origin` (a search's) holds `devices` (name, backend, budget), `strategy`,
    `estimator`, `score` and `evaluations`.
    """
    t = training
    acc, pre = t.val_accuracy, t.preprocessing
    lines = [f"# Model card: {space} `{t.arch}`", "",
             "## What it is", "",
             f"- Architecture: `{t.arch}` of the `{space}` space, deployed with "
             f"{_params(t.deploy_params)}.",
             f"- Input: {t.preprocessing['layout']}, {t.preprocessing['resolution']}x"
             f"{t.preprocessing['resolution']}, {t.preprocessing['scale']}: mean "
             f"{_floats(t.preprocessing['mean'])}, std {_floats(t.preprocessing['std'])}.",
             f"- Output: {t.deploy_params.get('classes', '?')} class logits.", ""]
    if origin is not None:
        lines += ["## Where it came from", "",
                  f"- Found by a hwnas search: strategy `{origin['strategy']}`, estimator "
                  f"`{origin['estimator']}` (score {origin['score']:.4g}), "
                  f"{origin['evaluations']} estimator calls.",
                  *[f"- Device `{d['name']}` ({d['backend']}): budget {d['budget_ms']:g} ms."
                    for d in origin["devices"]], ""]
    budget = (f"{t.budget['minutes']:g} minutes" if t.budget.get("minutes") is not None
              else f"{t.budget['epochs']} epochs")
    lines += ["## Training", "",
              f"- Data: {t.data}.",
              f"- Trained at {pre['train_resolution']}x{pre['train_resolution']} with a "
              f"budget of {budget}: "
              f"{t.epochs} epochs, "
              f"{t.steps} steps, {t.seconds:.0f} s"
              + (f", initialised from the supernet `{t.init}`." if t.init else
                 ", from scratch."),
              f"- Recipe: {_recipe(t.recipe)}.",
              (f"- The last {100 * t.recipe['final_fraction']:.0f}% of the budget trained at "
               f"the deployment's {pre['final_resolution']} px (progressive resizing), "
               "with a warm restart of the learning rate"
               + (f"; before it, images were also zoomed in at random by up to "
                  f"{pre['final_resolution'] / pre['train_resolution']:g}x, the ratio of "
                  "the two resolutions" if t.recipe.get("zoom")
                  and pre["final_resolution"] > pre["train_resolution"] else "") + ".\n"
               if pre["final_resolution"] != pre["train_resolution"] else "")
              + "- BN statistics re-estimated on training images after training"
              + (", and again at the deployment resolution before export."
                 if pre["resolution"] != pre["final_resolution"] else "."), "",
              "## Accuracy (val split, top-1)", "",
              "| model | runtime | accuracy |", "|---|---|---|",
              f"| torch fp32 at {pre['final_resolution']} px | torch | {acc['torch']:.2%} |"]
    for fmt, name in (("onnx", "model.onnx"), ("tflite", "model.tflite"),
                      ("tflite-int8", "model-int8.tflite"), ("openvino", "model.xml")):
        if fmt in acc:
            runtime = {"onnx": "onnxruntime", "openvino": "OpenVINO"}.get(fmt, "LiteRT")
            lines.append(f"| {name} | {runtime} | {acc[fmt]:.2%} |")
    if t.int8_drop is not None:
        lines += ["", f"int8 vs fp32 (TFLite files): {-100 * t.int8_drop:+.2f} points."]
    lines += ["", "## Latency", "", "| device | file | predicted ms | measured ms | budget ms |",
              "|---|---|---|---|---|"]
    for row in latency:
        pred = f"{row['predicted_ms']:.2f}" if row["predicted_ms"] is not None else "-"
        meas = (f"{row['measured_ms']:.2f}" if row["measured_ms"] is not None
                else f"not timed here ({row['note']})")
        if row.get("profiling_speed_ms") is not None:
            meas += f" ({row['profiling_speed_ms']:.2f} at the profiling run's machine speed)"
        budget_ms = f"{row['budget_ms']:g}" if row["budget_ms"] is not None else "-"
        lines.append(f"| {row['device']} | {row['file'] or '-'} | {pred} | {meas} | "
                     f"{budget_ms} |")
    lines += ["", "Measured: median of interleaved runs on this machine, with the device "
              "profile's threads. This shared machine's speed drifts between minutes; where "
              "the profiling run's reference cell was timed beside the file, the median is "
              "also given at the speed the prediction was measured at.", "",
              "## Reproduce", "", "```sh", command, "```", ""]
    return "\n".join(lines)


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _floats(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"


def _recipe(recipe: dict[str, Any]) -> str:
    return (f"{recipe['optimizer'].upper()} lr {recipe['lr']:g} (warm-up, cosine), weight "
            f"decay {recipe['weight_decay']:g}, batch {recipe['batch_size']}, label "
            f"smoothing {recipe['label_smoothing']:g}, random translation "
            f"{recipe['translate']:g}" + (", horizontal flips" if recipe["flip"] else "")
            + f", seed {recipe['seed']}")

"""`hwnas train`: train one arch, export it (ONNX, TFLite fp32/int8), write its model card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from profilers.device import DeviceProfile, load_device

from .options import ParamOpt, command_line, parse_params


def train(
    ctx: typer.Context,
    space_name: Annotated[str, typer.Option("--space", help="Space name, e.g. mbv2.")],
    arch: Annotated[str, typer.Option(help="Architecture string (as `hwnas search` prints).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (an interrupted run "
                                      "in it is resumed).")],
    param: ParamOpt = None,
    data: Annotated[str | None, typer.Option(help="ImageFolder dir or .npz (x, y); default: "
                                             "bundled digits.")] = None,
    minutes: Annotated[float | None, typer.Option(help="Wall-clock training budget.")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Epoch budget (reproducible).")
                      ] = None,
    init: Annotated[Path | None, typer.Option(help="Supernet checkpoint to inherit weights "
                                              "from (same space and params).")] = None,
    device: Annotated[list[Path] | None, typer.Option(
        help="Device profile JSON: deployment resolution and where to time the files "
             "(repeatable).")] = None,
    deploy_resolution: Annotated[int | None, typer.Option(
        help="Deployment input size without --device (default: -p resolution, else 32). "
             "Training runs at -p resolution, else half of it (at least 64).")] = None,
    export: Annotated[str, typer.Option(help="Exported files, comma separated: onnx, tflite, "
                                        "tflite-int8, openvino.")] = "onnx,tflite,tflite-int8",
    optimizer: Annotated[str, typer.Option(help="sgd or adamw.")] = "sgd",
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (default: 0.1 per 128 "
                                             "images a batch for sgd, 0.002 adamw).")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    flip: Annotated[bool, typer.Option(help="Random horizontal flips (off: digits and "
                                       "text are not mirror-symmetric).")] = False,
    zoom: Annotated[bool, typer.Option(help="Random zooms before the deployment-resolution "
                                       "phase, so objects also appear as large as they "
                                       "will there.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of init, data order and augmentation.")] = 0,
    threads: Annotated[int, typer.Option(min=1, help="torch and runtime threads.")] = 1,
    fresh: Annotated[bool, typer.Option(help="Start afresh instead of resuming OUT.")] = False,
) -> None:
    """Train ARCH of SPACE on DATA within the budget, export it and write model_card.md."""
    from pydantic import ValidationError

    from search.data import load_dataset
    from search.deliver import measure_exported
    from search.ship import latency_rows, model_card, train_and_export, train_resolution
    from search.training.recipe import Recipe, TrainingCancelled
    from spaces import get_space

    if (minutes is None) == (epochs is None):
        raise ValueError("--minutes/--epochs: give exactly one budget")
    params = parse_params(space_name, param)
    given = params.pop("resolution", None)
    devices = [load_device(p) for p in device or []]
    deploy_res = _deploy_resolution(devices, deploy_resolution, int(given or 32))
    resolution = int(given or train_resolution(deploy_res))
    dataset = load_dataset(data, resolution=resolution, seed=seed)
    params.setdefault("classes", dataset.classes)
    train_space = get_space(space_name, **params, resolution=resolution)
    deploy_space = get_space(space_name, **params, resolution=deploy_res)
    try:
        recipe = Recipe(optimizer=optimizer, lr=lr, batch_size=batch_size, flip=flip, zoom=zoom,
                        seed=seed)
    except ValidationError as err:
        from profilers.schema import describe_validation_error

        raise ValueError(describe_validation_error(err)) from None
    formats = [f.strip() for f in export.split(",") if f.strip()]
    with typer.progressbar(length=1000, label="train", show_eta=True) as bar:
        done = 0

        def progress(status: object) -> None:
            nonlocal done
            val = status.val_accuracy
            bar.label = (f"epoch {status.epoch} loss {status.loss:.3f} val "
                         + (f"{val:.1%}" if val is not None else "-"))
            now = int(1000 * status.fraction)
            bar.update(now - done)
            done = now

        try:
            result, files = train_and_export(
                train_space, deploy_space, train_space.decode(arch), dataset, out,
                formats=formats, minutes=minutes, epochs=epochs, recipe=recipe,
                init=init, resume=not fresh, progress=progress, threads=threads)
        except (KeyboardInterrupt, TrainingCancelled):
            typer.echo(f"\ninterrupted; {out}/train/checkpoint.pt holds the last finished "
                       "epoch: run the same command to resume", err=True)
            raise typer.Exit(130) from None
    measured = measure_exported(out, devices or _local_devices(formats, deploy_res, threads))
    (out / "model_card.md").write_text(model_card(
        space=space_name, training=result, latency=latency_rows(measured),
        command=command_line(ctx)))
    acc = result.val_accuracy
    typer.echo(f"{result.epochs} epochs, {result.seconds:.0f} s; val accuracy "
               + ", ".join(f"{k} {v:.2%}" for k, v in acc.items()))
    for name, got in measured.items():
        typer.echo(f"{name}: " + (f"{got['median_ms']:.2f} ms ({got['file']})"
                                  if got.get("measured") else f"not timed ({got['reason']})"))
    typer.echo(f"-> {out}/model_card.md, {out}/train.json, "
               + ", ".join(f["path"] for f in files.values()))


def _deploy_resolution(devices: list[DeviceProfile], given: int | None, train: int) -> int:
    sizes = {d.resolution for d in devices}
    if len(sizes) > 1:
        raise ValueError(f"--device: the profiles take different resolutions {sorted(sizes)}")
    if sizes and given is not None and given not in sizes:
        raise ValueError(f"--deploy-resolution {given} differs from the device profile's "
                         f"{sizes.pop()}")
    return sizes.pop() if sizes else (given or train)


def _local_devices(formats: list[str], resolution: int, threads: int) -> list[DeviceProfile]:
    """This machine's CPU on each exported file's runtime (fp32 and int8 TFLite apart)."""
    runs = {"onnx": ("onnxruntime", "fp32"), "tflite": ("tflite", "fp32"),
            "tflite-int8": ("tflite", "int8"), "openvino": ("openvino", "fp32")}
    return [DeviceProfile(name=f"local-{fmt}", backend=runs[fmt][0], precision=runs[fmt][1],
                          threads=threads, resolution=resolution, hardware="this machine")
            for fmt in formats if fmt in runs]

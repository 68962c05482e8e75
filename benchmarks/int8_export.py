"""int8 vs fp32 TFLite on LiteRT/XNNPACK: whole archs and single blocks, one interleaved run.

For each arch of `mbv2` (224x224, `--width`; the `train_winner` winner when its result
file exists, plus `--archs` seeded random ones) four files are written from the same
weights: fp32 as litert-torch converts the module (the reference: what hwnas exported
before `models.xnnpack` banded 7x7 depthwise filters), fp32 as hwnas exports it now, int8
from litert-torch's `PT2EQuantizer` as shipped (the reference: what hwnas exported before
`models.quantize` and `models.xnnpack`), and int8 as hwnas exports it now. Each int8
file's graph is described (XNNPACK partitions, ops left in float or on TFLite's own
kernels), and all files are timed together in interleaved rounds on LiteRT with
`--threads` threads, so the int8/fp32 ratios share the machine's drift.

A second table times single MBConv blocks (k3/k5/k7 x ReLU/h-swish, with and without
SE) at two shapes, and each shape's squeeze-excite alone (at the block's expanded width):
it shows which kernels are faster in int8 on this CPU.

    flock /tmp/hwnas-cpu.lock .venv/bin/python benchmarks/int8_export.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _report import arguments, host_facts, utc_now, write_report
from torch import nn

from models import build
from models.blocks import MBConv, MBConvSpec, SqueezeExcite
from models.export import export_tflite, export_tflite_int8
from profilers.base import get_backend
from profilers.formats import ProtocolSettings
from profilers.protocol import measure_many
from spaces import get_space

OUT = Path(__file__).parent / "results" / "int8_export.json"
WINNER = Path(__file__).parent / "results" / "train_winner.json"
# (in_ch, resolution, expand): an early high-resolution block and a late narrow one.
BLOCK_SHAPES = ((16, 56, 6), (40, 14, 3))


def _shipped_int8(module: nn.Module, example: torch.Tensor, path: Path,
                  calibration: torch.Tensor) -> Path:
    """The reference: litert-torch's quantizer with no hwnas rewrites or annotations."""
    import litert_torch
    from litert_torch.quantize import pt2e_quantizer, quant_config
    from torchao.quantization.pt2e import quantize_pt2e

    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
    prepared = quantize_pt2e.prepare_pt2e(
        torch.export.export(module.eval(), (example,)).module(), quantizer)
    with torch.no_grad():
        for chunk in calibration.split(example.shape[0]):
            prepared(chunk)
    converted = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
    config = quant_config.QuantConfig(pt2e_quantizer=quantizer)
    litert_torch.convert(converted, (example,), quant_config=config).export(str(path))
    return path


def describe_graph(path: Path) -> dict[str, Any]:
    """XNNPACK partitions, and the ops outside them (float ones counted apart)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    dtypes = {t["index"]: np.dtype(t["dtype"]) for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # the only listing LiteRT exposes
    names = [op["op_name"] for op in ops]
    float_ops = sum(op["op_name"] != "DELEGATE" and any(
        dtypes[i] == np.float32 for i in (*op["inputs"], *op["outputs"]) if i >= 0)
        for op in ops)
    return {"partitions": names.count("DELEGATE"), "float_ops": int(float_ops),
            "quantize_ops": names.count("QUANTIZE") + names.count("DEQUANTIZE"),
            "transposes": names.count("TRANSPOSE"), "hard_swish": names.count("HARD_SWISH")}


def _settle_bn(net: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """Running statistics from a few random batches, so BN folding is not the identity."""
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(4, *shape[1:]))
    return net.eval()


def _files(net: nn.Module, shape: tuple[int, ...], folder: Path, *,
           shipped: bool = True) -> dict[str, Path]:
    """The fp32 and int8 files of `net` (the "int8 shipped" reference only if `shipped`)."""
    import litert_torch

    folder.mkdir(parents=True, exist_ok=True)
    example = torch.randn(*shape)
    calibration = torch.randn(8, *shape[1:])
    plain = folder / "fp32-plain.tflite"
    litert_torch.convert(net, (example,)).export(str(plain))
    files = {
        "fp32 plain": plain,
        "fp32": export_tflite(net, example, folder / "fp32.tflite"),
        "int8 hwnas": export_tflite_int8(net, example, folder / "int8.tflite",
                                         calibration=[calibration]),
    }
    if shipped:
        files["int8 shipped"] = _shipped_int8(net, example, folder / "int8-shipped.tflite",
                                              calibration)
    return files


def _time(files: dict[str, Path], threads: int, runs: int) -> dict[str, float]:
    backend = get_backend("tflite")
    runners = {key: backend.load(path, threads=threads,
                                 precision="int8" if "int8" in key.split("/")[-1] else "fp32")
               for key, path in files.items()}
    stats = measure_many(runners, ProtocolSettings(runs=runs, rounds=min(runs, 20)))
    return {key: s.median_ms for key, s in stats.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--archs", type=int, default=3, help="random archs besides the winner")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    space = get_space("mbv2", resolution=224, width=args.width, classes=10)
    archs: dict[str, str] = {}
    if WINNER.exists():
        archs["train_winner winner"] = json.loads(WINNER.read_text())["winner"]["arch"]
    rng = np.random.default_rng(args.seed)
    for i in range(args.archs):
        archs[f"random {i}"] = space.encode(space.sample(rng))
    work = Path(tempfile.mkdtemp(prefix="hwnas-int8-"))
    files: dict[str, Path] = {}
    graphs: dict[str, dict[str, Any]] = {}
    torch.manual_seed(args.seed)
    for name, text in archs.items():
        print(f"exporting {name}", flush=True)
        shape = space.input_shape.nchw()
        net = _settle_bn(build(space, space.decode(text)), shape)
        for fmt, path in _files(net, shape, work / name.replace(" ", "-")).items():
            files[f"{name}/{fmt}"] = path
            if fmt.startswith("int8"):
                graphs[f"{name}/{fmt}"] = describe_graph(path)
    blocks: dict[str, tuple[nn.Module, tuple[int, ...]]] = {}
    for in_ch, res, expand in BLOCK_SHAPES:
        mid = in_ch * expand
        blocks[f"squeeze-excite {mid}ch {res}px"] = (SqueezeExcite(mid), (1, mid, res, res))
        for kernel, act, se in itertools.product((3, 5, 7), ("relu", "hswish"), (True, False)):
            name = f"block {in_ch}ch {res}px e{expand} k{kernel} {act}{'' if se else ' no-se'}"
            spec = MBConvSpec(in_ch, in_ch, 1, kernel, expand, se, act)
            blocks[name] = (MBConv(spec), (1, in_ch, res, res))
    for name, (module, shape) in blocks.items():
        net = _settle_bn(module, shape)
        for fmt, path in _files(net, shape, work / name.replace(" ", "-"),
                                shipped=False).items():
            files[f"{name}/{fmt}"] = path
    print(f"timing {len(files)} files in interleaved rounds", flush=True)
    ms = _time(files, args.threads, args.runs)

    rows: list[dict[str, Any]] = []
    print(f"\n{'model':<40} {'fp32 plain':>10} {'fp32 ms':>8} {'int8 shipped':>13} "
          f"{'int8 hwnas':>11} {'int8/fp32':>9}  graph (hwnas int8; shipped)")
    for name in [*archs, *sorted({k.rsplit('/', 1)[0] for k in files} - set(archs))]:
        fp32, hwnas = ms[f"{name}/fp32"], ms[f"{name}/int8 hwnas"]
        shipped = ms.get(f"{name}/int8 shipped")
        plain = ms[f"{name}/fp32 plain"]
        row = {"model": name, "arch": archs.get(name), "fp32_plain_ms": plain, "fp32_ms": fp32,
               "int8_shipped_ms": shipped, "int8_hwnas_ms": hwnas, "int8_over_fp32": hwnas / fp32,
               "graph_hwnas": graphs.get(f"{name}/int8 hwnas"),
               "graph_shipped": graphs.get(f"{name}/int8 shipped")}
        rows.append(row)
        graph = "" if row["graph_hwnas"] is None else (
            f"{row['graph_hwnas']['partitions']} partition(s), {row['graph_hwnas']['float_ops']} "
            f"float ops; {row['graph_shipped']['partitions']} partitions, "
            f"{row['graph_shipped']['float_ops']} float ops")
        print(f"{name:<40} {plain:>10.3f} {fp32:>8.3f} "
              f"{'' if shipped is None else f'{shipped:.3f}':>13} {hwnas:>11.3f} "
              f"{hwnas / fp32:>9.2f}  {graph}")
    result = {"benchmark": "int8_export", "date": utc_now(), "host": host_facts(),
              "settings": arguments(args), "rows": rows}
    write_report(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

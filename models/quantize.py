"""Preparing a network for int8 TFLite export so that the whole graph runs in int8.

litert-torch's `PT2EQuantizer` annotates convolutions, linear layers, pooling, and adds
and multiplies it recognises by their source function. Two gaps leave float islands (a
DEQUANTIZE, float ops, a QUANTIZE) in an MBConv graph, and one op is left to TFLite's slow
reference kernel:

- the residual `x + y` of a block is traced as `aten.add.Tensor` with no source function
  the quantizer matches, so it stays float;
- the hard-sigmoid of the squeeze-excite gate has no int8 pattern at all;
- int8 HARD_SWISH exists in TFLite, but LiteRT's XNNPACK delegate does not take it: each
  one splits the delegated graph and runs on the reference kernel. On this machine two
  MBConv blocks with h-swish at 56x56 took 9.4 ms in int8 against 2.1 ms in fp32.

`int8_ready` rewrites h-swish as x * relu6(x + 3) * 1/6 and h-sigmoid as
relu6(x + 3) * 1/6 (the same functions), with the constants as 1x1x1x1 tensors: a scalar
constant is not 4-D, so litert-torch's layout pass would keep the op in NCHW and wrap it
in transposes. `Int8Quantizer` annotates the adds, multiplies and clamps the base
quantizer leaves out, with the same per-tensor activation spec. The result is one XNNPACK
partition with no float ops and no transposes but the input's (measured in
`benchmarks/int8_export.py`).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from litert_torch.quantize import pt2e_quantizer, pt2e_quantizer_utils
from torch import nn
from torch.fx import GraphModule, Node
from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

_ELEMENTWISE = (torch.ops.aten.add.Tensor, torch.ops.aten.mul.Tensor,
                torch.ops.aten.hardtanh.default)


class HardSigmoid(nn.Module):
    """relu6(x + 3) / 6, in ops XNNPACK runs in int8 (ADD with a fused RELU6, MUL)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("three", torch.full((1, 1, 1, 1), 3.0))
        self.register_buffer("sixth", torch.full((1, 1, 1, 1), 1.0 / 6.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + self.three) * self.sixth


class HardSwish(HardSigmoid):
    """x * relu6(x + 3) / 6."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * super().forward(x)


def int8_ready(module: nn.Module) -> nn.Module:
    """A copy of `module` with every Hardswish/Hardsigmoid replaced by its int8 form."""
    out = copy.deepcopy(module)
    for parent in out.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Hardswish):
                setattr(parent, name, HardSwish())
            elif isinstance(child, nn.Hardsigmoid):
                setattr(parent, name, HardSigmoid())
    return out


class Int8Quantizer(pt2e_quantizer.PT2EQuantizer):
    """litert-torch's quantizer, plus int8 annotations for the elementwise ops it skips."""

    def annotate(self, model: GraphModule) -> GraphModule:
        model = super().annotate(model)
        config = self.global_config
        for node in model.graph.nodes:
            if (node.op != "call_function" or node.target not in _ELEMENTWISE
                    or "quantization_annotation" in node.meta):
                continue
            operands = node.args[:1] if node.target == torch.ops.aten.hardtanh.default \
                else node.args[:2]
            node.meta["quantization_annotation"] = QuantizationAnnotation(
                input_qspec_map={a: pt2e_quantizer_utils.get_input_act_qspec(config)
                                 for a in operands if isinstance(a, Node)},
                output_qspec=pt2e_quantizer_utils.get_output_act_qspec(config),
                _annotated=True)
        return model


def int8_quantizer() -> Int8Quantizer:
    """Symmetric per-channel int8 weights, per-tensor affine int8 activations."""
    quantizer = Int8Quantizer()
    quantizer.set_global(pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
    return quantizer

"""Networks: every op builds and trains, supernet paths equal extracted nets, counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from models import Supernet, build, build_cell, count_flops, count_params
from models.blocks import MBConv, MBConvSpec
from spaces import Arch, ArchError, Space, list_spaces
from tests.conftest import small_space


def _ops(name: str) -> list[str]:
    space = small_space(name)
    return sorted({op for slot in space.slots for op in slot.choices})


def _arch_using(space: Space, op: str) -> Arch:
    """`op` in every slot that allows it, the default elsewhere."""
    default = space.default().ops
    return Arch(tuple(op if op in s.choices else d for s, d in zip(space.slots, default,
                                                                   strict=True)))


@pytest.mark.parametrize(("name", "op"), [(n, op) for n in list_spaces() for op in _ops(n)])
def test_every_op_builds_and_runs_forward_and_backward(name: str, op: str) -> None:
    space = small_space(name)
    torch.manual_seed(0)
    net = build(space, _arch_using(space, op))
    x = net.example_input(4)
    out = net(x)
    assert out.shape == (4, space.params["classes"])
    loss = nn.functional.cross_entropy(out, torch.arange(4) % out.shape[1])
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    if op != "none":  # an all-`none` nb201 cell cuts the stem off the graph, as it should
        assert len(grads) == len(list(net.parameters()))


def test_mbconv_block_shapes_and_residual() -> None:
    block = MBConv(MBConvSpec(16, 16, 1, 5, 6, True, "hswish"))
    assert block.residual
    assert block(torch.zeros(2, 16, 8, 8)).shape == (2, 16, 8, 8)
    down = MBConv(MBConvSpec(16, 24, 2, 7, 3, False, "relu"))
    assert not down.residual
    assert down(torch.zeros(2, 16, 9, 9)).shape == (2, 24, 5, 5)
    with pytest.raises(ValueError, match="stride"):
        MBConv(MBConvSpec(16, 24, 3, 3, 3, False, "relu"))


@pytest.mark.parametrize("name", list_spaces())
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_supernet_extract_equals_supernet_forward(name: str, mode: str) -> None:
    space = small_space(name)
    torch.manual_seed(0)
    sup = Supernet(space)
    rng = np.random.default_rng(0)
    x = torch.randn(4, *sup.net.input_shape)
    # Give BN layers non-trivial running statistics first, on several paths.
    sup.train()
    with torch.no_grad():
        for _ in range(3):
            sup.set_active(space.sample(rng))
            sup(x)
    for _ in range(3):
        arch = space.sample(rng)
        sup.set_active(arch)
        sup.train(mode == "train")
        with torch.no_grad():
            expected = sup(x)
        sub = sup.extract(arch).train(mode == "train")
        with torch.no_grad():
            got = sub(x)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
        assert count_params(sub) == sum(p.numel() for p in sup.active_parameters())


def test_supernet_step_updates_only_the_active_path() -> None:
    space = small_space("mbv2")
    sup = Supernet(space)
    arch = space.sample(np.random.default_rng(1))
    sup.set_active(arch)
    out = sup(torch.randn(2, *sup.net.input_shape))
    out.sum().backward()
    active = {id(p) for p in sup.active_parameters()}
    for p in sup.parameters():
        assert (p.grad is not None) == (id(p) in active)


def test_supernet_needs_an_active_arch() -> None:
    sup = Supernet(small_space("nb201"))
    with pytest.raises(RuntimeError, match="set_active"):
        sup(torch.randn(1, *sup.net.input_shape))


def test_count_flops_matches_hand_count() -> None:
    conv = nn.Conv2d(8, 16, 3, padding=1, bias=False)
    # 2 FLOPs per multiply-add: out elements x (in_ch x k x k).
    assert count_flops(conv, torch.zeros(1, 8, 10, 10)) == 2 * 16 * 10 * 10 * 8 * 9
    dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
    assert count_flops(dw, torch.zeros(1, 8, 10, 10)) == 2 * 8 * 10 * 10 * 9
    assert count_params(conv) == 16 * 8 * 9


def test_default_mbv2_at_224_is_mobilenet_sized() -> None:
    from spaces import get_space

    space = get_space("mbv2")
    net = build(space, space.default())
    params, flops = count_params(net), count_flops(net, net.example_input())
    # All-k3e6 ProxylessNAS layout: 21 blocks of MobileNetV2's op, 4.7M params, 0.47G MACs.
    assert 4.5e6 < params < 5.0e6
    assert 0.9e9 < flops < 1.0e9


@pytest.mark.parametrize("name", list_spaces())
def test_every_cell_builds_with_its_shapes(name: str) -> None:
    space = small_space(name)
    for cell in space.cells():
        module = build_cell(space, cell)
        assert not module.training
        x = torch.randn(1, cell.in_shape.ch, cell.in_shape.res, cell.in_shape.res)
        with torch.no_grad():
            y = module(x)
        if cell.kind == "head":
            assert y.shape == (1, cell.out_shape.ch)
        else:
            assert y.shape == (1, cell.out_shape.ch, cell.out_shape.res, cell.out_shape.res)


def test_supernet_of_a_restricted_space_holds_only_its_ops() -> None:
    full = small_space("mbv2")
    space = full.restrict({i: ["k3e6-relu", "k5e3-se-hswish"] for i in range(len(full.slots))})
    sup = Supernet(space)
    assert all(set(c.options) == {"k3e6-relu", "k5e3-se-hswish"} for c in sup.choices)
    arch = space.sample(np.random.default_rng(0))
    sub = sup.extract(arch).eval()
    sup.eval()
    x = torch.randn(2, *sup.net.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(sub(x), sup(x), rtol=0, atol=1e-6)
    with pytest.raises(ArchError, match="not allowed"):
        sup.set_active(Arch(("k7e1-relu",) * len(full.slots)))

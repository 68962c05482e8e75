"""Fast arch -> index encoding, additive feature tables, analytic FLOPs vs torch's counter."""

from __future__ import annotations

import numpy as np
import pytest

from latency import arch_indices
from latency.features import cell_flops, flops_table, structure_table
from spaces import Arch, ArchError, get_space
from tests.conftest import small_space


def test_indices_match_space(space_name: str) -> None:
    space = small_space(space_name)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(50)]
    idx = arch_indices(space, archs)
    assert np.array_equal(idx, space.to_indices(archs))
    assert np.array_equal(arch_indices(space, [space.encode(a) for a in archs]), idx)
    assert np.array_equal(arch_indices(space, idx), idx)


def test_bad_archs_raise(space_name: str) -> None:
    space = small_space(space_name)
    good = space.default()
    with pytest.raises(ArchError):
        arch_indices(space, [good, Arch(good.ops[:-1])])
    with pytest.raises(ArchError, match="not allowed"):
        arch_indices(space, [good, Arch((*good.ops[:-1], "conv9x9"))])
    bad = space.to_indices([good])
    bad[0, 0] = 99
    with pytest.raises(ArchError, match="out of range"):
        arch_indices(space, bad)


def test_flops_match_torch_counter(space_name: str) -> None:
    from models import build, count_flops

    space = small_space(space_name)
    table = flops_table(space).column("mflops")
    rng = np.random.default_rng(1)
    for arch in [space.default(), space.sample(rng)]:
        net = build(space, arch)
        expected = count_flops(net, net.example_input()) / 1e6
        assert table.sum(space.to_indices([arch]))[0, 0] == pytest.approx(expected, rel=1e-9)


def test_structure_counts_mbv2() -> None:
    space = get_space("mbv2")
    arch = space.decode(",".join(["k5e6-se-hswish"] + ["skip" if s.name != "s1.0" and
                                                       "skip" in s.choices else "k3e1-relu"
                                                       for s in space.slots[1:]]))
    table = structure_table(space)
    row = dict(zip(table.names, table.sum(space.to_indices([arch]))[0], strict=True))
    assert row["se"] == 1 and row["hswish"] == 1 and row["k5"] == 1 and row["e6"] == 1
    assert row["skip"] == 15 and row["blocks_s1"] == 1 and row["expand_sum_s1"] == 6


def test_flops_unknown_space() -> None:
    space = get_space("mbv2")
    with pytest.raises(ValueError, match="no analytic FLOPs"):
        cell_flops("other", space.cells()[0])

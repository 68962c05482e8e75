"""Spaces: archs round-trip, rules stay inside the space, errors name the problem."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spaces import Arch, ArchError, UnknownSpaceError, get_space, list_spaces
from spaces.mbv2 import MBCONV_OPS

SPACES = {name: get_space(name) for name in list_spaces()}


@st.composite
def archs(draw: st.DrawFn, name: str) -> Arch:
    space = SPACES[name]
    return Arch(tuple(draw(st.sampled_from(slot.choices)) for slot in space.slots))


@pytest.mark.parametrize("name", list_spaces())
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_arch_string_round_trips(name: str, data: st.DataObject) -> None:
    space = SPACES[name]
    arch = data.draw(archs(name))
    text = space.encode(arch)
    assert space.decode(text) == arch
    assert space.encode(space.decode(text)) == text
    assert hash(space.decode(text)) == hash(arch)
    idx = space.to_indices([arch])
    assert space.from_indices(idx[0]) == arch


def test_arch_is_frozen_and_hashable() -> None:
    a = Arch(("x", "y"))
    with pytest.raises(AttributeError):
        a.ops = ("z",)  # type: ignore[misc]
    assert {a, Arch(("x", "y"))} == {a}


def test_mbv2_layout_follows_proxylessnas() -> None:
    space = get_space("mbv2")
    assert len(space.slots) == 21
    assert set(MBCONV_OPS) <= set(space.slots[1].choices)
    assert len(MBCONV_OPS) == 36  # 3 kernels x 3 expansions x SE x 2 activations
    first_of_stage = [s for s in space.slots if "skip" not in s.choices]
    assert [s.name for s in first_of_stage] == ["s1.0", "s2.0", "s3.0", "s4.0", "s5.0", "s6.0"]
    assert [s.out_shape.ch for s in first_of_stage] == [24, 40, 80, 96, 192, 320]
    assert space.last_shape.res == 7
    assert math.isclose(space.size(), 6 * math.log10(36) + 15 * math.log10(37))


def test_mbv2_parameters_change_shapes_not_strings() -> None:
    big, small = get_space("mbv2"), get_space("mbv2", resolution=32, width=0.5, classes=10)
    arch = big.sample(np.random.default_rng(1))
    assert small.decode(big.encode(arch)) == arch
    assert small.slots[0].in_shape.res == 32  # small inputs keep stride 1 in the stem
    assert small.last_shape.res == 4
    assert small.slots[-1].out_shape.ch == 160
    assert big.cell_keys(arch) != small.cell_keys(arch)


def test_nb201_accepts_the_benchmark_strings() -> None:
    space = get_space("nb201")
    text = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|none~2|"
    arch = space.decode(text)
    assert arch.ops == ("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none",
                        "avg_pool_3x3", "none")
    assert space.encode(arch) == text
    assert round(10 ** space.size()) == 15625


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("mbv2", "", "empty"),
        ("mbv2", "k3e6-relu", "has 1 ops"),
        ("mbv2", ",".join(["k9e6-relu"] * 21), "slot s1.0: 'k9e6-relu' is not an mbv2 op"),
        ("mbv2", ",".join(["skip"] * 21), "slot s1.0: op 'skip' is not allowed here"),
        ("nb201", "|nor_conv_3x3~0|+|skip_connect~0|", "expected 3"),
        ("nb201", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "edge 1<-0: op 'conv'"),
        ("nb201", "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must be 'op~0'"),
        ("nb201", "|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2: has 1 inputs"),
    ],
)
def test_decode_errors_name_the_problem(name: str, text: str, message: str) -> None:
    with pytest.raises(ArchError, match=message.replace("(", r"\(")):
        SPACES[name].decode(text)


def test_registry_errors() -> None:
    with pytest.raises(UnknownSpaceError, match=r"unknown space 'nope' \(known: mbv2, nb201\)"):
        get_space("nope")
    with pytest.raises(ValueError, match="no parameter 'depth'"):
        get_space("mbv2", depth=3)
    with pytest.raises(ValueError, match="resolution must be"):
        get_space("mbv2", resolution=0)


@pytest.mark.parametrize("name", list_spaces())
def test_rules_stay_inside_the_space(name: str) -> None:
    space = SPACES[name]
    rng = np.random.default_rng(0)
    a, b = space.sample(rng), space.sample(rng)
    for _ in range(50):
        child = space.mutate(a, rng, prob=0.2)
        assert space.contains(child) and child != a
        mixed = space.crossover(a, b, rng)
        assert all(op in (x, y) for op, x, y in zip(mixed.ops, a.ops, b.ops, strict=True))
    nbrs = space.neighbours(a)
    assert len(nbrs) == sum(n - 1 for n in space.num_choices) == len(set(nbrs))
    assert all(sum(x != y for x, y in zip(n.ops, a.ops, strict=True)) == 1 for n in nbrs)


@pytest.mark.parametrize("name", list_spaces())
def test_sampling_is_seeded_and_covers_choices(name: str) -> None:
    space = SPACES[name]
    first = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert first == [space.sample(np.random.default_rng(7)) for _ in range(3)]
    rng = np.random.default_rng(0)
    seen = {op for _ in range(400) for op in space.sample(rng).ops[1:2]}
    assert seen == set(space.slots[1].choices)


@pytest.mark.parametrize("name", list_spaces())
def test_features_are_one_hot_per_slot(name: str) -> None:
    space = SPACES[name]
    arch = space.sample(np.random.default_rng(3))
    f = space.features(arch)
    assert f.shape == (sum(space.num_choices),)
    assert f.sum() == len(space.slots)
    batch = space.features_batch([arch, space.default()])
    assert np.array_equal(batch[0], f)
    start = 0
    for slot, op in zip(space.slots, arch.ops, strict=True):
        assert f[start + slot.choices.index(op)] == 1
        start += len(slot.choices)


@pytest.mark.parametrize("name", list_spaces())
def test_cells_are_distinct_and_cover_every_arch(name: str) -> None:
    space = SPACES[name]
    cells = space.cells()
    keys = [c.key for c in cells]
    assert len(keys) == len(set(keys))
    assert {c.kind for c in cells} >= {"stem", "head", "cell"}
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert set(space.cell_keys(space.sample(rng))) <= set(keys)


def test_lut_keys_are_readable_signatures() -> None:
    keys = {c.key for c in get_space("mbv2").cells()}
    assert "mbconv-k5-e6-se-hswish-in28x28x40-out14x14x80-s2" in keys
    assert "stem-c32-c16-in224x224x3-out112x112x16-s2" in keys
    assert "head-c1280-in7x7x320-out1000" in keys
    skipless = get_space("mbv2").default()
    assert len(get_space("mbv2").cell_keys(skipless)) == 23
    nb = get_space("nb201")
    assert len(nb.cell_keys(nb.default())) == 4 + 2 * 15  # fixed parts + two convs per cell


def test_restrict_keeps_only_the_chosen_ops() -> None:
    space = get_space("mbv2", resolution=32)
    small = space.restrict({i: ["k3e6-relu", "k5e3-se-hswish"] for i in range(len(space.slots))})
    assert math.isclose(small.size(), 21 * math.log10(2))
    arch = small.sample(np.random.default_rng(0))
    assert space.contains(arch) and small.contains(arch)
    assert small.decode(space.encode(arch)) == arch
    with pytest.raises(ArchError, match="not allowed"):
        small.decode(space.encode(Arch(("k7e1-relu",) * 21)))
    # Slots with equal shapes share their cells: 11 distinct slot shapes, 2 ops each.
    shapes = {(s.in_shape, s.out_shape, s.stride) for s in space.slots}
    assert len(shapes) == 11
    assert len(small.cells()) == 2 + 2 * len(shapes)
    with pytest.raises(ArchError, match="leaves no op"):
        space.restrict({0: []})
    smaller = small.restrict({0: ["k3e6-relu"]})
    assert smaller.slots[0].choices == ("k3e6-relu",)
    assert smaller.slots[1].choices == ("k3e6-relu", "k5e3-se-hswish")
    with pytest.raises(ArchError, match="not allowed"):
        small.restrict({0: ["k7e1-relu"]})

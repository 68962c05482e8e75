"""`Space.op_factors`: the sub-choices FP-NAS's coarse phase factorises, from the space's rules."""

from __future__ import annotations

import pytest

from spaces import ArchError, get_space, list_spaces
from tests.conftest import small_space


@pytest.mark.parametrize("name", list_spaces())
def test_factors_are_one_distinct_dict_per_choice(name: str) -> None:
    space = small_space(name)
    for i, slot in enumerate(space.slots):
        factors = space.op_factors(i)
        if factors is None:
            continue
        assert len(factors) == len(slot.choices)
        keys = {tuple(sorted(f.items())) for f in factors}
        assert len(keys) == len(slot.choices)
        assert all(isinstance(v, str) for f in factors for v in f.values())


def test_mbv2_factors_cover_the_operator_pool() -> None:
    space = get_space("mbv2")
    factors = space.op_factors(1)
    assert factors is not None
    by_op = dict(zip(space.slots[1].choices, factors, strict=True))
    assert by_op["k5e6-se-hswish"] == {"block": "mbconv", "kernel": "5", "expand": "6",
                                       "se": "on", "act": "hswish"}
    assert by_op["skip"] == {"block": "skip"}
    assert get_space("nb201").op_factors(0) is None


def test_restricted_space_keeps_the_factors_of_its_choices() -> None:
    space = get_space("mbv2").restrict({2: ["skip", "k3e1-relu"]})
    assert space.op_factors(2) == ({"block": "mbconv", "kernel": "3", "expand": "1",
                                    "se": "off", "act": "relu"}, {"block": "skip"})


def test_unknown_slot_is_named() -> None:
    with pytest.raises(ArchError, match="no slot 99"):
        get_space("mbv2").op_factors(99)

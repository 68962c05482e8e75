"""Shared fixtures: small spaces that build fast on two cores."""

from __future__ import annotations

import pytest

from spaces import Space, get_space, list_spaces

# Small but complete variants of every registered space (all slots, all ops).
SMALL_PARAMS: dict[str, dict[str, object]] = {
    "mbv2": {"resolution": 32, "width": 0.25, "classes": 10},
    "nb201": {"resolution": 16, "channels": 8, "cells": 1, "classes": 10},
}


def small_space(name: str) -> Space:
    return get_space(name, **SMALL_PARAMS.get(name, {}))


@pytest.fixture(params=list_spaces())
def space_name(request: pytest.FixtureRequest) -> str:
    return request.param

"""LookupTable: built from measurements, a miss raises naming the key, merge rule, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from latency import LookupMissError, LookupTable
from latency.features import lut_table
from latency.formats import robust_cv
from profilers.formats import save_measurements
from spaces import get_space

from .conftest import MBV2, _record, simulated_measurements


def test_from_measurements_and_sum(tmp_path: Path) -> None:
    doc = simulated_measurements()
    save_measurements(tmp_path / "m.json", doc)
    lut = LookupTable.from_measurements(tmp_path / "m.json")
    space = get_space("mbv2", **MBV2)
    assert len(lut) == len(space.cells()) and lut.space.name == "mbv2"
    assert lut.device.backend == "onnxruntime" and lut.device.cpu == "Simulated CPU"
    arch = space.sample(np.random.default_rng(0))
    expected = sum(lut[k].median_ms for k in space.cell_keys(arch))
    assert lut.sum_ms(space, [arch])[0] == pytest.approx(expected)
    idx = space.to_indices([arch])
    assert lut_table(space, lut).column("lut_ms").sum(idx)[0, 0] == pytest.approx(expected)
    assert lut.noise_floor() == pytest.approx(robust_cv(doc.reference))


def test_miss_raises_with_the_key() -> None:
    doc = simulated_measurements(drop=1)
    lut = LookupTable.from_measurements(doc)
    space = get_space("mbv2", **MBV2)
    missing = space.cells()[0].key
    with pytest.raises(LookupMissError, match=missing):
        lut[missing]
    with pytest.raises(LookupMissError, match=missing):
        lut_table(space, lut)
    assert lut.missing(space) == [missing]


def test_merge_keeps_more_runs_then_lower_cv() -> None:
    base = LookupTable.from_measurements(simulated_measurements())
    key = next(iter(base))
    more_runs = _record(key, "stem", 9.0, runs=120, cv=0.5)
    lower_cv = _record(key, "stem", 7.0, runs=60, cv=0.001)
    other = LookupTable([more_runs], space=base.space, device=base.device)
    assert base.merge(other)[key].median_ms == 9.0
    tie = LookupTable([lower_cv], space=base.space, device=base.device)
    assert base.merge(tie)[key].median_ms == 7.0
    assert len(base.merge(other)) == len(base)


@pytest.mark.parametrize("what", ["backend", "space"])
def test_merge_refuses_another_device_or_space(what: str) -> None:
    base = LookupTable.from_measurements(simulated_measurements())
    other_doc = (simulated_measurements(backend="openvino") if what == "backend" else
                 simulated_measurements(params={**MBV2, "resolution": 192}))
    with pytest.raises(ValueError, match="openvino" if what == "backend" else "parameters"):
        base.merge(LookupTable.from_measurements(other_doc))


def test_save_load_round_trip_and_version(tmp_path: Path) -> None:
    lut = LookupTable.from_measurements(simulated_measurements())
    lut.save(tmp_path / "lut.json")
    back = LookupTable.load(tmp_path / "lut.json")
    assert dict(back) == dict(lut) and back.device == lut.device
    data = json.loads((tmp_path / "lut.json").read_text())
    assert data["schema_version"] == 1
    data["schema_version"] = 7
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="schema_version 7 is not supported"):
        LookupTable.load(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        LookupTable.load(tmp_path / "none.json")


def test_statistic_p10(tmp_path: Path) -> None:
    doc = simulated_measurements()
    lut = LookupTable.from_measurements(doc, statistic="p10_ms")
    key = next(iter(lut))
    assert lut.latency_ms(key) == lut[key].p10_ms < lut[key].median_ms
    lut.save(tmp_path / "lut.json")
    assert LookupTable.load(tmp_path / "lut.json").statistic == "p10_ms"
    with pytest.raises(ValueError, match="statistic"):
        lut.merge(LookupTable.from_measurements(doc))
    with pytest.raises(ValueError, match="statistic must be one of"):
        LookupTable.from_measurements(doc, statistic="mean_ms")

"""The `predictor` job: fit a latency predictor on a device's measurements, and judge it.

The LUT comes from the measurement set's cells. Its whole archs (named by the kit, when
the service built that kit) are end-to-end samples: with four or more, half (a seeded
draw) is held out and the accuracy report is on those; with fewer, the report is
in-sample and says so. The judged archs come back as `points` (arch, predicted and
measured ms) for the dashboard's predicted-vs-measured chart.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

import numpy as np

from service.jobs.registry import JobContext, JobEnv, register_job
from service.store import ClaimedJob, NotFoundError

if TYPE_CHECKING:
    from latency import Predictor, Samples

MEASUREMENTS = "measurements.json"
KIT_FILE = "kit.zip"
PREDICTOR = "predictor.json"


def _prepare(env: JobEnv, job: ClaimedJob) -> dict[str, Any]:
    store, owner = env.store, job.owner_id
    sets = store.list_measurement_sets(owner, job.device_id)
    wanted = job.params.get("measurement_set")
    if wanted is not None:
        sets = [s for s in sets if s.id == wanted]
    if not sets:
        raise NotFoundError(f"measurement_set: device {job.device_id} has no measurements "
                            f"{'with id ' + str(wanted) if wanted is not None else 'yet'}")
    chosen = max(sets, key=lambda s: (s.cells + s.archs, s.id))
    doc = store.get_measurements(owner, job.device_id, chosen.id)
    work = env.artifacts.local_dir(f"jobs/{job.id}")
    (work / MEASUREMENTS).write_text(doc.model_dump_json())
    kit = store.find_kit(space=chosen.space, params=chosen.params, fmt=chosen.format,
                         precision=chosen.settings["precision"])
    if kit is not None:
        with env.artifacts.open(kit) as source, (work / KIT_FILE).open("wb") as target:
            shutil.copyfileobj(source, target)
    return {"measurement_set": chosen.id}


def _finish(env: JobEnv, job: ClaimedJob, result: dict[str, Any]) -> dict[str, Any]:
    record = env.store.add_predictor(device_id=job.device_id, kind=result["kind"],
                                     job_id=job.id, artifact=f"jobs/{job.id}/{PREDICTOR}",
                                     report=result)
    return {**result, "predictor": record.id}


@register_job("predictor", prepare=_prepare, finish=_finish)
def fit_predictor(ctx: JobContext) -> dict[str, Any]:
    """Fit `params.kind` on the prepared measurements; write predictor.json."""
    from latency import LookupTable, evaluate, get_predictor, samples_from_measurements
    from profilers.formats import load_measurements, manifest_hash, read_manifest

    doc = load_measurements(ctx.work_dir / MEASUREMENTS)
    lut = LookupTable.from_measurements(doc)
    samples = None
    kit = ctx.work_dir / KIT_FILE
    if doc.archs and kit.exists():
        manifest = read_manifest(kit)
        if manifest_hash(manifest) == doc.kit.manifest_sha256:
            samples = samples_from_measurements(doc, manifest)
    ctx.progress(0.2, "measurements loaded")
    fit_on, held_out = samples, samples
    if samples is not None and len(samples) >= 4:
        order = np.random.default_rng(ctx.params.get("seed", 0)).permutation(len(samples))
        half = len(samples) // 2
        fit_on, held_out = samples.subset(np.sort(order[:half])), samples.subset(
            np.sort(order[half:]))
    kind = ctx.params.get("kind", "lut")
    predictor = get_predictor(kind).fit(lut=lut, samples=fit_on)
    predictor.save(ctx.work_dir / PREDICTOR)
    ctx.progress(0.8, "fitted")
    report = evaluate(predictor, held_out) if held_out is not None else None
    points = [] if held_out is None else _points(predictor, held_out)
    ctx.log(predictor.describe())
    return {"kind": kind, "file": PREDICTOR, "cells": len(doc.cells),
            "samples": 0 if samples is None else len(samples),
            "held_out": samples is not None and len(samples) >= 4,
            "accuracy": None if report is None else report.model_dump(mode="json"),
            "points": points,
            "description": predictor.describe()}


def _points(predictor: Predictor, samples: Samples) -> list[dict[str, Any]]:
    """Each judged arch: its string, predicted and measured latency (ms)."""
    space = samples.space.build()
    predicted = predictor.predict(samples.archs)
    return [{"arch": space.encode(arch), "predicted_ms": float(p), "measured_ms": float(m)}
            for arch, p, m in zip(samples.archs, predicted, samples.latency_ms, strict=True)]

"""One store suite, run on a SQLite file and on a real PostgreSQL server."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from profilers.formats import MeasurementsFile
from service.schemas import DeviceCreate
from service.store import Beat, ConflictError, NotFoundError, Store

DEVICE = DeviceCreate(name="pc", backend="onnxruntime", hardware="EPYC, 2 cores")


def test_users_tokens_hashed_and_revocable(store: Store) -> None:
    alice = store.create_user("alice")
    record, secret = store.create_token("alice", "laptop")
    assert store.user_for_token(secret) == alice
    assert store.user_for_token(secret + "x") is None
    with store.session() as session:
        from service.store.tables import Token

        assert secret not in {t.token_hash for t in session.query(Token)}
    store.revoke_token(record.id)
    assert store.user_for_token(secret) is None
    with pytest.raises(ConflictError, match="exists"):
        store.create_user("alice")
    with pytest.raises(NotFoundError, match="user 'carol'"):
        store.create_token("carol", "x")


def test_devices_belong_to_their_owner(store: Store) -> None:
    alice, bob = store.create_user("alice"), store.create_user("bob")
    device = store.create_device(alice.id, DEVICE)
    assert store.list_devices(alice.id) == [device]
    assert store.list_devices(bob.id) == []
    with pytest.raises(NotFoundError, match=f"device {device.id} not found"):
        store.get_device(bob.id, device.id)
    with pytest.raises(ConflictError, match="name"):
        store.create_device(alice.id, DEVICE)
    store.create_device(bob.id, DEVICE)  # names are per user
    store.delete_device(alice.id, device.id)
    with pytest.raises(NotFoundError):
        store.get_device(alice.id, device.id)


def test_measurements_merge_never_loses_data(store: Store, measured: dict[str, Any]) -> None:
    owner = store.create_user("alice").id
    device = store.create_device(owner, DEVICE)
    full = MeasurementsFile.model_validate(measured["doc"])
    half = copy.deepcopy(measured["doc"])
    half["cells"], half["archs"], half["complete"] = half["cells"][:5], [], False
    first = store.add_measurements(owner, device.id, MeasurementsFile.model_validate(half))
    assert (first.added, first.improved, first.kept) == (5, 0, 0)
    assert not first.set.complete
    second = store.add_measurements(owner, device.id, full)
    assert second.added == full.count() - 5 and second.kept == 5 and second.set.complete
    fewer = copy.deepcopy(measured["doc"])
    for record in fewer["cells"]:
        record["runs"] = 1
    third = store.add_measurements(owner, device.id, MeasurementsFile.model_validate(fewer))
    assert third.improved == 0 and third.added == 0
    stored = store.get_measurements(owner, device.id, third.set.id)
    assert [m.key for m in stored.cells] == [m.key for m in full.cells]
    assert [m.runs for m in stored.cells] == [m.runs for m in full.cells]
    assert stored.kit == full.kit and stored.complete
    more = copy.deepcopy(measured["doc"])
    more["cells"][0]["runs"] += 100
    fourth = store.add_measurements(owner, device.id, MeasurementsFile.model_validate(more))
    assert fourth.improved == 1
    assert [s.id for s in store.list_measurement_sets(owner, device.id)] == [first.set.id]


def test_measurements_must_match_the_device(store: Store, measured: dict[str, Any]) -> None:
    owner = store.create_user("alice").id
    device = store.create_device(owner, DEVICE.model_copy(update={"threads": 4}))
    doc = MeasurementsFile.model_validate(measured["doc"])
    with pytest.raises(ConflictError, match=r"settings\.threads"):
        store.add_measurements(owner, device.id, doc)


def test_job_lifecycle_and_exclusive_claims(store: Store) -> None:
    owner = store.create_user("alice").id
    job = store.submit(owner, "kit", {"space": "nb201"})
    assert job.state == "queued"
    claimed = store.claim("w1", ["kit"])
    assert claimed is not None and claimed.id == job.id and claimed.attempts == 1
    assert store.claim("w2", ["kit"]) is None
    cancel, lost = store.beat("w1", [Beat(job.id, 0.5, "halfway", "line 1\n")])
    assert (cancel, lost) == (set(), set())
    assert store.beat("w2", [Beat(job.id, 0.9)]) == (set(), {job.id})
    running = store.get(owner, job.id)
    assert (running.state, running.progress, running.message) == ("running", 0.5, "halfway")
    assert running.log_tail == "line 1"
    assert not store.finish("w2", job.id, "succeeded", result={})
    assert store.finish("w1", job.id, "succeeded", result={"n": 1})
    done = store.get(owner, job.id)
    assert (done.state, done.progress, done.result) == ("succeeded", 1.0, {"n": 1})
    with pytest.raises(ConflictError, match="already succeeded"):
        store.cancel(owner, job.id)
    assert store.counts()["succeeded"] == 1


def test_cancel_and_ownership(store: Store) -> None:
    alice, bob = store.create_user("alice").id, store.create_user("bob").id
    queued = store.submit(alice, "kit", {})
    with pytest.raises(NotFoundError):
        store.cancel(bob, queued.id)
    with pytest.raises(NotFoundError):
        store.get(alice, queued.id, kind="search")
    assert store.cancel(alice, queued.id).state == "cancelled"
    running = store.submit(alice, "kit", {})
    store.claim("w1", ["kit"])
    assert store.cancel(alice, running.id).state == "running"
    assert store.beat("w1", [Beat(running.id)])[0] == {running.id}


def test_orphans_are_requeued_then_failed(store: Store) -> None:
    owner = store.create_user("alice").id
    job = store.submit(owner, "kit", {})
    for attempt in (1, 2):
        assert store.claim(f"dead-{attempt}", ["kit"]).attempts == attempt
        assert store.requeue_orphans(lease_s=60, max_attempts=2) == []  # lease still fresh
        assert store.requeue_orphans(lease_s=0, max_attempts=2) == [job.id]
        state = store.get(owner, job.id)
        assert state.state == ("queued" if attempt == 1 else "failed")
    assert "worker lost 2 times" in store.get(owner, job.id).error

"""The data-access layer for users, tokens, devices, measurements, kits and predictors.

With :mod:`service.store.jobs` (the job queue) it is the only code that opens a database
session. Every read returns an immutable pydantic snapshot (Optuna's storage contract);
every method is one transaction. Ownership is part of every query: asking for another
user's device answers `NotFoundError`, exactly as for a device that does not exist.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from profilers.formats import Measurement, MeasurementsFile
from service.schemas import (
    DeviceCreate,
    DevicePublic,
    MeasurementSetPublic,
    PredictorPublic,
    TokenPublic,
    UploadResult,
    UserPublic,
)
from service.store.tables import (
    Device,
    Kit,
    MeasurementRow,
    MeasurementSet,
    Predictor,
    Token,
    User,
    utcnow,
)

TOKEN_PREFIX = "hwnas_"
TOKEN_CACHE_SIZE = 4096


class NotFoundError(LookupError):
    """No such resource, or it belongs to another user (the API answers 404)."""

    def __str__(self) -> str:
        return str(self.args[0])


class ConflictError(ValueError):
    """The request contradicts what is stored (the API answers 409)."""


def aware(moment: datetime | None) -> datetime | None:
    """`moment` with UTC as its zone (SQLite hands datetimes back without one)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def hash_token(secret: str) -> str:
    """SHA-256 of an API token: tokens are 256-bit random, so no slow hash is needed."""
    return hashlib.sha256(secret.encode()).hexdigest()


def canonical(data: Any) -> str:
    """Canonical JSON (sorted keys, no spaces): equal data, equal string."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


class Repository:
    """Users, devices, measurements, kits and predictors on one engine.

    Example:
        >>> repo = Repository(engine)
        >>> alice = repo.create_user("alice")
        >>> token = repo.create_token("alice", "laptop")[1]
        >>> repo.user_for_token(token).name
        'alice'
    """

    def __init__(self, engine: Engine, *, token_cache_s: float = 0.0) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.token_cache_s = token_cache_s
        self._token_users: dict[str, tuple[float, UserPublic]] = {}

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any exception."""
        with self._sessions.begin() as session:
            yield session

    # users and tokens ------------------------------------------------------------------

    def create_user(self, name: str, *, admin: bool = False) -> UserPublic:
        """Add a user. Raises ConflictError if the name is taken."""
        try:
            with self.session() as session:
                user = User(name=name, is_admin=admin, created_at=utcnow())
                session.add(user)
                session.flush()
                return _user(user)
        except IntegrityError as exc:
            raise ConflictError(f"user {name!r} exists") from exc

    def list_users(self) -> list[UserPublic]:
        with self.session() as session:
            return [_user(u) for u in session.scalars(select(User).order_by(User.id))]

    def create_token(self, user_name: str, token_name: str) -> tuple[TokenPublic, str]:
        """A new API token for `user_name`: its record and the secret (shown only once)."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.session() as session:
            user = session.scalar(select(User).where(User.name == user_name))
            if user is None:
                raise NotFoundError(f"user {user_name!r} not found")
            token = Token(user_id=user.id, name=token_name, token_hash=hash_token(secret),
                          created_at=utcnow())
            session.add(token)
            session.flush()
            return _token(token, user.name), secret

    def list_tokens(self) -> list[TokenPublic]:
        with self.session() as session:
            rows = session.execute(select(Token, User.name).join(User).order_by(Token.id))
            return [_token(token, name) for token, name in rows]

    def revoke_token(self, token_id: int) -> TokenPublic:
        with self.session() as session:
            row = session.execute(
                select(Token, User.name).join(User).where(Token.id == token_id)
            ).first()
            if row is None:
                raise NotFoundError(f"token {token_id} not found")
            row[0].revoked = True
            self._token_users.clear()
            return _token(row[0], row[1])

    def user_for_token(self, secret: str) -> UserPublic | None:
        """The user a bearer token belongs to, or None (unknown or revoked).

        A user found is remembered for `token_cache_s` seconds (see `cached_user`)."""
        digest = hash_token(secret)
        with self.session() as session:
            user = session.scalar(
                select(User).join(Token).where(Token.token_hash == digest,
                                               Token.revoked.is_(False)))
            found = None if user is None else _user(user)
        if found is not None and self.token_cache_s > 0:
            if len(self._token_users) >= TOKEN_CACHE_SIZE:
                self._token_users.clear()
            self._token_users[digest] = (time.monotonic() + self.token_cache_s, found)
        return found

    def cached_user(self, secret: str) -> UserPublic | None:
        """The token's user if `user_for_token` found it less than `token_cache_s` ago,
        else None; never opens a session (so the API can call it on its event loop).

        A token revoked from another process (`hwnas admin token revoke`) is refused
        once its entry expires: at most `token_cache_s` seconds later.
        """
        entry = self._token_users.get(hash_token(secret))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    # devices ------------------------------------------------------------------------

    def create_device(self, owner: int, spec: DeviceCreate) -> DevicePublic:
        try:
            with self.session() as session:
                device = Device(owner_id=owner, created_at=utcnow(), **spec.model_dump())
                session.add(device)
                session.flush()
                return _device(device)
        except IntegrityError as exc:
            raise ConflictError(f"name: you already have a device named {spec.name!r}") from exc

    def list_devices(self, owner: int) -> list[DevicePublic]:
        with self.session() as session:
            rows = session.scalars(
                select(Device).where(Device.owner_id == owner).order_by(Device.id)
            )
            return [_device(d) for d in rows]

    def get_device(self, owner: int, device_id: int) -> DevicePublic:
        with self.session() as session:
            return _device(_owned_device(session, owner, device_id))

    def delete_device(self, owner: int, device_id: int) -> None:
        with self.session() as session:
            session.delete(_owned_device(session, owner, device_id))

    # measurements -------------------------------------------------------------------

    def add_measurements(self, owner: int, device_id: int, doc: MeasurementsFile
                         ) -> UploadResult:
        """Merge an uploaded measurements file into the device's set for its kit+settings.

        A key not stored yet is added; a stored key is replaced only by a measurement
        with more timed runs, so an upload never replaces good data with less.
        """
        settings = doc.settings.model_dump(mode="json")
        with self.session() as session:
            device = _owned_device(session, owner, device_id)
            _check_settings(device, doc)
            kit_sha = doc.kit.manifest_sha256
            settings_sha = hashlib.sha256(canonical(settings).encode()).hexdigest()
            found = session.scalar(select(MeasurementSet).where(
                MeasurementSet.device_id == device.id, MeasurementSet.kit_sha256 == kit_sha,
                MeasurementSet.settings_sha256 == settings_sha).with_for_update())
            if found is None:
                found = MeasurementSet(
                    device_id=device.id, kit_sha256=kit_sha, settings_sha256=settings_sha,
                    kit=doc.kit.model_dump(mode="json"), settings=settings,
                    protocol=doc.protocol.model_dump(mode="json"),
                    host=doc.host.model_dump(mode="json"), reference_key=doc.reference_key,
                    reference=[], complete=False, created_at=utcnow())
                session.add(found)
                session.flush()
            stored = {row.key: row for row in session.scalars(
                select(MeasurementRow).where(MeasurementRow.set_id == found.id))}
            added = improved = kept = 0
            for position, record in enumerate((*doc.cells, *doc.archs), start=len(stored)):
                old = stored.get(record.key)
                if old is None:
                    session.add(_row(found.id, position, record))
                    added += 1
                elif record.runs > old.runs:
                    old.median_ms, old.runs = record.median_ms, record.runs
                    old.record = record.model_dump(mode="json")
                    improved += 1
                else:
                    kept += 1
            found.reference = [*found.reference, *doc.reference]
            found.complete = found.complete or doc.complete
            found.updated_at = utcnow()
            session.flush()
            return UploadResult(set=_set(session, found), added=added, improved=improved,
                                kept=kept)

    def list_measurement_sets(self, owner: int, device_id: int) -> list[MeasurementSetPublic]:
        with self.session() as session:
            device = _owned_device(session, owner, device_id)
            rows = session.scalars(select(MeasurementSet).where(
                MeasurementSet.device_id == device.id).order_by(MeasurementSet.id))
            return [_set(session, s) for s in rows]

    def get_measurements(self, owner: int, device_id: int, set_id: int) -> MeasurementsFile:
        """The stored set as a `measurements.json` document (what predictors are fit on)."""
        with self.session() as session:
            device = _owned_device(session, owner, device_id)
            found = session.get(MeasurementSet, set_id)
            if found is None or found.device_id != device.id:
                raise NotFoundError(f"measurement set {set_id} not found")
            rows = session.scalars(select(MeasurementRow).where(
                MeasurementRow.set_id == found.id).order_by(MeasurementRow.position))
            records = [Measurement.model_validate(row.record) for row in rows]
            return MeasurementsFile(
                kit=found.kit, settings=found.settings, protocol=found.protocol,
                host=found.host, reference_key=found.reference_key, reference=found.reference,
                cells=[m for m in records if m.kind != "arch"],
                archs=[m for m in records if m.kind == "arch"], complete=found.complete)

    # kits ---------------------------------------------------------------------------

    def find_kit(self, *, space: str, params: dict[str, Any], fmt: str, precision: str
                 ) -> str | None:
        """The artifact name of a built kit, or None."""
        with self.session() as session:
            return session.scalar(select(Kit.artifact).where(
                Kit.space == space, Kit.params_key == canonical(params), Kit.format == fmt,
                Kit.precision == precision))

    def add_kit(self, *, space: str, params: dict[str, Any], fmt: str, precision: str,
                artifact: str, manifest_sha256: str, entries: int) -> None:
        """Record a built kit (a second build of the same kit keeps the first record)."""
        try:
            with self.session() as session:
                session.add(Kit(space=space, params_key=canonical(params), format=fmt,
                                precision=precision, artifact=artifact,
                                manifest_sha256=manifest_sha256, entries=entries,
                                created_at=utcnow()))
        except IntegrityError:
            return

    # predictors ---------------------------------------------------------------------

    def add_predictor(self, *, device_id: int, kind: str, job_id: int | None, artifact: str,
                      report: dict[str, Any]) -> PredictorPublic:
        with self.session() as session:
            row = Predictor(device_id=device_id, kind=kind, job_id=job_id, artifact=artifact,
                            report=report, created_at=utcnow())
            session.add(row)
            session.flush()
            return _predictor(row)

    def latest_predictor(self, owner: int, device_id: int) -> tuple[PredictorPublic, str]:
        """The device's newest predictor and its artifact name."""
        with self.session() as session:
            device = _owned_device(session, owner, device_id)
            row = session.scalar(select(Predictor).where(Predictor.device_id == device.id)
                                 .order_by(Predictor.id.desc()).limit(1))
            if row is None:
                raise NotFoundError(f"device {device_id} has no predictor yet; fit one")
            return _predictor(row), row.artifact


def _owned_device(session: Session, owner: int, device_id: int) -> Device:
    device = session.get(Device, device_id)
    if device is None or device.owner_id != owner:
        raise NotFoundError(f"device {device_id} not found")
    return device


def _check_settings(device: Device, doc: MeasurementsFile) -> None:
    settings = doc.settings
    wanted = {"backend": device.backend, "threads": device.threads,
              "precision": device.precision}
    for name, value in wanted.items():
        if getattr(settings, name) != value:
            raise ConflictError(
                f"settings.{name}: the file was measured with {getattr(settings, name)!r}, "
                f"device {device.id} is {value!r}")


def _row(set_id: int, position: int, record: Measurement) -> MeasurementRow:
    return MeasurementRow(set_id=set_id, position=position, key=record.key, kind=record.kind,
                          median_ms=record.median_ms, runs=record.runs,
                          record=record.model_dump(mode="json"))


def _user(user: User) -> UserPublic:
    return UserPublic(id=user.id, name=user.name, is_admin=user.is_admin,
                      created_at=aware(user.created_at))


def _token(token: Token, user: str) -> TokenPublic:
    return TokenPublic(id=token.id, user=user, name=token.name,
                       created_at=aware(token.created_at), revoked=token.revoked)


def _device(device: Device) -> DevicePublic:
    return DevicePublic(id=device.id, name=device.name, backend=device.backend,
                        hardware=device.hardware, threads=device.threads,
                        precision=device.precision, delegate=device.delegate,
                        created_at=aware(device.created_at))


def _set(session: Session, found: MeasurementSet) -> MeasurementSetPublic:
    by_kind = dict(session.execute(
        select(MeasurementRow.kind, func.count()).where(
            MeasurementRow.set_id == found.id).group_by(MeasurementRow.kind)).all())
    archs = by_kind.pop("arch", 0)
    kit = found.kit
    return MeasurementSetPublic(
        id=found.id, device_id=found.device_id, space=kit["space"], params=kit["params"],
        format=kit["format"], manifest_sha256=found.kit_sha256, settings=found.settings,
        host=found.host, cells=sum(by_kind.values()), archs=archs,
        complete=found.complete, updated_at=aware(found.updated_at))


def _predictor(row: Predictor) -> PredictorPublic:
    return PredictorPublic(id=row.id, device_id=row.device_id, kind=row.kind,
                           job_id=row.job_id, report=row.report,
                           created_at=aware(row.created_at))

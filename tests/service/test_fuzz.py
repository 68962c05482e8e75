"""Fuzz every operation of the OpenAPI document (schemathesis): no 5xx on any request.

Requests carry a valid token of a user who owns a device, so generated bodies and ids
reach the handlers, not only the auth check.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from service.api import create_app
from service.api.services import build_services, close_services
from service.schemas import DeviceCreate
from tests.service.conftest import fast_settings
from tests.service.test_api import DEVICE


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    config = fast_settings(tmp_path_factory.mktemp("fuzz-data"))
    app = create_app(config, start_worker=False)
    app.state.services = build_services(config, start_worker=False)
    store = app.state.services.store
    user = store.create_user("alice")
    store.create_device(user.id, DeviceCreate(**DEVICE))
    token = store.create_token("alice", "fuzz")[1]
    yield {"app": app, "headers": {"Authorization": f"Bearer {token}"}}
    close_services(app.state.services)


@pytest.mark.slow
def test_no_server_errors(served: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", served["app"])
    failures: list[str] = []
    statuses: list[int] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18
    for operation in operations:

        @settings(max_examples=30, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers=served["headers"])
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.text[:200]}")

        fuzz()
    assert not failures, failures[:5]
    assert len(statuses) > 10 * len(operations) and {200, 201, 404, 422} <= set(statuses)

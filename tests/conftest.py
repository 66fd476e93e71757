"""Shared fixtures: one real embedded Redis for the session, emptied between tests; API clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from audit import triggers
from multibot.embedded_redis import EmbeddedRedis
from multibot.redis_client import redis_client, request_redis_reset
from tests import factories


@pytest.fixture(scope="session", autouse=True)
def redis_server() -> Iterator[EmbeddedRedis]:
    """The real valkey-server binary, on the port and password that settings.REDIS_URL names."""
    server = EmbeddedRedis(settings.EMBEDDED_REDIS_DIR)
    assert settings.REDIS_URL == server.url, "tests must own their Redis"
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _clean_redis(redis_server: EmbeddedRedis) -> None:
    redis_client().flushdb()
    request_redis_reset()  # a Redis another test stopped must not be skipped in this one


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db: Any) -> Any:
    return factories.make_user()


@pytest.fixture
def other_user(db: Any) -> Any:
    return factories.make_user()


@pytest.fixture
def superuser(db: Any) -> Any:
    return factories.make_user(is_superuser=True)


@pytest.fixture
def user_api(user: Any) -> APIClient:
    return factories.client_for(user)


@pytest.fixture
def other_api(other_user: Any) -> APIClient:
    return factories.client_for(other_user)


@pytest.fixture
def admin_api(superuser: Any) -> APIClient:
    return factories.client_for(superuser)


@pytest.fixture
def committed_db(transactional_db: Any) -> Iterator[None]:
    """Data committed for real, so that server subprocesses see it; emptied after the test."""
    yield
    # The flush that empties the database deletes audit rows, which the triggers refuse.
    triggers.uninstall(connection)


@pytest.fixture
def append_only_triggers(db: Any) -> None:
    """The audit triggers as migrations install them (a committed_db test may have lifted them)."""
    triggers.install(connection)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, skip what the SQLite run already proves the same way (``embedded_only``): the suite
    runs on both in CI, and these are its slowest tests, which read no database-specific behaviour."""
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="embedded defaults only: the SQLite run covers it")
    for item in items:
        if item.get_closest_marker("embedded_only"):
            item.add_marker(skip)

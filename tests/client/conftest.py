"""The client and the command line against a whole real system: uvicorn, the listeners, a Celery worker, a
gateway and the replay exchange, started once for these tests on the test database and Redis.

The package under client/ is imported from there, as it is written (not installed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from django.conf import settings

from multibot.embedded_redis import EmbeddedRedis
from multibot.heartbeats import heartbeat_list
from multibot.redis_client import redis_client, request_redis_reset
from tests.factories import PASSWORD, make_user
from tests.jobs.conftest import CROSSING, candle_sets, celery_worker, history, market, replay_url, worker_env
from tests.support.processes import ROOT, database_url, server_env, uvicorn_server, wait_for
from tests.support.replay import stop

CLIENT_ROOT = ROOT / "client"
if str(CLIENT_ROOT) not in sys.path:
    sys.path.insert(0, str(CLIENT_ROOT))

from multibot_client import Client  # noqa: E402 - after the path above

# The job tests' stored candles and replay exchange, as fixtures here.
__all__ = ["candle_sets", "history", "market", "replay_url"]

# These tests log in and upload far more often than a person would in the same minute.
RATE_LIMITS = "user=100000/hour,anon=100000/hour,upload=1000/hour,login=1000/minute"


@dataclass(frozen=True)
class System:
    url: str
    env: dict[str, str]


@pytest.fixture(autouse=True)
def _clean_redis(redis_server: EmbeddedRedis) -> None:
    """Not emptied between these tests: the system's processes keep their consumer groups and heartbeats there
    (it is emptied once, when the system starts)."""
    request_redis_reset()


@pytest.fixture(scope="package")
def system(
    redis_server: EmbeddedRedis, replay_url: str, django_db_setup: Any, django_db_blocker: Any
) -> Iterator[System]:
    redis_client().flushdb()
    with django_db_blocker.unblock():
        env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url(),
                         MULTIBOT_REPLAY_URL=replay_url, MULTIBOT_RATE_LIMITS=RATE_LIMITS,
                         MULTIBOT_BOT_STOP_GRACE_SECONDS="5", MULTIBOT_JOB_HEARTBEAT_SECONDS="1")  # fmt: skip
    processes = [subprocess.Popen([sys.executable, "manage.py", command], cwd=ROOT, env=env)
                 for command in ("run_listeners", "run_gateway")]  # fmt: skip
    try:
        with celery_worker(worker_env(replay_url, MULTIBOT_RATE_LIMITS=RATE_LIMITS), name="client") as worker, \
             uvicorn_server(env) as url:  # fmt: skip
            try:
                # Their consumer groups exist before any test publishes what they should read.
                for component in ("listeners", "gateway"):
                    wait_for(lambda: heartbeat_list(component=component), 60, f"a {component} heartbeat")  # noqa: B023
                yield System(url=url, env=env)
            finally:
                # All told to stop at once, then each waited for: one after the other takes three times as long.
                for process in processes:
                    process.terminate()
                os.killpg(worker.pid, signal.SIGTERM)
    finally:
        for process in processes:
            stop(process)
        _kill_bots()


def _kill_bots() -> None:
    """freqtrade bots of this test run's home that outlived their gateway (a test that failed half way)."""
    marker = str(Path(settings.HOME) / "bots") + "/"
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "freqtrade" in cmdline and marker in cmdline:
            try:
                os.killpg(os.getpgid(process.pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture
def account(system: System, committed_db: None) -> Any:
    """A user of the running system (committed, so that its processes see it)."""
    return make_user()


@pytest.fixture
def client(system: System, account: Any) -> Iterator[Client]:
    """The user's client, logged in."""
    with Client(system.url) as session:
        session.login(account.username, PASSWORD)
        yield session


@pytest.fixture
def crossing(client: Client) -> str:
    """The job tests' Crossing strategy, uploaded by the user: its name."""
    return client.strategy_upload(CROSSING.encode(), filename="crossing.py")["strategy_name"]

"""run_listeners as a real process: heartbeat, consumption, a Redis restart, a clean SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from multibot.heartbeats import heartbeat_list
from multibot.redis_client import redis_client
from streams.bus import publish, stream_key
from streams.catalog import SYSTEM_EVENTS
from tests.support.processes import ROOT, database_url, server_env, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("committed_db")]


def _read_by_listeners(stream: str) -> int:
    try:
        groups = redis_client().xinfo_groups(stream_key(stream))
    except Exception:  # noqa: BLE001 - not created yet
        return 0
    group = next((g for g in groups if g["name"] == "mgmt_listeners"), None)
    return 0 if group is None or group["pending"] else int(group["entries-read"] or 0)


def test_listeners_beat_consume_survive_a_redis_restart_and_stop_on_sigterm(redis_server):
    env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url())
    listeners = subprocess.Popen(
        [sys.executable, "manage.py", "run_listeners", "--consumer", "listeners-test"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        # given: a running listener that has announced itself
        wait_for(lambda: heartbeat_list(component="listeners"), 30, "a listeners heartbeat")
        publish(SYSTEM_EVENTS, type="service_started", payload={"service": "test"})
        wait_for(lambda: _read_by_listeners(SYSTEM_EVENTS) == 1, 15, "the first event to be handled")
        # when: Redis restarts under it (same port, AOF on)
        redis_server.stop()
        time.sleep(1.5)
        redis_server.start()
        publish(SYSTEM_EVENTS, type="service_started", payload={"service": "after-restart"})
        # then: the same process handles what comes next
        wait_for(lambda: _read_by_listeners(SYSTEM_EVENTS) == 2, 30, "the event after the restart")
        assert listeners.poll() is None
    finally:
        listeners.send_signal(signal.SIGTERM)
        out, _ = listeners.communicate(timeout=15)
    assert listeners.returncode == 0, out
    assert "listeners stopped" in out
    assert "redis unavailable" in out and "redis is back" in out
    assert "Traceback" not in out

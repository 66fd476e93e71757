"""A process manager that stops every process at once: the gateway's last reports must still arrive.

Some process managers send SIGTERM to every process group together (`make run`'s supervisord stops
them one by one instead). The embedded Redis (`run_redis`) and the listeners wait for the local
gateway to exit before they stop themselves.
These tests play that with real processes: the real `run_redis` and `run_listeners`, and a small
stand-in gateway that beats like one and takes its time to stop its bots.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bots.models import Bot
from multibot.embedded_redis import EmbeddedRedis
from multibot.heartbeats import heartbeat_list
from tests.factories import make_bot, make_user
from tests.support.processes import ROOT, database_url, server_env, wait_for

# Beats as the gateway does, then on SIGTERM spends argv[1] seconds (stopping its bots) before its
# last report, the code in argv[2].
_GATEWAY = """
import signal, sys, time, django
django.setup()
from multibot.heartbeats import heartbeat_publish
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
heartbeat_publish(component="gateway", details={"bots": 1})
print("ready", flush=True)
while not stopping:
    time.sleep(0.05)
time.sleep(float(sys.argv[1]))
exec(sys.argv[2])
print("reported", flush=True)
"""
_KEEP_A_KEY = "from multibot.redis_client import redis_client; redis_client().set('last-report', 'kept')"
_REPORT_STOPPED = (
    "from streams.bus import publish; "
    "publish('trading:mgmt:status', type='bot_status', producer='trading_gateway', "
    "payload={'bot_id': int(__import__('os').environ['BOT_ID']), 'status': 'stopped', 'at': time.time()})"
)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # Each in its own process group, as process managers run them.
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def _gateway(env: dict[str, str], log: Path, *, stopping_seconds: float, last_report: str) -> subprocess.Popen[bytes]:
    process = _start([sys.executable, "-c", _GATEWAY, str(stopping_seconds), last_report], env, log)
    wait_for(lambda: "ready" in log.read_text() or process.poll() is not None, 60, "the gateway to beat")
    assert process.poll() is None, log.read_text()
    return process


def _exit_times(*processes: subprocess.Popen[bytes], timeout: float = 30) -> list[float]:
    """When each process exited (monotonic seconds), polled together."""
    exited: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while len(exited) < len(processes) and time.monotonic() < deadline:
        for process in processes:
            if process.pid not in exited and process.poll() is not None:
                exited[process.pid] = time.monotonic()
        time.sleep(0.02)
    for process in processes:
        if process.pid not in exited:
            os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError(f"pid {process.pid} did not exit within {timeout:.0f}s")
    return [exited[process.pid] for process in processes]


def _fresh_home_env(home: Path) -> dict[str, str]:
    env = server_env(MULTIBOT_HOME=str(home), DJANGO_SETTINGS_MODULE="multibot.settings")
    for name in ("REDIS_URL", "DATABASE_URL"):
        env.pop(name, None)
    return env


def _run_redis(home: Path, log: Path) -> tuple[subprocess.Popen[bytes], EmbeddedRedis]:
    process = _start([sys.executable, "manage.py", "run_redis"], _fresh_home_env(home), log)
    wait_for(lambda: "embedded redis on" in log.read_text() or process.poll() is not None, 60, "run_redis")
    assert process.poll() is None, log.read_text()
    return process, EmbeddedRedis(home / "redis")


@pytest.mark.slow
def test_the_embedded_redis_outlives_a_gateway_stopped_at_the_same_time(tmp_path):
    # given: the embedded Redis and a gateway that needs 2 s to stop its bots, both running
    home = tmp_path / "home"
    redis_process, server = _run_redis(home, tmp_path / "redis.log")
    gateway = _gateway(_fresh_home_env(home), tmp_path / "gateway.log", stopping_seconds=2, last_report=_KEEP_A_KEY)

    # when: SIGTERM to both at once, as such a process manager does
    os.killpg(redis_process.pid, signal.SIGTERM)
    os.killpg(gateway.pid, signal.SIGTERM)
    gateway_exit, redis_exit = _exit_times(gateway, redis_process)

    # then: the gateway's last write went through, and Redis stopped after it, cleanly
    assert gateway.returncode == 0, (tmp_path / "gateway.log").read_text()
    assert "reported" in (tmp_path / "gateway.log").read_text()
    assert redis_exit >= gateway_exit
    assert redis_process.returncode == 0, (tmp_path / "redis.log").read_text()
    assert not server.ping()
    server.start()  # and the write is in the AOF
    try:
        import redis

        assert redis.Redis.from_url(server.url).get("last-report") == b"kept"
    finally:
        server.stop()


@pytest.mark.slow
def test_the_embedded_redis_stops_at_once_when_no_gateway_runs(tmp_path):
    redis_process, server = _run_redis(tmp_path / "home", tmp_path / "redis.log")
    started = time.monotonic()

    os.killpg(redis_process.pid, signal.SIGTERM)
    _exit_times(redis_process)

    assert time.monotonic() - started < 3
    assert redis_process.returncode == 0
    assert not server.ping()


@pytest.mark.slow
def test_the_embedded_server_goes_with_run_redis_even_when_that_is_killed(tmp_path):
    # given
    redis_process, server = _run_redis(tmp_path / "home", tmp_path / "redis.log")
    (valkey,) = psutil.Process(redis_process.pid).children()

    # when: the process manager's last resort
    os.killpg(redis_process.pid, signal.SIGKILL)
    redis_process.wait(10)

    # then: the server (in its own session, so the SIGKILL did not reach it) is not left behind
    gone, alive = psutil.wait_procs([valkey], timeout=10)
    assert valkey in gone and not alive
    assert not server.ping()


@pytest.mark.slow
@pytest.mark.usefixtures("committed_db")
def test_the_listeners_take_in_the_last_report_of_a_gateway_stopped_at_the_same_time(tmp_path):
    # given: a bot recorded running, the real listeners, and a gateway that reports it stopped 1.5 s after SIGTERM
    bot = make_bot(owner=make_user())
    Bot.objects.filter(pk=bot.pk).update(status=Bot.Status.RUNNING, status_at=time.time() - 60)
    env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url(), BOT_ID=str(bot.pk))
    listeners = _start([sys.executable, "manage.py", "run_listeners"], env, tmp_path / "listeners.log")
    wait_for(lambda: heartbeat_list(component="listeners") or listeners.poll() is not None, 60, "the listeners")
    gateway = _gateway(env, tmp_path / "gateway.log", stopping_seconds=1.5, last_report=_REPORT_STOPPED)

    # when
    os.killpg(listeners.pid, signal.SIGTERM)
    os.killpg(gateway.pid, signal.SIGTERM)
    gateway_exit, listeners_exit = _exit_times(gateway, listeners)

    # then
    assert "reported" in (tmp_path / "gateway.log").read_text()
    assert listeners_exit >= gateway_exit
    assert listeners.returncode == 0, (tmp_path / "listeners.log").read_text()
    bot.refresh_from_db()
    assert bot.status == Bot.Status.STOPPED

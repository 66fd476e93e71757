"""The trading gateway end to end: real freqtrade bots on the replay exchange, supervised for real.

The tests of this module run in order against one replay exchange, one gateway and one listeners
process (the gateway is killed and replaced in between), like an operator's afternoon.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from bots.models import Bot
from strategies.library import library_dir
from tests.factories import client_for, make_bot, make_user
from tests.support.freqtrade import ALWAYS_IN
from tests.support.market import store_history
from tests.support.processes import ROOT, database_url, server_env, wait_for
from tests.support.replay import answers, replay_exchange

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BROKEN = """
from freqtrade.strategy import IStrategy
import a_module_that_is_not_installed  # noqa: F401


class BrokenStrategy(IStrategy):
    timeframe = "1m"
"""


@pytest.fixture(scope="module")
def replay_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("gateway-replay")
    store_history(home / "data" / "replay")
    with replay_exchange(home) as url:
        yield url


class Processes:
    """The gateway and the listeners, started against the test database and Redis."""

    def __init__(self, replay_url: str) -> None:
        self.env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url(),
                              MULTIBOT_REPLAY_URL=replay_url, MULTIBOT_BOT_STOP_GRACE_SECONDS="5")  # fmt: skip
        self.gateway: subprocess.Popen[bytes] | None = None
        self.listeners = subprocess.Popen([sys.executable, "manage.py", "run_listeners"], cwd=ROOT, env=self.env)
        self.start_gateway()

    def start_gateway(self) -> None:
        self.gateway = subprocess.Popen([sys.executable, "manage.py", "run_gateway"], cwd=ROOT, env=self.env)

    def close(self) -> None:
        for process in (self.gateway, self.listeners):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)


@pytest.fixture
def fleet(replay_url: str, committed_db: None) -> Iterator[Processes]:
    (library_dir() / "always_in.py").write_text(ALWAYS_IN)
    (library_dir() / "broken.py").write_text(BROKEN)
    processes = Processes(replay_url)
    try:
        yield processes
    finally:
        processes.close()
        _kill_our_bots()


def _our_bot_processes() -> list[psutil.Process]:
    marker = str(Path(settings.HOME) / "bots") + "/"
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "freqtrade" in cmdline and marker in cmdline and "trade" in cmdline:
            found.append(process)
    return found


def _kill_our_bots() -> None:
    for process in _our_bot_processes():
        try:
            os.killpg(os.getpgid(process.pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _status(bot: Bot) -> Bot:
    bot.refresh_from_db()
    return bot


def _wait_status(bots: list[Bot], status: str, timeout: float = 90) -> None:
    wait_for(lambda: all(_status(bot).status == status for bot in bots), timeout,
             f"bots {[b.name for b in bots]} to be {status} (now {[b.status for b in bots]})")  # fmt: skip


def test_a_fleet_starts_supervises_survives_a_gateway_restart_and_stops_in_an_emergency(fleet):
    owner, stranger = make_user(), make_user()
    api, other = client_for(owner), client_for(stranger)
    bots = [make_bot(owner=owner, strategy_name="AlwaysIn", timeframe="1m", pair_whitelist=["BTC/USDT"])
            for _ in range(3)]  # fmt: skip

    # Three bots start and answer on their own ports, on 127.0.0.1 only.
    for bot in bots:
        response = api.post(f"/api/v1/bots/{bot.pk}/start")
        assert response.status_code == 202 and response.json()["status"] == "start_command_sent"
    _wait_status(bots, "running")
    ports = {bot.api_port for bot in bots}
    assert len(ports) == 3
    for bot in bots:
        assert answers(f"http://127.0.0.1:{bot.api_port}/api/v1/ping")
        listening = {c.laddr.ip for c in psutil.net_connections(kind="inet")
                     if c.status == "LISTEN" and c.laddr.port == bot.api_port}  # fmt: skip
        assert listening == {"127.0.0.1"}
    assert api.post(f"/api/v1/bots/{bots[0].pk}/start").status_code == 409  # already running

    # Another user reaches none of it.
    for path in ("start", "stop", "restart", "status", "logs"):
        method = other.get if path in ("status", "logs") else other.post
        assert method(f"/api/v1/bots/{bots[0].pk}/{path}").status_code == 404
    assert other.get(f"/api/v1/bots/{bots[0].pk}/process").status_code == 404
    assert other.post(f"/api/v1/bots/{bots[0].name}/emergency-stop").status_code == 404

    # A bot killed behind the gateway's back comes back with a new pid.
    victim = bots[0]
    old_pid = victim.pid
    os.kill(old_pid, signal.SIGKILL)
    wait_for(lambda: _status(victim).status == "running" and victim.pid not in (None, old_pid), 90,
             "the killed bot to come back")  # fmt: skip
    assert victim.restart_count >= 1
    process = api.get(f"/api/v1/bots/{victim.name}/process").json()
    assert process["pid"] == victim.pid and process["memory_usage_mb"] > 10

    # A bot whose strategy cannot load ends in error with freqtrade's words, and stays down.
    broken = make_bot(owner=owner, strategy_name="BrokenStrategy", timeframe="1m", pair_whitelist=["BTC/USDT"])
    assert api.post(f"/api/v1/bots/{broken.pk}/start").status_code == 202
    _wait_status([broken], "error", timeout=60)
    assert "Impossible to load Strategy 'BrokenStrategy'" in broken.status_detail
    before = _status(broken).restart_count
    time.sleep(3)
    assert _status(broken).status == "error" and broken.restart_count == before and broken.pid is None

    # The gateway dies hard and comes back: each running bot still has exactly one process.
    pids = {bot.pk: _status(bot).pid for bot in bots}
    fleet.gateway.send_signal(signal.SIGKILL)
    fleet.gateway.wait(10)
    fleet.start_gateway()
    wait_for(lambda: _gateway_beating(fleet.gateway.pid), 60, "the new gateway's heartbeat")
    wait_for(lambda: len(_our_bot_processes()) == 3, 30, "exactly three bot processes")
    assert {bot.pk: _status(bot).pid for bot in bots} == pids
    assert all(_status(bot).status == "running" for bot in bots)

    # Emergency stop-all: every bot stopped, no freqtrade process of ours left.
    response = api.post("/api/v1/emergency/stop-all", {"force_exit": True}, format="json")
    assert response.status_code == 202 and response.json()["message"] == "Emergency stop command sent."
    _wait_status(bots, "stopped", timeout=60)
    wait_for(lambda: not _our_bot_processes(), 30, "no bot process left")


def _gateway_beating(pid: int) -> bool:
    from multibot.heartbeats import heartbeat_list

    # The first heartbeat comes after reconciliation: the new gateway has adopted or restarted.
    return any(beat["instance"].endswith(f":{pid}") for beat in heartbeat_list(component="gateway"))

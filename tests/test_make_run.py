"""`make run` as a newcomer runs it: fresh MULTIBOT_HOME, no Redis given, a gateway killed, Ctrl-C, again."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

import httpx
import psutil
import pytest

from tests.support.processes import ROOT, free_port, get, server_env, wait_for

# make run is the embedded defaults whatever the suite runs on: SQLite and the embedded Redis.
pytestmark = [pytest.mark.embedded_only]


def _processes_using(home: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "environ"]):
        try:
            text = " ".join(process.info["cmdline"] or [])
            if home in text or (process.info["environ"] or {}).get("MULTIBOT_HOME") == home:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return [p for p in found if p.pid != os.getpid()]


def _make_run(home: str, port: int, replay_port: int, log: IO[str]) -> subprocess.Popen[bytes]:
    env = server_env(
        MULTIBOT_HOME=home, MULTIBOT_PORT=str(port), MULTIBOT_REPLAY_PORT=str(replay_port), MULTIBOT_ADMIN_USER="boss"
    )
    for name in ("REDIS_URL", "DATABASE_URL", "MULTIBOT_ADMIN_PASSWORD", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    return subprocess.Popen(["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def _ctrl_c(make: subprocess.Popen[bytes]) -> float:
    """SIGINT to the whole foreground process group, as a terminal sends it; the seconds make took to exit."""
    started = time.monotonic()
    os.killpg(make.pid, signal.SIGINT)
    try:
        make.wait(90)  # the gateway alone may take 60 s
    except subprocess.TimeoutExpired:
        os.killpg(make.pid, signal.SIGKILL)
        raise
    return time.monotonic() - started


def _health(url: str) -> dict[str, Any]:
    try:
        return get(url).json()
    except Exception:  # noqa: BLE001 - not up yet
        return {}


def _wait_healthy(url: str, log: IO[str]) -> None:
    try:
        wait_for(lambda: _health(url).get("overall_status") == "healthy", 90, f"{url} to answer healthy")
    except AssertionError:
        log.seek(0)
        raise AssertionError(f"not healthy; health said {_health(url)}\nlog:\n{log.read()[-4000:]}") from None


def _gateways(home: str) -> list[psutil.Process]:
    return [process for process in _processes_using(home) if "run_gateway" in (process.info["cmdline"] or [])]


def _bot_processes(home: str, bot_id: int) -> list[psutil.Process]:
    config = str(Path(home) / "bots" / str(bot_id) / "config.json")
    command = ["-m", "freqtrade", "trade", "--config", config]  # the gateway's: "<python> -m freqtrade trade ..."
    return [process for process in _processes_using(home) if (process.info["cmdline"] or [])[1:6] == command]


class _HealthWatch(threading.Thread):
    """Asks for health every 0.2 s, each answer due within 1 s; records each status and latency."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.answers, self.stopping = url, [], threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                status: int | str = httpx.get(self.url, timeout=1.0).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            self.answers.append((status, time.monotonic() - started))
            self.stopping.wait(0.2)


@pytest.mark.slow
def test_make_run_serves_a_healthy_system_outlives_a_killed_gateway_and_ctrl_c_stops_everything(tmp_path):
    # given: a fresh home and a free port, with no REDIS_URL or DATABASE_URL
    home, port, replay_port = str(tmp_path / "home"), free_port(), free_port()
    url = f"http://127.0.0.1:{port}/api/v1/monitoring/health"
    log = open(tmp_path / "make-run.log", "w+")
    make = _make_run(home, port, replay_port, log)
    watch = _HealthWatch(url)
    try:
        # when
        _wait_healthy(url, log)
        components = {c["name"]: c for c in get(url).json()["component_health"]}
        log.seek(0)
        password = re.search(r"generated password \(shown only now\): (\S+)", log.read())
        login = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/login/json",
            json={"username": "boss", "password": password.group(1) if password else ""},
        )
        token = login.json().get("access_token", "")
        auth = {"Authorization": f"Bearer {token}"}
        stored = httpx.get(f"http://127.0.0.1:{port}/api/v1/data/", headers=auth)
        markets = httpx.get(f"http://127.0.0.1:{replay_port}/api/v3/exchangeInfo", timeout=10)
        # The demo bot, started: Ctrl-C must leave it stopped, in its process and in the database.
        (demo,) = [bot for bot in httpx.get(f"http://127.0.0.1:{port}/api/v1/bots/", headers=auth).json()
                   if bot["name"] == "demo"]  # fmt: skip
        bot_url = f"http://127.0.0.1:{port}/api/v1/bots/{demo['id']}"
        started = httpx.post(f"{bot_url}/start", headers=auth, timeout=10)
        wait_for(lambda: httpx.get(bot_url, headers=auth).json()["status"] == "running", 90, "the demo bot to run")
        demo_pid = httpx.get(bot_url, headers=auth).json()["pid"]

        # when: the gateway is killed outright, the web watched all along
        (gateway,) = _gateways(home)
        watch.start()
        killed_at, killed_wall = time.monotonic(), time.time()
        gateway.kill()

        def gateway_back() -> bool:
            beat = {c["name"]: c for c in _health(url).get("component_health", [])}.get("gateway", {})
            fresh = beat.get("status") == "healthy" and beat["details"]["last_seen"] > killed_wall
            return fresh and any(process.pid != gateway.pid for process in _gateways(home))

        wait_for(gateway_back, 60, "a new gateway to beat")
        back_after = time.monotonic() - killed_at
        watch.stopping.set()
        watch.join()
        adopted = httpx.get(bot_url, headers=auth).json()
        demo_processes = [process.pid for process in _bot_processes(home, demo["id"])]
    finally:
        watch.stopping.set()
        stop_seconds = _ctrl_c(make)
    worst = max(latency for _, latency in watch.answers)
    print(f"\ngateway SIGKILLed: a new one beat after {back_after:.1f}s; the web answered "
          f"{len(watch.answers)} health requests meanwhile, the slowest in {worst * 1000:.0f} ms; "
          f"Ctrl-C took {stop_seconds:.1f}s")  # fmt: skip
    # then
    assert components["redis"]["status"] == "healthy"
    assert components["redis"]["details"]["embedded"] is True
    assert components["database"]["details"]["vendor"] == "sqlite"
    assert password is not None, "the generated admin password is printed once"
    assert login.status_code == 200
    assert os.listdir(os.path.join(home, "redis", "appendonlydir")), "AOF is on"
    # Demo candles on first start: four USDT pairs in 1m and the longer timeframes FreqAI's examples include,
    # synthetic, played by the replay exchange.
    sets = stored.json()["data"]
    assert len(sets) == 4 * 6 and all(item["synthetic"] for item in sets)
    assert {item["timeframe"] for item in sets} == {"1m", "3m", "5m", "15m", "1h", "4h"}
    assert len({s["symbol"] for s in markets.json()["symbols"]}) == 4
    # The killed gateway came back by itself and adopted the running bot; the web never stopped answering.
    assert not psutil.pid_exists(gateway.pid)
    assert {status for status, _ in watch.answers} <= {200, 503}, watch.answers
    assert worst < 1.0
    assert (adopted["status"], adopted["pid"]) == ("running", demo_pid)
    assert demo_processes == [demo_pid]
    wait_for(lambda: not _processes_using(home), 15, "every process of make run to exit")
    # The gateway stopped the bot and reported it before the listeners and Redis went.
    assert started.status_code == 202
    assert not psutil.pid_exists(demo_pid)
    database_path = os.path.join(home, "multibot.sqlite3")
    with sqlite3.connect(database_path) as database:
        status, pid, desired = database.execute(
            "SELECT status, pid, desired_state FROM bots_bot WHERE name = 'demo'"
        ).fetchone()
    log.seek(0)
    assert (status, pid) == ("stopped", None), log.read()[-4000:]
    # Stopped by the Ctrl-C, not by its user: it is still meant to run.
    assert desired == "running"
    # Data under MULTIBOT_HOME is this user's only.
    private = [Path(home) / "multibot.sqlite3", *(Path(home) / "redis" / "appendonlydir").iterdir()]
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in private} == dict.fromkeys(
        (path.name for path in private), 0o600
    )
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700

    # when: `make run` again on the same home
    log = open(tmp_path / "make-run-again.log", "w+")
    again_at = time.monotonic()
    make = _make_run(home, port, replay_port, log)
    try:
        _wait_healthy(url, log)
        healthy_after = time.monotonic() - again_at
        bots = httpx.get(f"http://127.0.0.1:{port}/api/v1/bots/", headers=auth).json()
        # Looked at now, while the system runs (after the Ctrl-C below every pid is gone, rightly).
        claimed = [(bot["name"], bot["status"], bot["pid"]) for bot in bots if bot["status"] in ("running", "stopping")]
        claiming_the_dead = [bot for bot in claimed if not (bot[2] and psutil.pid_exists(bot[2]))]
        # The gateway starts again what is meant to run: the demo bot, without being asked.
        wait_for(lambda: httpx.get(bot_url, headers=auth).json()["status"] == "running", 90, "the demo bot to run")
        running_after = time.monotonic() - again_at
        restarted = httpx.get(bot_url, headers=auth).json()
        restarted_processes = [process.pid for process in _bot_processes(home, demo["id"])]
        start_again = httpx.post(f"{bot_url}/start", headers=auth, timeout=10)
    finally:
        stop_again_seconds = _ctrl_c(make)
    print(f"make run again: healthy after {healthy_after:.1f}s, the demo bot running after {running_after:.1f}s; "
          f"Ctrl-C took {stop_again_seconds:.1f}s")  # fmt: skip
    # then: no bot is left claiming a process that is gone
    assert claiming_the_dead == [], claimed
    assert restarted["status"] == "running" and restarted["pid"] != demo_pid
    assert restarted_processes == [restarted["pid"]]
    assert start_again.status_code == 409, start_again.text  # already running
    wait_for(lambda: not _processes_using(home), 15, "every process of make run to exit")
    assert not psutil.pid_exists(restarted["pid"])
    with sqlite3.connect(database_path) as database:
        status, pid = database.execute("SELECT status, pid FROM bots_bot WHERE name = 'demo'").fetchone()
    log.seek(0)
    assert (status, pid) == ("stopped", None), log.read()[-4000:]

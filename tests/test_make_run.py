"""`make run` as a newcomer runs it: fresh MULTIBOT_HOME, no Redis given, then Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import stat
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.processes import ROOT, free_port, get, server_env, wait_for


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


@pytest.mark.slow
def test_make_run_serves_a_healthy_system_and_ctrl_c_stops_everything(tmp_path):
    # given: a fresh home and a free port, with no REDIS_URL or DATABASE_URL
    home, port, replay_port = str(tmp_path / "home"), free_port(), free_port()
    env = server_env(
        MULTIBOT_HOME=home, MULTIBOT_PORT=str(port), MULTIBOT_REPLAY_PORT=str(replay_port), MULTIBOT_ADMIN_USER="boss"
    )
    for name in ("REDIS_URL", "DATABASE_URL", "MULTIBOT_ADMIN_PASSWORD", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    log = open(tmp_path / "make-run.log", "w+")
    make = subprocess.Popen(["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        # when
        url = f"http://127.0.0.1:{port}/api/v1/monitoring/health"

        def healthy() -> bool:
            try:
                return get(url).json()["overall_status"] == "healthy"
            except Exception:  # noqa: BLE001 - not up yet
                return False

        try:
            wait_for(healthy, 90, "make run to serve a healthy /api/v1/monitoring/health")
        except AssertionError:
            log.seek(0)
            raise AssertionError(
                f"not healthy; health said {get(url).text[:2000]}\nlog:\n{log.read()[-4000:]}"
            ) from None
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
    finally:
        # Ctrl-C: SIGINT to the whole foreground process group.
        os.killpg(make.pid, signal.SIGINT)
        try:
            make.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            raise
    # then
    assert components["redis"]["status"] == "healthy"
    assert components["redis"]["details"]["embedded"] is True
    assert components["database"]["details"]["vendor"] == "sqlite"
    assert password is not None, "the generated admin password is printed once"
    assert login.status_code == 200
    assert os.listdir(os.path.join(home, "redis", "appendonlydir")), "AOF is on"
    # Demo candles on first start: four USDT pairs in 1m and 5m, synthetic, played by the replay exchange.
    sets = stored.json()["data"]
    assert len(sets) == 8 and all(item["synthetic"] for item in sets)
    assert {item["timeframe"] for item in sets} == {"1m", "5m"}
    assert len({s["symbol"] for s in markets.json()["symbols"]}) == 4
    wait_for(lambda: not _processes_using(home), 15, "every process of make run to exit")
    # The gateway stopped the bot and reported it before the listeners and Redis went.
    assert started.status_code == 202
    assert not psutil.pid_exists(demo_pid)
    with sqlite3.connect(os.path.join(home, "multibot.sqlite3")) as database:
        status, pid = database.execute("SELECT status, pid FROM bots_bot WHERE name = 'demo'").fetchone()
    log.seek(0)
    assert (status, pid) == ("stopped", None), log.read()[-4000:]
    # Data under MULTIBOT_HOME is this user's only.
    private = [Path(home) / "multibot.sqlite3", *(Path(home) / "redis" / "appendonlydir").iterdir()]
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in private} == dict.fromkeys(
        (path.name for path in private), 0o600
    )
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700

"""Fleet benchmark: N real freqtrade bots on the replay exchange, through the whole system.

    .venv/bin/python benchmarks/fleet.py [--bots 20]

It starts a private system (embedded Redis, SQLite, replay exchange with demo candles, gateway,
listeners, web server) under a temporary MULTIBOT_HOME and measures, with baselines from the same run:
  start          one bot alone: start command -> running with its API answering (the baseline);
                 then start-all of N bots -> all running and answering
  listing        GET /api/v1/bots/ with N bots and live status, against GET /api/v1/streams/ (a
                 static authenticated endpoint) as the baseline
  memory         resident memory per bot process (with its children)
  emergency      POST /emergency/stop-all -> every bot stopped and no bot process left
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


class System:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.web_port, self.replay_port = free_port(), free_port()
        self.password = secrets.token_urlsafe(16)
        self.env = {
            **os.environ, "MULTIBOT_HOME": str(home), "MULTIBOT_PORT": str(self.web_port),
            "MULTIBOT_REPLAY_PORT": str(self.replay_port), "MULTIBOT_ADMIN_USER": "bench",
            "MULTIBOT_ADMIN_PASSWORD": self.password, "MULTIBOT_DEMO_DAYS": "20",
            "MULTIBOT_LOG_LEVEL": "WARNING", "MULTIBOT_RATE_LIMITS": "user=1000000/hour",
            "DJANGO_SETTINGS_MODULE": "multibot.settings",
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }  # fmt: skip
        self.env.pop("REDIS_URL", None)
        self.env.pop("DATABASE_URL", None)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.base = f"http://127.0.0.1:{self.web_port}"

    def run(self, *args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip

    def spawn(self, *command: str) -> None:
        log = open(self.home / f"{command[2] if len(command) > 2 else 'proc'}.log", "ab")
        self.processes.append(subprocess.Popen(list(command), cwd=ROOT, env=self.env, stdout=log, stderr=log))

    def start(self) -> None:
        self.run("bootstrap")
        py = sys.executable
        self.spawn(py, "manage.py", "run_redis")
        time.sleep(1)
        self.spawn(py, "manage.py", "run_replay_exchange")
        self.spawn(py, "manage.py", "run_listeners")
        self.spawn(py, "manage.py", "run_gateway", "--stop-bots-on-exit")
        self.spawn(py, "-m", "uvicorn", "multibot.asgi:application", "--port", str(self.web_port),
                   "--lifespan", "off", "--log-level", "warning")  # fmt: skip

        def healthy() -> bool:
            try:
                return (
                    httpx.get(f"{self.base}/api/v1/monitoring/health", timeout=2).json()["overall_status"] == "healthy"
                )
            except (httpx.HTTPError, ValueError, KeyError):
                return False

        wait_for(healthy, 120, "a healthy system")
        token = httpx.post(f"{self.base}/api/v1/auth/login/json",
                           json={"username": "bench", "password": self.password}).json()["access_token"]  # fmt: skip
        self.client = httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


def bot_processes(home: Path) -> list[psutil.Process]:
    marker = str(home / "bots") + "/"
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "freqtrade" in cmdline and marker in cmdline:
            found.append(process)
    return found


def all_running(client: httpx.Client, ids: set[int]) -> bool:
    bots = [bot for bot in client.get("/api/v1/bots/").json() if bot["id"] in ids]
    return len(bots) == len(ids) and all(bot["status"] == "running" for bot in bots)


def timed_gets(client: httpx.Client, path: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bots", type=int, default=20)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="multibot-fleet-"))
    system = System(home)
    print(f"fleet benchmark: {args.bots} bots, {os.cpu_count()} cores, home {home}")
    system.start()
    client = system.client
    try:
        pairs = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT"]
        ids = []
        for index in range(args.bots):
            created = client.post("/api/v1/bots/", json={
                "name": f"fleet{index:02d}", "strategy_name": "SampleStrategy", "exchange": "replay",
                "stake_amount": 50, "timeframe": "5m", "pair_whitelist": [pairs[index % 4]],
            })  # fmt: skip
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        demo = [bot["id"] for bot in client.get("/api/v1/bots/").json() if bot["name"] == "demo"]

        # Baseline: one bot alone.
        started = time.monotonic()
        client.post(f"/api/v1/bots/{demo[0]}/start")
        wait_for(lambda: all_running(client, set(demo)), 120, "the single bot")
        single = time.monotonic() - started
        client.post(f"/api/v1/bots/{demo[0]}/stop")
        wait_for(lambda: len(bot_processes(home)) == 0, 60, "the single bot to stop")

        # The fleet (the demo bot was stopped: start-all starts it too, so N + 1 bots).
        fleet_ids = set(ids + demo)
        started = time.monotonic()
        assert client.post("/api/v1/bots/start-all").status_code == 202
        wait_for(lambda: all_running(client, fleet_ids), 300, "the whole fleet", interval=0.5)
        fleet = time.monotonic() - started

        listing = timed_gets(client, "/api/v1/bots/", 50)
        baseline = timed_gets(client, "/api/v1/streams/", 50)
        rss = []
        for process in bot_processes(home):
            try:
                rss.append(sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20)
            except psutil.Error:
                pass

        started = time.monotonic()
        assert client.post("/api/v1/emergency/stop-all", json={"force_exit": True}).status_code == 202
        wait_for(lambda: not bot_processes(home), 120, "no bot process left", interval=0.1)
        gone = time.monotonic() - started
        wait_for(lambda: all(b["status"] == "stopped" for b in client.get("/api/v1/bots/").json()), 60, "all stopped")
        stopped = time.monotonic() - started

        def p(values: list[float], q: float) -> float:
            return values[min(len(values) - 1, int(q / 100 * len(values)))]

        n = len(fleet_ids)
        print(f"start     one bot alone            {single:6.1f} s   (baseline)")
        print(f"start     start-all, {n} bots       {fleet:6.1f} s   {fleet / single:.1f}x one bot")
        print(f"listing   GET /bots/ ({n} bots)     p50 {p(listing, 50):6.1f} ms  p95 {p(listing, 95):6.1f} ms   "
              f"{p(listing, 50) / p(baseline, 50):.2f}x GET /streams/ (p50 {p(baseline, 50):.1f} ms)")  # fmt: skip
        print(f"memory    per bot process          mean {statistics.mean(rss):6.0f} MB  max {max(rss):.0f} MB "
              f"({len(rss)} processes)")  # fmt: skip
        print(f"emergency stop-all                 {gone:6.1f} s to no process, {stopped:.1f} s to all stopped")
    finally:
        system.stop()
        for process in bot_processes(home):
            process.kill()


if __name__ == "__main__":
    main()

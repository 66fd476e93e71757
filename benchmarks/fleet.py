"""Fleet benchmark: N real freqtrade bots on the replay exchange, through the whole system.

    .venv/bin/python benchmarks/fleet.py [--bots 20] [--hosts 1]

It starts a private system (embedded Redis, SQLite, replay exchange with demo candles, gateway,
listeners, web server) under a temporary MULTIBOT_HOME and measures, with baselines from the same run:
  start          one bot alone: start command -> running with its API answering (the baseline);
                 then start-all of N bots -> all running and answering
  listing        GET /api/v1/bots/ with N bots and live status, against GET /api/v1/streams/ (a
                 static authenticated endpoint) as the baseline
  memory         resident memory per bot process (with its children)
  emergency      POST /emergency/stop-all -> every bot stopped and no bot process left

With ``--hosts H`` (H >= 2) the run is one of hosts instead: N bots on one gateway (host alpha, the
baseline), then N x H bots over H gateways (alpha, beta, ...), each with its own bots directory, port
range and N slots, on the same private system: a private database on the PostgreSQL server of
DATABASE_URL when it is given, else SQLite. For each: start-all -> all running, GET /api/v1/bots/, and
emergency stop-all -> no bot process left (and every bot stopped); then the ratios, H hosts over one.
The gateways share this machine's cores, so the ratios show what routing over several hosts costs, not
what machines of their own would gain.
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
from urllib.parse import urlsplit

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
HOST_NAMES = ("alpha", "beta", "gamma", "delta")
PORTS = range(18100, 19000)  # the default bot API ports (MULTIBOT_BOT_PORT_FIRST/LAST), shared out among the hosts


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
    def __init__(self, home: Path, *, database_url: str = "") -> None:
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
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.processes: list[subprocess.Popen[bytes]] = []
        self.base = f"http://127.0.0.1:{self.web_port}"

    def run(self, *args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip

    def spawn(self, *command: str, log_name: str = "", env: dict[str, str] | None = None) -> None:
        log = open(self.home / f"{log_name or (command[2] if len(command) > 2 else 'proc')}.log", "ab")
        self.processes.append(subprocess.Popen(list(command), cwd=ROOT, env={**self.env, **(env or {})}, stdout=log,
                                               stderr=log))  # fmt: skip

    def start_gateway(self, host: dict[str, str] | None = None) -> None:
        """A gateway: this machine's default host, or the one ``host`` (host_env) describes."""
        name = f"run_gateway@{host['MULTIBOT_GATEWAY_HOST']}" if host else ""
        self.spawn(sys.executable, "manage.py", "run_gateway", "--stop-bots-on-exit", log_name=name, env=host)

    def start(self, *, host: dict[str, str] | None = None) -> None:
        self.run("bootstrap")
        py = sys.executable
        self.spawn(py, "manage.py", "run_redis")
        time.sleep(1)
        self.spawn(py, "manage.py", "run_replay_exchange")
        self.spawn(py, "manage.py", "run_listeners")
        self.start_gateway(host)
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


def bot_processes(home: Path, bots_dirs: list[Path] | None = None) -> list[psutil.Process]:
    """The bot processes under ``bots_dirs`` (default: the home's own bots directory)."""
    markers = [str(path) + "/" for path in (bots_dirs or [home / "bots"])]
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "freqtrade" in cmdline and any(marker in cmdline for marker in markers):
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


def create_bots(client: httpx.Client, count: int, *, prefix: str) -> list[int]:
    pairs = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT"]
    ids = []
    for index in range(count):
        created = client.post("/api/v1/bots/", json={
            "name": f"{prefix}{index:02d}", "strategy_name": "SampleStrategy", "exchange": "replay",
            "stake_amount": 50, "timeframe": "5m", "pair_whitelist": [pairs[index % 4]],
        })  # fmt: skip
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    return ids


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


def one_host(bots: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="multibot-fleet-"))
    system = System(home)
    print(f"fleet benchmark: {bots} bots, {os.cpu_count()} cores, home {home}")
    system.start()
    client = system.client
    try:
        ids = create_bots(client, bots, prefix="fleet")
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

        p = percentile
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


# -- several hosts ----------------------------------------------------------------------------------
def host_env(home: Path, name: str, index: int, hosts: int, *, slots: int) -> dict[str, str]:
    """The gateway of one host: its name, its own bots directory, its share of the ports, ``slots`` bots."""
    share = len(PORTS) // hosts
    ports = PORTS[index * share : (index + 1) * share]
    return {"MULTIBOT_GATEWAY_HOST": name, "MULTIBOT_BOTS_DIR": str(home / "hosts" / name / "bots"),
            "MULTIBOT_BOT_PORT_FIRST": str(ports[0]), "MULTIBOT_BOT_PORT_LAST": str(ports[-1]),
            "MULTIBOT_GATEWAY_BOT_SLOTS": str(slots)}  # fmt: skip


def private_database(url: str) -> tuple[str, str]:
    """A new database of our own on the PostgreSQL server of ``url``: its URL and its name (to drop it)."""
    import psycopg

    name = f"multibot_fleet_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlsplit(url)._replace(path=f"/{name}").geturl(), name


def drop_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def live_hosts(client: httpx.Client) -> dict[str, int]:
    """The live hosts, each with the number of bots placed on it."""
    hosts = client.get("/api/v1/hosts/").json()["hosts"]
    return {host["name"]: len(host["bots"]) for host in hosts if host["status"] == "live"}


def fleet_round(client: httpx.Client, home: Path, ids: set[int], bots_dirs: list[Path]) -> dict[str, float]:
    """start-all -> every bot running; the listing; emergency stop-all -> no process left, then all stopped."""
    figures: dict[str, float] = {}
    started = time.monotonic()
    assert client.post("/api/v1/bots/start-all").status_code == 202
    wait_for(lambda: all_running(client, ids), 60 + 10 * len(ids), f"{len(ids)} bots running", interval=0.5)
    figures["start"] = time.monotonic() - started
    listing = timed_gets(client, "/api/v1/bots/", 50)
    figures["list50"], figures["list95"] = percentile(listing, 50), percentile(listing, 95)
    started = time.monotonic()
    assert client.post("/api/v1/emergency/stop-all", json={"force_exit": True}).status_code == 202
    wait_for(lambda: not bot_processes(home, bots_dirs), 120, "no bot process left", interval=0.1)
    figures["gone"] = time.monotonic() - started
    wait_for(lambda: all(b["status"] == "stopped" for b in client.get("/api/v1/bots/").json()), 60, "all stopped")
    figures["stopped"] = time.monotonic() - started
    return figures


def several_hosts(bots: int, hosts: int) -> None:
    names = HOST_NAMES[:hosts]
    home = Path(tempfile.mkdtemp(prefix="multibot-fleet-"))
    given = os.environ.get("DATABASE_URL", "")
    database_url, database = private_database(given) if given else ("", "")
    system = System(home, database_url=database_url)
    gateways = [host_env(home, name, index, hosts, slots=bots) for index, name in enumerate(names)]
    bots_dirs = [Path(gateway["MULTIBOT_BOTS_DIR"]) for gateway in gateways]
    print(f"fleet benchmark: {bots} bots on one host, then {bots * hosts} over {hosts} ({', '.join(names)}), "
          f"{os.cpu_count()} cores, {'PostgreSQL' if database else 'SQLite'}, home {home}")  # fmt: skip
    system.start(host=gateways[0])
    client = system.client
    try:
        # Only the bots measured: the demo bot the first run makes goes.
        for bot in client.get("/api/v1/bots/").json():
            assert client.delete(f"/api/v1/bots/{bot['id']}").status_code == 204
        wait_for(lambda: names[0] in live_hosts(client), 60, f"host {names[0]}")
        ids = create_bots(client, bots, prefix=names[0])
        one = fleet_round(client, home, set(ids), bots_dirs[:1])
        placed_one = live_hosts(client)

        # The same bots, and as many again for each host added: a first start places each on the host
        # with the most free slots, so every host gets its share.
        for gateway in gateways[1:]:
            system.start_gateway(gateway)
        wait_for(lambda: set(live_hosts(client)) == set(names), 120, f"hosts {', '.join(names)}")
        ids += create_bots(client, bots * (hosts - 1), prefix="more")
        several = fleet_round(client, home, set(ids), bots_dirs)
        placed = live_hosts(client)

        rows = [("start-all -> all running", "start", "s"), ("GET /bots/ p50", "list50", "ms"),
                ("GET /bots/ p95", "list95", "ms"), ("emergency -> no process", "gone", "s"),
                ("emergency -> all stopped", "stopped", "s")]  # fmt: skip
        first, second = f"1 host, {bots} bots", f"{hosts} hosts, {bots * hosts} bots"
        print(f"{'':26}{first:>18}{second:>20}{f'{hosts} hosts / 1':>16}")
        for label, key, unit in rows:
            print(f"{label:26}{one[key]:>15.1f} {unit:<2}{several[key]:>17.1f} {unit:<2}"
                  f"{several[key] / one[key]:>15.2f}x")  # fmt: skip
        print(f"{'per bot: start-all':26}{one['start'] / bots:>15.2f} s {several['start'] / (bots * hosts):>17.2f} s "
              f"{several['start'] / (bots * hosts) / (one['start'] / bots):>15.2f}x")  # fmt: skip
        print("placed: " + ", ".join(f"{name} {count}" for name, count in placed_one.items()) + " | "
              + ", ".join(f"{name} {count}" for name, count in placed.items()))  # fmt: skip
    finally:
        system.stop()
        for process in bot_processes(home, bots_dirs):
            process.kill()
        if database:
            drop_database(given, database)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bots", type=int, default=20, help="bots in the fleet (with --hosts: per host)")
    parser.add_argument("--hosts", type=int, default=1, choices=range(1, len(HOST_NAMES) + 1),
                        help="1: one gateway; more: --bots on one host, then --bots per host on each")  # fmt: skip
    args = parser.parse_args()
    if args.hosts == 1:
        one_host(args.bots)
    else:
        several_hosts(args.bots, args.hosts)


if __name__ == "__main__":
    main()

"""Benchmark of the WebSocket fan-out, against a bare Channels echo measured in the same run on the same Redis.

    .venv/bin/python benchmarks/realtime.py [--layer core|pubsub|both] [--clients 100] [--users 10]
                                            [--rate 200] [--seconds 20] [--dashboard-bots 50]

It starts a private system under a temporary MULTIBOT_HOME (embedded Redis, SQLite with the users and
their bots, a uvicorn web server, ``run_listeners``) and, in a separate process, the WebSocket clients
(the ``websockets`` library), spread evenly over the users. Per channel layer (channels_redis'
``RedisChannelLayer`` "core" and ``RedisPubSubChannelLayer`` "pubsub"):
  baseline   a minimal Channels consumer that forwards a group_send to its socket (uvicorn, same
             number of clients), fed by group_send from one asyncio loop at the same rate: no streams
  multibot   ``trade_notification`` envelopes published on system:events at the same rate for bots of
             those users -> run_listeners -> realtime.broadcast -> the /ws consumer (auth, owner groups,
             subscription filter, bounded queue) -> the owner's sockets
Each event carries its send time; figures: event-to-client latency p50/p95/p99 and the share delivered
of what ownership says each socket should get. Target: p95 <= 50 ms, >= 99.9 % delivered.

Then the dashboard's first load with ``--dashboard-bots`` bots in Debian's chromium (Playwright): from
the login click until the fleet table lists every bot, against the same login and ``GET /bots/`` over
plain HTTP in the same run (see ``dashboard_first_load``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project's apps first (this file's own name is one of them)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multibot.settings")
os.environ.setdefault("MULTIBOT_HOME", tempfile.mkdtemp(prefix="multibot-bench-realtime-"))
os.environ.setdefault("MULTIBOT_LOG_LEVEL", "WARNING")
os.environ.pop("REDIS_URL", None)
os.environ.pop("DATABASE_URL", None)

ECHO_GROUP = "bench.{user}"
READY_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def port_accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# -- the baseline's server: uvicorn benchmarks.realtime:echo_application --------------------------
_echo = None


async def echo_application(scope, receive, send):
    """``/echo?user=<n>``: joins group bench.<n> and forwards every group message's text, nothing else."""
    global _echo
    if _echo is None:
        import django

        django.setup()
        from channels.generic.websocket import AsyncWebsocketConsumer
        from channels.routing import URLRouter
        from django.urls import path

        class EchoConsumer(AsyncWebsocketConsumer):
            async def connect(self) -> None:
                user = self.scope["query_string"].decode().partition("user=")[2]
                self.groups = [ECHO_GROUP.format(user=user)]
                await self.channel_layer.group_add(self.groups[0], self.channel_name)
                await self.accept()

            async def bench_event(self, event) -> None:
                await self.send(text_data=event["text"])

        _echo = URLRouter([path("echo", EchoConsumer.as_asgi())])
    return await _echo(scope, receive, send)


# -- the clients' process ---------------------------------------------------------------------------
def run_clients(spec_path: str) -> None:
    """Open every socket, signal ready, record (latency, socket, seq) of each event until told to stop."""
    import websockets

    spec = json.loads(Path(spec_path).read_text())
    out = Path(spec["out"])
    latencies: list[float] = []
    received: list[set[int]] = [set() for _ in spec["sockets"]]
    duplicates = 0

    async def client(index: int, url: str, protocols: list[str] | None) -> None:
        nonlocal duplicates
        async with websockets.connect(url, subprotocols=protocols, max_queue=None, ping_interval=None,
                                      open_timeout=60) as ws:  # fmt: skip
            ready.append(index)
            async for raw in ws:
                now = time.time()
                message = json.loads(raw)
                data = message.get("data") or {}
                if "seq" not in data:
                    continue  # welcome, ping
                if data["seq"] in received[index]:
                    duplicates += 1
                    continue
                received[index].add(data["seq"])
                latencies.append(now - data["sent_at"])

    ready: list[int] = []

    async def main() -> None:
        tasks = []
        for index, (url, protocols) in enumerate(spec["sockets"]):
            tasks.append(asyncio.create_task(client(index, url, protocols)))
            await asyncio.sleep(0.01)  # no handshake storm: the figure is the steady state
        while len(ready) < len(tasks):
            if any(task.done() for task in tasks):
                for task in tasks:
                    if task.done() and task.exception():
                        raise task.exception()
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # the consumers have joined their groups (welcome came after)
        Path(str(out) + ".ready").write_text("1")
        stop = Path(str(out) + ".stop")
        while not stop.exists():
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    partial = out.with_suffix(".partial")  # renamed once whole: the driver reads it as soon as it exists
    partial.write_text(json.dumps({"latencies": latencies, "received": [sorted(s) for s in received],
                                   "duplicates": duplicates}))  # fmt: skip
    partial.replace(out)


# -- the driver -------------------------------------------------------------------------------------
class Run:
    """One measured run: its servers, its clients, its publisher."""

    def __init__(self, system: System, *, layer: str, mode: str) -> None:
        self.system, self.layer, self.mode = system, layer, mode
        self.env = {**system.env, "MULTIBOT_CHANNEL_LAYER": layer}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.port = free_port()

    def spawn(self, name: str, *command: str) -> None:
        log = open(self.system.home / f"{self.layer}-{self.mode}-{name}.log", "ab")
        self.processes.append(subprocess.Popen(list(command), cwd=ROOT, env=self.env, stdout=log, stderr=log))

    def start_servers(self) -> None:
        app = "benchmarks.realtime:echo_application" if self.mode == "baseline" else "multibot.asgi:application"
        self.spawn("web", sys.executable, "-m", "uvicorn", app, "--port", str(self.port), "--lifespan", "off",
                   "--log-level", "warning", "--no-server-header")  # fmt: skip
        if self.mode == "multibot":
            self.spawn("listeners", sys.executable, "manage.py", "run_listeners", "--consumer", "bench")
            from multibot.heartbeats import heartbeat_list

            wait_for(lambda: heartbeat_list(component="listeners"), READY_TIMEOUT, "the listeners")
        wait_for(lambda: port_accepts(self.port), READY_TIMEOUT, "uvicorn")

    def socket_specs(self) -> list[tuple[str, list[str] | None]]:
        specs = []
        for index in range(self.system.clients):
            user = self.system.users[index % len(self.system.users)]
            if self.mode == "baseline":
                specs.append((f"ws://127.0.0.1:{self.port}/echo?user={user.pk}", None))
            else:
                specs.append((f"ws://127.0.0.1:{self.port}/ws", ["multibot", f"bearer.{self.system.tokens[user.pk]}"]))
        return specs

    def start_clients(self) -> Path:
        workdir = Path(tempfile.mkdtemp(prefix=f"clients-{self.layer}-{self.mode}-", dir=self.system.home))
        out = workdir / "result.json"
        spec = workdir / "spec.json"
        spec.write_text(json.dumps({"out": str(out), "sockets": self.socket_specs()}))
        self.spawn("clients", sys.executable, __file__, "--clients-process", str(spec))
        client_process = self.processes[-1]
        wait_for(lambda: Path(str(out) + ".ready").exists() or client_process.poll() is not None, READY_TIMEOUT,
                 "the clients to connect")  # fmt: skip
        if client_process.poll() is not None:
            raise SystemExit(f"the clients failed: see {self.system.home}/{self.layer}-{self.mode}-clients.log")
        return out

    def publish(self, seconds: float, rate: int) -> list[int]:
        """Events at ``rate`` per second for ``seconds``; returns each one's owner (a user id), by seq."""
        owners = [self.system.bots[seq % len(self.system.bots)][1] for seq in range(int(seconds * rate))]
        if self.mode == "baseline":
            asyncio.run(self._group_sends(owners, rate))
        else:
            self._stream_publishes(owners, rate)
        return owners

    def _payload(self, seq: int, owner_id: int) -> dict:
        bot_id = self.system.bots[seq % len(self.system.bots)][0]
        # The shape analytics.notifications gives a trade_notification, with the benchmark's seq and clock.
        return {"bot_id": bot_id, "bot_name": f"bench-{bot_id}", "owner_id": owner_id, "trade_id": seq,
                "event": "entry", "pair": "BTC/USDT", "side": "buy", "is_short": False, "amount": 0.01,
                "price": 50_000.0, "filled": True, "profit_abs": None, "profit_ratio": None, "exit_reason": "",
                "stake_currency": "USDT", "dry_run": True, "at": time.time(),
                "seq": seq, "sent_at": time.time()}  # fmt: skip

    def _stream_publishes(self, owners: list[int], rate: int) -> None:
        from streams.bus import publish
        from streams.catalog import SYSTEM_EVENTS

        started = time.perf_counter()
        for seq, owner_id in enumerate(owners):
            delay = started + seq / rate - time.perf_counter()  # paced against the clock: a steady rate
            if delay > 0:
                time.sleep(delay)
            publish(SYSTEM_EVENTS, type="trade_notification", payload=self._payload(seq, owner_id))
        self.achieved = len(owners) / (time.perf_counter() - started)

    async def _group_sends(self, owners: list[int], rate: int) -> None:
        from channels.layers import get_channel_layer

        from realtime.protocol import message

        layer = get_channel_layer()
        started = time.perf_counter()
        for seq, owner_id in enumerate(owners):
            delay = started + seq / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            payload = self._payload(seq, owner_id)
            payload.pop("owner_id")
            text = message("trade_notification", payload)
            await layer.group_send(ECHO_GROUP.format(user=owner_id), {"type": "bench.event", "text": text})
        self.achieved = len(owners) / (time.perf_counter() - started)

    def measure(self, seconds: float, rate: int) -> dict:
        from multibot.redis_client import redis_client

        redis_client().flushdb()  # a fresh bus and no group members left from an earlier run
        self.system.reset_channel_layers(self.layer)
        try:
            self.start_servers()
            out = self.start_clients()
            owners = self.publish(seconds, rate)
            time.sleep(2.0)  # the last events' way through
            Path(str(out) + ".stop").write_text("1")
            wait_for(out.exists, 60, "the clients' figures")
        finally:
            self.stop()
        result = json.loads(out.read_text())
        sockets_of: dict[int, list[int]] = {}
        for index in range(self.system.clients):
            sockets_of.setdefault(self.system.users[index % len(self.system.users)].pk, []).append(index)
        # What ownership says each socket gets: every event of its user's bots (no superuser sockets here).
        expected = sum(len(sockets_of.get(owner, [])) for owner in owners)
        delivered = sum(len(seqs) for seqs in result["received"])
        latencies = sorted(result["latencies"])
        return {"expected": expected, "delivered": delivered, "duplicates": result["duplicates"],
                "latencies": latencies, "achieved": self.achieved, "events": len(owners)}  # fmt: skip

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


class System:
    def __init__(self, *, clients: int, users: int, bots_per_user: int) -> None:
        self.home = Path(os.environ["MULTIBOT_HOME"])
        self.clients = clients
        self.env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                    "MULTIBOT_COMPONENTS": "listeners", "MULTIBOT_RATE_LIMITS": "user=1000000/hour"}  # fmt: skip
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=self.env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        self._populate(users, bots_per_user)

    def _populate(self, users: int, bots_per_user: int) -> None:
        from datetime import UTC, datetime

        from django.contrib.auth import get_user_model
        from rest_framework_simplejwt.tokens import RefreshToken

        from audit.services import Actor
        from bots.services import bot_create
        from marketdata.models import CandleSet

        moment = datetime(2026, 1, 1, tzinfo=UTC)
        # The replay market a bot's pair must exist in (no candles needed: no bot runs here).
        market = {"start": moment, "end": moment, "records": 0, "source": CandleSet.Source.DEMO, "synthetic": True}
        CandleSet.objects.get_or_create(exchange="replay", pair="BTC/USDT", timeframe="1m", defaults=market)
        self.users, self.tokens, self.bots = [], {}, []
        for number in range(users):
            user = get_user_model().objects.create_user(username=f"bench{number}", password=os.urandom(16).hex())
            self.users.append(user)
            self.tokens[user.pk] = str(RefreshToken.for_user(user).access_token)
            for bot_number in range(bots_per_user):
                bot = bot_create(actor=Actor(user=user, ip_address="127.0.0.1"), owner=user,
                                 name=f"bench{number}-{bot_number}", strategy_name="SampleStrategy", stake_amount=100,
                                 pair_whitelist=["BTC/USDT"])  # fmt: skip
                self.bots.append((bot.pk, user.pk))

    @staticmethod
    def reset_channel_layers(layer: str) -> None:
        """This process's own channel layer (the baseline publishes through it) switched to ``layer``."""
        from channels.layers import channel_layers
        from django.conf import settings

        settings.CHANNEL_LAYERS["default"]["BACKEND"] = settings.CHANNEL_LAYER_BACKENDS[layer]
        channel_layers.backends.clear()


# -- the dashboard's first load -------------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def dashboard_first_load(system: System, *, bots: int, rounds: int) -> None:
    """The page at / with ``bots`` bots: from the login click until the fleet table lists them all.

    The baseline, in the same run on the same server: what the table cannot do without, the same
    login and ``GET /api/v1/bots/`` over plain HTTP (httpx). Each round is a fresh browser context
    (no cache, no stored token); the median of the rounds is reported.
    """
    import statistics

    import httpx
    from django.contrib.auth import get_user_model

    from audit.services import Actor
    from bots.services import bot_create

    if not Path(CHROMIUM).exists():
        print(f"dashboard   skipped: {CHROMIUM} is missing (make test installs Debian's chromium)")
        return
    from playwright.sync_api import sync_playwright

    password = os.urandom(12).hex()
    owner = get_user_model().objects.create_user(username="dashboard", password=password)
    for number in range(bots):
        bot_create(actor=Actor(user=owner, ip_address="127.0.0.1"), owner=owner, name=f"fleet-{number:02d}",
                   strategy_name="SampleStrategy", stake_amount=100, pair_whitelist=["BTC/USDT"])  # fmt: skip
    run = Run(system, layer=os.environ.get("MULTIBOT_CHANNEL_LAYER", "pubsub"), mode="dashboard")
    run.env["MULTIBOT_RATE_LIMITS"] += ",login=1000/minute"
    run.start_servers()
    base = f"http://127.0.0.1:{run.port}"
    try:
        api_times, page_times = [], []
        with httpx.Client(base_url=base, timeout=30) as http:
            for _ in range(rounds):
                started = time.perf_counter()
                token = http.post("/api/v1/auth/login/json", json={"username": "dashboard", "password": password})
                listing = http.get("/api/v1/bots/", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
                api_times.append(time.perf_counter() - started)
                assert len(listing.json()) == bots, listing.text[:200]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for _ in range(rounds):
                context = browser.new_context(viewport={"width": 1360, "height": 900})
                page = context.new_page()
                page.goto(base + "/")
                page.fill("input[name=username]", "dashboard")
                page.fill("input[name=password]", password)
                started = time.perf_counter()
                page.click("button[type=submit]")
                # A locator, not wait_for_function: the page's CSP refuses evaluated strings.
                page.locator("tr[data-bot-name]").nth(bots - 1).wait_for(timeout=60_000)
                page_times.append(time.perf_counter() - started)
                context.close()
            browser.close()
    finally:
        run.stop()
    api, shown = statistics.median(api_times), statistics.median(page_times)
    print(
        f"dashboard   {bots} bots, median of {rounds}: login + GET /bots/ {api * 1000:7.1f} ms   "
        f"login click to full fleet table {shown * 1000:7.1f} ms   ratio {shown / api:5.2f}x",
        flush=True,
    )


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000 if values else float("nan")


def report(layer: str, mode: str, figures: dict) -> None:
    latencies = figures["latencies"]
    share = 100 * figures["delivered"] / figures["expected"] if figures["expected"] else float("nan")
    print(f"{layer:<7} {mode:<9} {figures['events']:>6} ev at {figures['achieved']:>5.0f}/s  "
          f"p50 {pct(latencies, 50):>7.1f} ms  p95 {pct(latencies, 95):>7.1f} ms  p99 {pct(latencies, 99):>7.1f} ms  "
          f"delivered {figures['delivered']:>7}/{figures['expected']:<7} {share:7.3f} %  dup {figures['duplicates']}",
          flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layer", choices=["core", "pubsub", "both"], default="both")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--bots-per-user", type=int, default=3)
    parser.add_argument("--rate", type=int, default=200, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--dashboard-bots", type=int, default=50, help="0 skips the dashboard's first load")
    parser.add_argument("--dashboard-rounds", type=int, default=5)
    parser.add_argument("--clients-process")
    args = parser.parse_args()
    if args.clients_process:
        run_clients(args.clients_process)
        return

    from multibot.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(Path(os.environ["MULTIBOT_HOME"]) / "redis")
    server.start()
    try:
        import django

        django.setup()
        system = System(clients=args.clients, users=args.users, bots_per_user=args.bots_per_user)
        print(f"realtime benchmark: {args.clients} sockets over {args.users} users ({args.bots_per_user} bots each), "
              f"{args.rate} events/s for {args.seconds:g} s, python {sys.version.split()[0]}, "
              f"{os.cpu_count()} cores; MULTIBOT_HOME={system.home}", flush=True)  # fmt: skip
        layers = ["core", "pubsub"] if args.layer == "both" else [args.layer]
        for layer in layers:
            for mode in ("baseline", "multibot"):
                report(layer, mode, Run(system, layer=layer, mode=mode).measure(args.seconds, args.rate))
        if args.dashboard_bots:
            dashboard_first_load(system, bots=args.dashboard_bots, rounds=args.dashboard_rounds)
    finally:
        server.stop()


if __name__ == "__main__":
    main()

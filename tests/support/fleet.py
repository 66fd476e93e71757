"""The gateways (one per bot host) and the listeners as real processes, and the truth about bot processes.

A test starts a ``System`` on the test database and Redis, kills or stops its parts, and compares what
the records say with what the operating system shows. "The truth": every bot that should run has
exactly one freqtrade process on this machine, under its own host's bots directory, and its record
names that pid; a bot without a process is never recorded running or stopping.

Several hosts on one machine are several gateways, each with its own host name, bots directory and
port range (``BotHost``), sharing the database and Redis as gateways on separate machines would.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from django.conf import settings

from bots.models import Bot
from tests.factories import client_for, make_bot, make_user
from tests.support.processes import ROOT, database_url, free_port, server_env, uvicorn_process, wait_for

SNAPSHOT_SECONDS = 2.0
RECORDED_ALIVE = ("running", "stopping", "starting", "unresponsive")


@dataclass(frozen=True)
class BotHost:
    """One bot host, as a gateway process on this machine: its name, bots directory, API ports and slots.

    ``ports`` None and ``slots`` 0 keep the settings' own (the single host of a one-gateway system)."""

    name: str
    bots_dir: Path
    ports: range | None = None
    slots: int = 0

    def env(self) -> dict[str, str]:
        env = {"MULTIBOT_GATEWAY_HOST": self.name, "MULTIBOT_BOTS_DIR": str(self.bots_dir)}
        if self.ports is not None:
            env.update(MULTIBOT_BOT_PORT_FIRST=str(self.ports.start), MULTIBOT_BOT_PORT_LAST=str(self.ports[-1]))
        if self.slots:
            env["MULTIBOT_GATEWAY_BOT_SLOTS"] = str(self.slots)
        return env

    def config(self, bot_id: int) -> str:
        """The config a bot of this host runs with: its command line's marker."""
        return str(self.bots_dir / str(bot_id) / "config.json")


def this_host() -> BotHost:
    """The one host of a single-gateway system: the settings' name and bots directory."""
    return BotHost(settings.GATEWAY["host"], Path(settings.BOTS["dir"]))


def free_port_range(size: int) -> range:
    """``size`` consecutive ports that nothing listens on now (a host's bots' API ports)."""
    for _attempt in range(50):
        first = random.randrange(20_000, 40_000 - size)
        try:
            for port in range(first, first + size):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return range(first, first + size)
    raise AssertionError(f"no {size} consecutive free ports")


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def records(bots: Sequence[Bot]) -> list[Bot]:
    return list(Bot.objects.filter(pk__in=[bot.pk for bot in bots]).order_by("pk"))


def fleet(count: int, *, owner: Any = None) -> tuple[list[Bot], Any]:
    """``count`` stopped AlwaysIn bots of ``owner`` (a new user by default), and an API client for them."""
    owner = owner or make_user()
    bots = [make_bot(owner=owner, strategy_name="AlwaysIn", timeframe="1m", pair_whitelist=["BTC/USDT"])
            for _ in range(count)]  # fmt: skip
    return bots, client_for(owner)


class System:
    """The gateways and the listeners (and the web when asked), as processes a test may kill."""

    def __init__(self, replay_url: str, logs: Path, *, hosts: Sequence[BotHost] = (), **env: str) -> None:
        self.env = server_env(
            DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url(), MULTIBOT_REPLAY_URL=replay_url,
            MULTIBOT_BOT_STOP_GRACE_SECONDS="5", MULTIBOT_GATEWAY_SNAPSHOT_MS=str(int(SNAPSHOT_SECONDS * 1000)),
            SECRET_KEY=settings.SECRET_KEY, **env,
        )  # fmt: skip
        self.logs = logs
        self.hosts = {host.name: host for host in (hosts or [this_host()])}
        self.gateways = {name: self._spawn_gateway(name) for name in self.hosts}
        self.listeners = self._spawn("run_listeners", "run_listeners")
        self.web: subprocess.Popen[bytes] | None = None
        self.web_port = free_port()

    def _spawn(self, command: str, log_name: str, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{log_name}.log", "ab")
        return subprocess.Popen([sys.executable, "manage.py", command], cwd=ROOT, env={**self.env, **env}, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip

    def _spawn_gateway(self, host: str) -> subprocess.Popen[bytes]:
        return self._spawn("run_gateway", f"run_gateway@{host}", **self.hosts[host].env())

    def _only_host(self, host: str | None) -> str:
        if host is None:
            (host,) = self.hosts  # a system of several hosts names the one meant
        return host

    @property
    def gateway(self) -> subprocess.Popen[bytes]:
        return self.gateways[self._only_host(None)]

    def start_gateway(self, host: str | None = None) -> None:
        host = self._only_host(host)
        self.gateways[host] = self._spawn_gateway(host)

    def kill_gateway(self, host: str | None = None) -> None:
        """SIGKILL: the gateway dies on the spot, its bots keep running."""
        gateway = self.gateways[self._only_host(host)]
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(10)

    def stop_gateway(self, host: str | None = None) -> None:
        """SIGTERM, as a process manager stops it: it finishes its step and leaves, its bots keep running."""
        gateway = self.gateways[self._only_host(host)]
        gateway.terminate()
        gateway.wait(60)

    def gateway_log(self, host: str | None = None) -> str:
        return (self.logs / f"run_gateway@{self._only_host(host)}.log").read_text(errors="replace")

    def start_web(self) -> str:
        self.web = uvicorn_process(self.env, self.web_port, output=open(self.logs / "web.log", "a"))
        return f"http://127.0.0.1:{self.web_port}"

    def close(self) -> None:
        for process in (*self.gateways.values(), self.listeners, self.web):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.kill_bots()

    # -- the truth ---------------------------------------------------------------------------------
    def host_of(self, bot: Bot) -> BotHost | None:
        """The host a bot's record places it on (an unplaced bot of a one-host system: that host)."""
        if bot.host in self.hosts:
            return self.hosts[bot.host]
        return next(iter(self.hosts.values())) if len(self.hosts) == 1 and not bot.host else None

    def config(self, bot: Bot) -> str:
        host = self.host_of(bot)
        return host.config(bot.pk) if host else ""

    def bot_processes(self) -> dict[str, list[int]]:
        """Our freqtrade processes on this machine by their bot config (its directory names host and bot)."""
        bots_dirs = tuple(str(host.bots_dir) + "/" for host in self.hosts.values())
        found: dict[str, list[int]] = {}
        for process in psutil.process_iter(["pid", "cmdline"]):
            args = process.info["cmdline"] or []
            if args[1:5] == ["-m", "freqtrade", "trade", "--config"] and args[5:6] and args[5].startswith(bots_dirs):
                found.setdefault(args[5], []).append(process.info["pid"])
        return found

    def kill_bots(self) -> None:
        for pids in self.bot_processes().values():
            for pid in pids:
                try:
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def untrue(self, bots: Sequence[Bot], *, running: bool) -> list[str]:
        """What the records say that the operating system does not (empty: the picture is true)."""
        processes = self.bot_processes()
        wrong = []
        for bot in records(bots):
            pids = processes.get(self.config(bot), [])
            elsewhere = [pid for host in self.hosts.values() if host.config(bot.pk) != self.config(bot)
                         for pid in processes.get(host.config(bot.pk), [])]  # fmt: skip
            if elsewhere:
                wrong.append(f"{bot.name} (on {bot.host or 'no host'}): processes {elsewhere} under another host")
            if running and (len(pids) != 1 or bot.status != "running" or bot.pid != pids[0]):
                wrong.append(f"{bot.name}: recorded {bot.status} pid {bot.pid} on {bot.host!r}, processes {pids}")
            if bot.status in RECORDED_ALIVE and not alive(bot.pid):
                if bot.status != "starting" or not running:
                    wrong.append(f"{bot.name}: recorded {bot.status} with no process (pid {bot.pid})")
        return wrong

    def time_to_truth(self, bots: Sequence[Bot], *, running: bool, timeout: float, since: float) -> float:
        """Seconds from ``since`` until the records of ``bots`` are true (all running, when ``running``)."""
        last: list[str] = []

        def true() -> bool:
            nonlocal last
            last = self.untrue(bots, running=running)
            return not last

        try:
            wait_for(true, timeout, "the records to match the processes")
        except AssertionError:
            raise AssertionError(f"still untrue after {timeout:.0f}s: {last}") from None
        return time.monotonic() - since

    def stopped(self, bots: Sequence[Bot]) -> bool:
        """Every one recorded stopped, with no process left anywhere."""
        processes = self.bot_processes()
        left = {config for config, pids in processes.items() if pids}
        return all(bot.status == "stopped" and not left & {host.config(bot.pk) for host in self.hosts.values()}
                   for bot in records(bots))  # fmt: skip

"""The gateway's work: turn trading commands into supervisor actions and report every state change.

Commands arrive on ``mgmt:trading:commands``; every state change goes out on ``trading:mgmt:status``
(the listeners apply it to the database) and every command outcome is audited here.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from django.conf import settings
from django.db.models import Q

from audit.models import AuditLog
from audit.services import Actor, audit_record
from bots import workspace
from bots.ftclient import FreqtradeApiError, client_for
from bots.gateway.supervisor import BotLaunch, Supervisor
from bots.gateway.trades import TradeCollector
from bots.models import Bot
from multibot.heartbeats import heartbeat_publish
from streams.bus import BusError, Envelope, publish
from streams.worker import HandlerRegistry

logger = logging.getLogger(__name__)

HOST = socket.gethostname()
STATUS_STREAM = "trading:mgmt:status"
COMMANDS = "mgmt:trading:commands"
HEARTBEAT_SECONDS = 5.0
GATEWAY = Actor(user=None, ip_address=None, name="gateway")


def _publish(kind: str, payload: dict[str, Any]) -> None:
    try:
        publish(STATUS_STREAM, type=kind, payload={**payload, "host": HOST}, producer="trading_gateway")
    except BusError as exc:
        # The status stream is down with Redis; the next heartbeat and state change catch up.
        logger.warning("could not publish %s for bot %s: %s", kind, payload.get("bot_id"), exc)


class Gateway:
    def __init__(self, *, python: str = sys.executable, stop_bots_on_exit: bool = False) -> None:
        conf = settings.GATEWAY
        self.python, self.stop_bots_on_exit = python, stop_bots_on_exit
        self.supervisor = Supervisor(
            publish=lambda payload: _publish("bot_status", payload),
            grace_seconds=conf["grace_seconds"], restart_budget=conf["restart_budget"],
            restart_window=conf["restart_window_seconds"], backoff_base=conf["backoff_base_seconds"],
        )  # fmt: skip
        self._next_beat = 0.0
        self.trades = TradeCollector(publish=lambda payload: publish(STATUS_STREAM, type="trade_update",
                                     payload={**payload, "host": HOST}, producer="trading_gateway"))  # fmt: skip

    # -- launching -------------------------------------------------------------------------------
    def launch_for(self, bot: Bot, *, prepare: bool = True) -> BotLaunch:
        space = workspace.prepare(bot) if prepare else workspace.workspace_for(bot.pk)
        return BotLaunch(bot_id=bot.pk, command=space.command(self.python), workdir=space.root, log=space.log,
                         api_port=bot.api_port)  # fmt: skip

    def start(self, bot: Bot, *, reason: str = "") -> str:
        try:
            launch = self.launch_for(bot)
        except workspace.WorkspaceError as exc:
            _publish("bot_status", {"bot_id": bot.pk, "status": "error", "at": time.time(), "detail": str(exc)})
            audit_record(actor=GATEWAY, action="bot_start", status=AuditLog.Status.FAILURE, resource=f"bot:{bot.pk}",
                         details={"bot_name": bot.name, "error": str(exc)})  # fmt: skip
            return "error"
        outcome = self.supervisor.start(launch)
        audit_record(actor=GATEWAY, action="bot_start", resource=f"bot:{bot.pk}",
                     details={"bot_name": bot.name, "outcome": outcome, "reason": reason})  # fmt: skip
        return outcome

    # -- commands --------------------------------------------------------------------------------
    def handle(self, envelope: Envelope) -> None:
        bot_ids = envelope.payload.get("bot_ids") or [envelope.payload.get("bot_id")]
        bots = {bot.pk: bot for bot in Bot.objects.filter(pk__in=[i for i in bot_ids if i is not None])}
        for bot_id in bot_ids:
            bot = bots.get(bot_id)
            if bot is None:
                logger.warning("%s for bot %s: no such bot", envelope.type, bot_id)
                continue
            if bot.host not in ("", HOST):
                continue  # another host's bot
            self._dispatch(envelope.type, bot, envelope.payload)

    def _dispatch(self, command: str, bot: Bot, payload: dict[str, Any]) -> None:
        if command == "bot_start":
            if bot.desired_state == "running":  # a stop issued after this start wins
                self.start(bot, reason="command")
        elif command == "bot_stop":
            if bot.desired_state == "stopped":  # a start issued after this stop wins
                self.supervisor.stop(bot.pk)
        elif command == "bot_restart":
            if bot.desired_state == "running":
                self.supervisor.stop(bot.pk).add_done_callback(lambda _: self._start_if_wanted(bot.pk))
        elif command == "bot_kill":
            self.supervisor.stop(bot.pk, kill=True)
        elif command == "emergency_stop":
            self.supervisor.stop(bot.pk, before=lambda: self._emergency_steps(bot, bool(payload.get("force_exit"))),
                                 grace=settings.GATEWAY["emergency_grace_seconds"])  # fmt: skip
        else:
            logger.warning("unknown trading command %s", command)

    def _start_if_wanted(self, bot_id: int) -> None:
        """The second half of a restart: only if the bot still exists and nobody asked for a stop since."""
        bot = Bot.objects.filter(pk=bot_id, desired_state="running", delete_requested=False).first()
        if bot is not None:
            self.start(bot, reason="restart")

    def _emergency_steps(self, bot: Bot, force_exit: bool) -> None:
        """Before terminating: no new entries, then (when asked) exit every open trade. Each step audited."""
        with client_for(bot) as client:
            steps = [("stop_entries", client.stopentry)]
            if force_exit:
                steps.append(("force_exit_all", lambda: client.forceexit("all")))
            for step, call in steps:
                try:
                    call()
                    status, error = AuditLog.Status.SUCCESS, ""
                except FreqtradeApiError as exc:
                    status, error = AuditLog.Status.FAILURE, str(exc)
                audit_record(actor=GATEWAY, action=f"emergency_{step}", status=status, resource=f"bot:{bot.pk}",
                             details={"bot_name": bot.name, "error": error})  # fmt: skip
        # Last look at its trades while it still answers: after termination nobody can read them.
        try:
            self.trades.collect_bot(bot)
        except Exception:  # noqa: BLE001 - the stop goes on regardless
            logger.warning("bot %s: final trade collection failed", bot.pk)

    # -- the loop --------------------------------------------------------------------------------
    def tick(self) -> None:
        self.supervisor.poll()
        if time.monotonic() >= self._next_beat:
            self._next_beat = time.monotonic() + HEARTBEAT_SECONDS
            running = {str(bot_id): {"pid": child.pid, "status": child.status}
                       for bot_id, child in self.supervisor.running().items()}  # fmt: skip
            heartbeat_publish(component="gateway", details={"host": HOST, "bots": len(running)})
            _publish("gateway_heartbeat", {"bots": running, "at": time.time()})
        self.trades.tick(self.supervisor.running())  # starts a background round when one is due

    def reconcile(self) -> dict[str, list[int]]:
        """After a (re)start: adopt live bot processes, restart bots that should run, kill strays."""
        report: dict[str, list[int]] = {"adopted": [], "restarted": [], "marked": [], "killed": []}
        # Bots that are (or should be) running here; a stopped or errored bot is left as it is.
        expected = Bot.objects.filter(host__in=["", HOST]).filter(
            Q(status__in=Bot.ACTIVE_STATUSES) | Q(desired_state="running")
        )
        for bot in expected:
            launch = self.launch_for(bot, prepare=False)
            if bot.pid and self.supervisor.adopt(launch, pid=bot.pid, create_time=bot.pid_create_time):
                report["adopted"].append(bot.pk)
                if bot.desired_state != "running":
                    self.supervisor.stop(bot.pk)  # its stop was asked for while no gateway could act
            elif bot.desired_state == "running":
                self.start(bot, reason="gateway restart: process was gone")
                report["restarted"].append(bot.pk)
            else:
                _publish("bot_status", {"bot_id": bot.pk, "status": "stopped", "at": time.time(),
                                        "detail": "process was gone when the gateway restarted"})  # fmt: skip
                report["marked"].append(bot.pk)
        report["killed"] = self._kill_strays()
        logger.info("gateway reconciled: %s", report)
        return report

    def _kill_strays(self) -> list[int]:
        """freqtrade processes of ours (their config is under MULTIBOT_HOME/bots/) that no bot owns now."""
        bots_dir = str(Path(settings.HOME) / "bots") + "/"
        owned = {child.pid for child in self.supervisor.running().values()}
        killed = []
        for process in psutil.process_iter(["pid", "cmdline"]):
            args = process.info["cmdline"] or []
            # Exactly a bot's command line: "<python> -m freqtrade trade --config <bots dir>/<id>/config.json".
            ours = args[1:5] == ["-m", "freqtrade", "trade", "--config"] and args[5:6] and args[5].startswith(bots_dir)
            if ours and process.pid not in owned:
                try:
                    os.killpg(os.getpgid(process.pid), signal.SIGKILL)
                    killed.append(process.pid)
                except (ProcessLookupError, PermissionError):
                    pass
        if killed:
            audit_record(actor=GATEWAY, action="bot_stray_kill", resource="bots", details={"pids": killed})
        return killed

    def shutdown(self) -> None:
        if self.stop_bots_on_exit:
            # A process manager (honcho) kills us 5 s after asking: the bots get 3.
            futures = [self.supervisor.stop(bot_id, grace=3) for bot_id in list(self.supervisor.running())]
            for future in futures:
                future.result(timeout=60)
        self.supervisor.shutdown()


def gateway_registry(gateway: Gateway) -> HandlerRegistry:
    """The trading commands this gateway handles, bound to it."""
    registry = HandlerRegistry()
    registry.handles(COMMANDS, atomic=False)(gateway.handle)
    return registry

"""The gateway's work: trading commands become supervisor actions, and every state change is reported.

Commands arrive on ``TRADING_COMMANDS`` (one handler per kind, bots/handlers.py, each calling one
method here); every state change goes out on ``TRADING_STATUS`` (the listeners apply it to the
database) and every command outcome is audited here. The loop's ``tick`` is three steps that
return what they did: poll the children, beat, collect trades.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import psutil
import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from audit import events
from audit.services import Actor
from bots import workspace
from bots.commands import (
    ACTIVE_STATUSES,
    BotCommand,
    BotStatus,
    BotStatusReport,
    DesiredState,
    EmergencyStop,
    GatewayHeartbeat,
    HostCapacity,
    Report,
    TradeUpdate,
    build_bot_beat,
    build_bot_status,
    build_gateway_heartbeat,
)
from bots.ftclient import FreqtradeApiError, client_for
from bots.gateway.liveness import Liveness
from bots.gateway.metrics import ProcessSampler
from bots.gateway.reporting import ReportBacklog
from bots.gateway.supervisor import BotLaunch, Polled, Supervisor, is_our_process
from bots.gateway.trades import TradeCollector
from bots.models import Bot
from bots.selectors import LIFECYCLE_FIELDS
from bots.services import bot_port_on_host
from multibot.errors import UnavailableError
from multibot.heartbeats import heartbeat_publish
from streams.bus import announce, publish
from streams.catalog import TRADING_STATUS

logger = logging.getLogger(__name__)

HOST = settings.GATEWAY["host"]
PRODUCER = "trading_gateway"
GATEWAY = Actor(user=None, ip_address=None, name="gateway")
# What loading a row that an older version (or a hand edit) left broken raises: a Decimal beyond its
# digits (decimal.InvalidOperation), JSON that does not parse.
UNREADABLE_ROW = (ArithmeticError, ValueError)

CommandLine = Callable[[workspace.Workspace], list[str]]
P = ParamSpec("P")
R = TypeVar("R")


def freqtrade_command(space: workspace.Workspace) -> list[str]:
    return space.command(sys.executable)


def closes_its_connection(work: Callable[P, R]) -> Callable[P, R]:
    """For work that runs on a helper thread (a stopper): its database connection is closed when done.

    Django opens one connection per thread and closes it only at the end of a request; a pool thread
    would keep it (a PostgreSQL slot) for the gateway's whole life.
    """

    @functools.wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return work(*args, **kwargs)
        finally:
            if not connection.in_atomic_block:  # run inline by a caller inside a transaction: theirs
                connection.close()

    return run


def _done(outcome: str) -> Future[str]:
    future: Future[str] = Future()
    future.set_result(outcome)
    return future


@dataclass
class Ticked:
    """What one tick did: the children's changes, the reports sent that the bus had refused, the heartbeat
    sent (if one was due), a trade round started."""

    children: Polled
    reports_sent: int
    heartbeat: GatewayHeartbeat | None
    trades: bool


class Gateway:
    def __init__(
        self, *, command_line: CommandLine = freqtrade_command, stop_bots_on_exit: bool = False, host: str = HOST
    ) -> None:
        conf = settings.GATEWAY
        self.command_line, self.stop_bots_on_exit, self.host = command_line, stop_bots_on_exit, host
        self.reports = ReportBacklog(self._publish_status, limit=conf["report_backlog"])
        self.started_at = time.time()
        self._start_after_stop: set[int] = set()  # added to from stopper threads (a restart's second half)
        self._start_after_stop_lock = threading.Lock()
        self.supervisor = Supervisor(
            publish=self._report, host=host, grace_seconds=conf["grace_seconds"],
            restart_budget=conf["restart_budget"], restart_window=conf["restart_window_seconds"],
            backoff_base=conf["backoff_base_seconds"], liveness=Liveness.from_settings(conf),
        )  # fmt: skip
        self._next_beat = 0.0
        self.sampler = ProcessSampler()
        self.trades = TradeCollector(publish=self._publish_trades, host=host)

    # -- reporting -------------------------------------------------------------------------------
    def _report(self, report: BotStatusReport) -> None:
        # Kept when the bus does not take it, and sent once it does (bots/gateway/reporting.py).
        self.reports.report(report)

    @staticmethod
    def _publish_status(report: BotStatusReport) -> None:
        publish(TRADING_STATUS, type=Report.BOT_STATUS, payload=report, producer=PRODUCER)

    @staticmethod
    def _publish_trades(update: TradeUpdate) -> None:
        # Not best effort: the collector remembers what was published only once it was.
        publish(TRADING_STATUS, type=Report.TRADE_UPDATE, payload=update, producer=PRODUCER)

    def _report_status(self, bot_id: int, status: BotStatus, detail: str) -> None:
        self._report(build_bot_status(bot_id=bot_id, status=status, at=time.time(), host=self.host, detail=detail))

    # -- launching -------------------------------------------------------------------------------
    def launch_for(self, bot: Bot, *, prepare: bool = True) -> BotLaunch:
        space = workspace.prepare(bot) if prepare else workspace.workspace_for(bot.pk)
        return BotLaunch(bot_id=bot.pk, command=self.command_line(space), workdir=space.root, log=space.log,
                         api_port=bot.api_port, api_auth=(bot.api_username, bot.api_password))  # fmt: skip

    def start(self, bot: Bot, *, reason: str = "") -> str:
        try:
            launch = self.launch_for(bot)
        except workspace.WorkspaceError as exc:
            self._report_status(bot.pk, BotStatus.ERROR, str(exc))
            events.bot_start_failed_event(actor=GATEWAY, bot=bot, error=str(exc))
            return "error"
        outcome = self.supervisor.start(launch)
        if outcome == "still_stopping":
            with self._start_after_stop_lock:  # never two processes: started by the tick once it has gone
                self._start_after_stop.add(bot.pk)
        events.bot_started_event(actor=GATEWAY, bot=bot, outcome=outcome, reason=reason)
        return outcome

    def _start_by_id(self, bot_id: int, *, reason: str) -> str:
        """Start the bot if it still exists, lives here and should run; its whole row is read (to render its config)."""
        try:
            bot = Bot.objects.filter(pk=bot_id, delete_requested=False).first()
        except UNREADABLE_ROW as exc:
            detail = f"the bot's settings cannot be read ({type(exc).__name__}); correct them, then start it"
            self._report_status(bot_id, BotStatus.ERROR, detail)
            events.bot_start_unreadable_event(actor=GATEWAY, bot_id=bot_id, error=detail)
            return "unreadable"
        if bot is None:
            return "no_such_bot"
        if not self._claim(bot):
            return "another_host"
        if bot.desired_state != DesiredState.RUNNING:
            return "superseded"  # a stop issued after this start wins
        return self.start(bot, reason=reason)

    # -- commands: one method per kind, called by bots/handlers.py --------------------------------
    # Every gateway reads every trading command, in its host's own consumer group (streams/catalog.py),
    # and acts on those for its own bots: placed on this host, or unplaced and claimed by this host.
    def _here(self, bot: Bot) -> bool:
        """The bot is this host's to stop: placed here, or unplaced (a row older than placement) with its
        process on this machine (supervised, or the very one its row names: pid, create time, config)."""
        if bot.host:
            return bot.host == self.host
        if bot.pk in self.supervisor.running():
            return True
        try:
            process = psutil.Process(bot.pid) if bot.pid else None
        except psutil.NoSuchProcess:
            return False
        marker = workspace.workspace_for(bot.pk).command(sys.executable)[-1]
        return process is not None and is_our_process(process, create_time=bot.pid_create_time, marker=marker)

    def _claim(self, bot: Bot) -> bool:
        """The bot is this host's to start: placed here, or unplaced and now claimed (one UPDATE, so of two
        gateways that see the same start of an unplaced bot only one takes it). An unplaced row that names a
        process is claimed only by the machine that process runs on; one with no process takes a port of
        this host's range with the claim, in one transaction (no port in the range left: not claimed)."""
        if bot.host:
            return bot.host == self.host
        if bot.pid and not self._here(bot):
            return False  # a row older than placement whose process runs on another machine
        own_range = (settings.BOTS["api_port_first"], settings.BOTS["api_port_last"])
        try:
            with transaction.atomic():
                if not Bot.objects.filter(pk=bot.pk, host="").update(host=self.host):
                    return Bot.objects.filter(pk=bot.pk, host=self.host).exists()
                if not bot.pid:  # a live process keeps the port it listens on
                    bot.api_port = bot_port_on_host(bot_id=bot.pk, port=bot.api_port, host=self.host,
                                                    port_range=own_range)  # fmt: skip
        except UnavailableError as exc:
            self._report_status(bot.pk, BotStatus.ERROR, str(exc))
            return False
        bot.host = self.host
        logger.info("bot %s: unplaced, claimed by %s", bot.pk, self.host)
        return True

    def _lifecycle_bot(self, bot_id: int) -> Bot | None:
        """The bot with only what stopping it needs, if it lives here."""
        bot = Bot.objects.filter(pk=bot_id).only(*LIFECYCLE_FIELDS).first()
        if bot is None:
            logger.warning("command for bot %s: no such bot", bot_id)
        return bot if bot is not None and self._here(bot) else None

    def _take_over(self, bot: Bot) -> None:
        """A process the row names that the supervisor does not know (an adoption that failed, say): if it
        really is the bot's (pid, create time, command line), supervise it, so that the stop reaches it."""
        if bot.pid and bot.pk not in self.supervisor.running():
            self.supervisor.adopt(self.launch_for(bot, prepare=False), pid=bot.pid, create_time=bot.pid_create_time,
                                  detail="taken over to be stopped", probe=False)  # fmt: skip

    def bot_start(self, command: BotCommand) -> str:
        return self._start_by_id(command["bot_id"], reason="command")

    def bot_stop(self, command: BotCommand) -> Future[str]:
        bot = self._lifecycle_bot(command["bot_id"])
        if bot is None:
            return _done("not_here")
        if bot.desired_state != DesiredState.STOPPED:
            return _done("superseded")  # a start issued after this stop wins
        self._take_over(bot)
        return self.supervisor.stop(bot.pk)

    def bot_restart(self, command: BotCommand) -> Future[str]:
        """Stop, then start again once stopped (on the stopper's thread); the future holds the start's outcome.
        An unplaced bot with no process has nothing to stop: its restart is a start (which claims it)."""
        unplaced = Bot.objects.filter(pk=command["bot_id"], host="", pid__isnull=True).exists()
        if unplaced and command["bot_id"] not in self.supervisor.running():
            return _done(self._start_by_id(command["bot_id"], reason="restart of a stopped bot"))
        bot = self._lifecycle_bot(command["bot_id"])
        if bot is None:
            return _done("not_here")
        if bot.desired_state != DesiredState.RUNNING:
            return _done("superseded")
        restarted: Future[str] = Future()
        start_again = closes_its_connection(functools.partial(self._start_by_id, bot.pk, reason="restart"))

        def second_half(stopped: Future[str]) -> None:
            try:
                restarted.set_result(start_again())  # its connection closed before anyone hears of it
            except Exception as exc:
                logger.exception("bot %s: the restart's start failed", bot.pk)
                restarted.set_exception(exc)

        self.supervisor.stop(bot.pk).add_done_callback(second_half)
        return restarted

    def bot_kill(self, command: BotCommand) -> Future[str]:
        bot = self._lifecycle_bot(command["bot_id"])
        if bot is None:
            return _done("not_here")
        self._take_over(bot)
        return self.supervisor.stop(bot.pk, kill=True)

    def emergency_stop(self, command: EmergencyStop) -> dict[int, Future[str]]:
        """Every bot named that lives here, all at once: stop entries, force exits if asked, SIGTERM, SIGKILL.

        Reads only columns every row can load, so a bot whose row is broken is still stopped, by id and pid.
        """
        conf = settings.GATEWAY
        stops: dict[int, Future[str]] = {}
        bots = Bot.objects.filter(pk__in=command["bot_ids"]).only(*LIFECYCLE_FIELDS)
        for bot in bots:
            if not self._here(bot):
                continue
            self._take_over(bot)
            steps = functools.partial(self._emergency_steps, bot, command["force_exit"])
            stops[bot.pk] = self.supervisor.stop(bot.pk, before=steps, grace=conf["emergency_grace_seconds"])
        return stops

    @closes_its_connection
    def _emergency_steps(self, bot: Bot, force_exit: bool) -> None:
        """Before terminating: no new entries, then (when asked) exit every open trade. Each step audited.

        One short budget for every call to the bot together: a bot that does not answer is terminated anyway.
        """
        deadline = time.monotonic() + settings.GATEWAY["emergency_api_seconds"]
        with client_for(bot, deadline=deadline) as client:
            # Each step: the call to the bot and the event that audits it (a failure when it has an error).
            steps: list[tuple[Callable[[], Any], Callable[..., Any]]] = [
                (client.stopentry, events.emergency_stop_entries_event)
            ]
            if force_exit:
                steps.append((lambda: client.forceexit("all"), events.emergency_force_exit_all_event))
            for call, audit_event in steps:
                error = ""
                try:
                    call()
                except FreqtradeApiError as exc:
                    error = str(exc)
                audit_event(actor=GATEWAY, bot=bot, error=error)
        # Last look at its trades while it still answers (within the same budget): after termination
        # nobody can read them.
        try:
            self.trades.collect_bot(bot, deadline=deadline)
        except Exception:  # noqa: BLE001 - the stop goes on regardless
            logger.warning("bot %s: final trade collection failed", bot.pk)

    # -- the loop: steps that say what they did --------------------------------------------------
    def tick(self) -> Ticked:
        # The kept reports before the snapshot: what the listeners hear stays in the order it happened.
        children = self.poll_children()
        children.restarted.update(self.start_stopped())
        return Ticked(children=children, reports_sent=self.reports.flush(), heartbeat=self.heartbeat(),
                      trades=self.collect_trades())  # fmt: skip

    def start_stopped(self) -> dict[int, str]:
        """The starts that came while their bot was still stopping, now that its process has gone."""
        running = self.supervisor.running()
        with self._start_after_stop_lock:
            due = [bot_id for bot_id in self._start_after_stop if bot_id not in running]
            self._start_after_stop.difference_update(due)
        return {bot_id: self._start_by_id(bot_id, reason="start after its stop") for bot_id in due}

    def poll_children(self) -> Polled:
        """Exits noticed (and restarts decided), started bots promoted to running, due restarts started."""
        return self.supervisor.poll()

    def heartbeat(self) -> GatewayHeartbeat | None:
        """Every ``snapshot_seconds``: this host's heartbeat, which is the complete snapshot of the bots it
        supervises (status, pid, since, restarts, when each one's API last answered, CPU and memory since
        the last beat); None when not due.

        Its moment is taken before the supervisor is read: a report made meanwhile is newer, and wins.
        """
        if time.monotonic() < self._next_beat:
            return None
        if len(self.reports):
            # Reports wait for the bus: a snapshot sent before them would overrule what they say (an
            # error's cause, say) with a bare "stopped". Soon again, once they are through.
            self._next_beat = time.monotonic() + 0.5
            return None
        self._next_beat = time.monotonic() + settings.GATEWAY["snapshot_seconds"]
        at = time.time()
        lines = self.supervisor.snapshot()
        usage = self.sampler.sample(line.pid for line in lines if line.pid is not None)
        bots = []
        for line in lines:
            sampled = usage.get(line.pid) if line.pid is not None else None
            bots.append(build_bot_beat(
                bot_id=line.bot_id, pid=line.pid, status=line.status, pid_create_time=line.pid_create_time,
                started_at=line.started_at, restart_count=line.restart_count, answered_at=line.answered_at,
                cpu_percent=sampled.cpu_percent if sampled else None, memory_mb=sampled.memory_mb if sampled else None,
                detail=line.detail,
            ))  # fmt: skip
        beat = build_gateway_heartbeat(bots=bots, at=at, host=self.host, capacity=self.capacity())
        try:
            heartbeat_publish(component="gateway", details={"host": self.host, "bots": len(bots)})
        except redis.RedisError as exc:
            logger.warning("gateway heartbeat not stored: %s", type(exc).__name__)
        # Not kept when Redis is away: the next snapshot says the same, newer.
        announce(TRADING_STATUS, type=Report.GATEWAY_HEARTBEAT, payload=beat, producer=PRODUCER)
        return beat

    def capacity(self) -> HostCapacity:
        """This host as its heartbeat registers it: the bots it takes, its memory and cores."""
        memory = psutil.virtual_memory()
        slots = settings.GATEWAY["bot_slots"] or max(1, memory.total // 1024**3)
        return HostCapacity(bot_slots=int(slots), memory_total_mb=memory.total // 1024**2,
                            memory_available_mb=memory.available // 1024**2, cpus=psutil.cpu_count() or 1,
                            gateway_started_at=self.started_at, api_port_first=settings.BOTS["api_port_first"],
                            api_port_last=settings.BOTS["api_port_last"])  # fmt: skip

    def collect_trades(self) -> bool:
        """Start a background round of trade collection when one is due; True if one started."""
        return self.trades.tick(self.supervisor.running())

    # -- after a (re)start -----------------------------------------------------------------------
    def reconcile(self) -> dict[str, list[int]]:
        """After a (re)start: adopt live bot processes, restart bots that should run, kill strays."""
        report: dict[str, list[int]] = {"adopted": [], "restarted": [], "marked": [], "killed": []}
        # Bots that are (or should be) running here, and unplaced bots that should run (claimed first);
        # a stopped or errored bot is left as it is.
        expected = (
            Bot.objects.filter(Q(host=self.host) | Q(host=""))
            .filter(Q(status__in=ACTIVE_STATUSES) | Q(desired_state=DesiredState.RUNNING))
            .only(*LIFECYCLE_FIELDS)
        )
        live = self.bot_processes()
        for bot in expected:
            if not self._claim(bot):
                continue  # another gateway took it meanwhile
            launch = self.launch_for(bot, prepare=False)
            if self._adopt(launch, bot, live.get(launch.marker, [])):
                report["adopted"].append(bot.pk)
                if bot.desired_state != DesiredState.RUNNING:
                    self.supervisor.stop(bot.pk)  # its stop was asked for while no gateway could act
            elif bot.desired_state == DesiredState.RUNNING:
                self._start_by_id(bot.pk, reason="gateway restart: process was gone")
                report["restarted"].append(bot.pk)
            else:
                self._report_status(bot.pk, BotStatus.STOPPED, "process was gone when the gateway restarted")
                report["marked"].append(bot.pk)
        report["killed"] = self.kill_strays()
        logger.info("gateway reconciled: %s", report)
        return report

    def converge(self, *, reason: str) -> dict[str, list[int]]:
        """This host's bots made what the database wants, for commands this host never read: its group was made
        again (Redis lost its data) or its unread commands were trimmed while it was away. What the bots should
        be is in the database; a bot already on its way (a restart due, a start after its stop) is left to it."""
        report: dict[str, list[int]] = {"started": [], "stopped": []}
        running = self.supervisor.running()
        with self._start_after_stop_lock:
            queued = set(self._start_after_stop)
        for bot in Bot.objects.filter(host=self.host).only(*LIFECYCLE_FIELDS):
            child = running.get(bot.pk)
            if bot.desired_state == DesiredState.STOPPED and child is not None and not child.stopping:
                self.supervisor.stop(bot.pk)
                report["stopped"].append(bot.pk)
            elif (bot.desired_state == DesiredState.RUNNING and child is None and bot.pk not in queued
                  and bot.pk not in self.supervisor.pending_restarts and bot.status != BotStatus.ERROR):  # fmt: skip
                self._start_by_id(bot.pk, reason=reason)
                report["started"].append(bot.pk)
        logger.warning("gateway converged with the database (%s): %s", reason, report)
        return report

    def _adopt(self, launch: BotLaunch, bot: Bot, processes: list[psutil.Process]) -> bool:
        """Supervise the bot's live process: the one its row names, else the one running its config.

        The second case is a process started by a gateway that died before its report reached the
        database (a start-all cut short): adopting it, not starting another, keeps one process per bot.
        """
        if bot.pid and self.supervisor.adopt(launch, pid=bot.pid, create_time=bot.pid_create_time):
            return True
        for process in processes:
            try:
                created = process.create_time()
            except psutil.NoSuchProcess:
                continue
            if self.supervisor.adopt(launch, pid=process.pid, create_time=created,
                                     detail="adopted after a gateway restart: found running its config"):  # fmt: skip
                return True
        return False

    @staticmethod
    def bot_processes() -> dict[str, list[psutil.Process]]:
        """This machine's freqtrade processes of ours, by the bot config on their command line (the launch's
        marker): exactly a bot's command line, "<python> -m freqtrade trade --config <bots dir>/<id>/config.json",
        under this gateway's own bots directory (MULTIBOT_BOTS_DIR)."""
        bots_dir = str(settings.BOTS["dir"]) + "/"
        found: dict[str, list[psutil.Process]] = {}
        for process in psutil.process_iter(["pid", "cmdline"]):
            args = process.info["cmdline"] or []
            if args[1:5] == ["-m", "freqtrade", "trade", "--config"] and args[5:6] and args[5].startswith(bots_dir):
                found.setdefault(args[5], []).append(process)
        return found

    def kill_strays(self) -> list[int]:
        """freqtrade processes of ours (their config is under MULTIBOT_BOTS_DIR) that no bot owns now."""
        owned = {child.pid for child in self.supervisor.running().values()}
        killed = []
        for processes in self.bot_processes().values():
            for process in processes:
                if process.pid in owned:
                    continue
                try:
                    os.killpg(os.getpgid(process.pid), signal.SIGKILL)
                    killed.append(process.pid)
                except (ProcessLookupError, PermissionError):
                    pass
        if killed:
            events.bot_strays_killed_event(actor=GATEWAY, pids=killed)
        return killed

    def shutdown(self) -> None:
        if self.stop_bots_on_exit:
            # Each bot its usual grace, all at once (the process manager waits longer than that for us).
            futures = [self.supervisor.stop(bot_id) for bot_id in list(self.supervisor.running())]
            for future in futures:
                future.result(timeout=60)
        self.supervisor.shutdown()
        # The last reports (the bots stopped just now) reach the bus before we go, if it answers at all.
        if not self.reports.drain(timeout=settings.GATEWAY["shutdown_report_seconds"]):
            logger.warning("gateway leaving with %d status report(s) unsent; the next gateway's reconcile "
                           "corrects them", len(self.reports))  # fmt: skip

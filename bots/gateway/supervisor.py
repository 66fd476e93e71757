"""Supervision of freqtrade processes: start, notice exits, restart with backoff, stop, adopt after a restart.

Each bot runs ``freqtrade trade`` in its own process group (so a stop reaches its children too).
A process is identified by pid *and* create time *and* its command line (which names the bot's
own config file), so a pid the kernel reused for something else is never signalled.

Exit rules: a stop we were asked for ends in ``stopped``; exit code 2 (freqtrade's "config or
strategy error") ends in ``error`` with the cause from its log, never restarted; any other exit is
restarted with exponential backoff until the restart budget of the window is spent, then ``error``.

Liveness: a running bot's own API is probed every few seconds off the loop (bots/gateway/liveness.py).
A few misses in a row make it ``unresponsive``, an answer makes it ``running`` again; more misses and
its process group is SIGKILLed (a frozen process cannot act on SIGTERM), and the exit rules restart it
like a crash, within the same budget.

No Django models here: the gateway service feeds it plain values and publishes what it reports
(``BotStatusReport``s of bots/commands.py). ``poll`` is one step of the gateway's loop and returns
what it found and did.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bots.commands import ACTIVE_STATUSES, BotStatus, BotStatusReport, build_bot_status
from bots.gateway.liveness import Answer, Liveness, Prober
from bots.logfile import tail_lines

logger = logging.getLogger(__name__)

EXIT_CONFIG_ERROR = 2


@dataclass
class BotLaunch:
    """What the supervisor needs to run one bot."""

    bot_id: int
    command: list[str]
    workdir: Path
    log: Path
    api_port: int
    # The bot's own API credentials, for the liveness probe's /health (never in a repr, never logged).
    api_auth: tuple[str, str] | None = field(default=None, repr=False)

    @property
    def marker(self) -> str:
        """The bot's own config path: on its command line, and on no other bot's."""
        return self.command[self.command.index("--config") + 1]


@dataclass
class Child:
    launch: BotLaunch
    process: psutil.Process
    popen: subprocess.Popen[bytes] | None  # None when adopted after a gateway restart
    started_at: float
    status: BotStatus = BotStatus.STARTING
    stopping: bool = False
    restarts: list[float] = field(default_factory=list)
    # When the bot's own API last answered us (the promotion's ping, then the liveness probes).
    answered_at: float | None = None
    # Liveness: the probe in flight, when the last one started (monotonic), the misses in a row, and
    # for how long it had not answered when it was killed as hung (None: it was not).
    probe: Future[Answer] | None = field(default=None, repr=False)
    probed_at: float = 0.0
    misses: int = 0
    hung_for: float | None = None
    # Since when we watch it: an adopted bot has not answered *us* before.
    watched_at: float = field(default_factory=time.time)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def create_time(self) -> float:
        return self.process.create_time()


Publish = Callable[[BotStatusReport], None]


@dataclass(frozen=True)
class Supervised:
    """One bot as the supervisor holds it at one moment: a line of the gateway's snapshot."""

    bot_id: int
    status: BotStatus
    pid: int | None  # None: waiting out its restart backoff
    pid_create_time: float | None
    started_at: float | None
    restart_count: int
    answered_at: float | None
    detail: str = ""  # only for a bot that ended lately: its last words


# A bot that ended (stopped, or in error) stays in the snapshot this long, with its final words: a
# snapshot that overtook that final report in transit says the same, not a bare "stopped".
ENDED_SECONDS = 60.0


@dataclass
class Polled:
    """What one look at the children found and did."""

    exited: dict[int, int | None] = field(default_factory=dict)  # bot id -> exit code (None: not ours to reap)
    failed: list[int] = field(default_factory=list)  # ended in error: not restarted
    restarting: dict[int, float] = field(default_factory=dict)  # bot id -> seconds until its restart
    promoted: list[int] = field(default_factory=list)  # their API answered: running
    restarted: dict[int, str] = field(default_factory=dict)  # due restarts, and how their start went
    answered: list[int] = field(default_factory=list)  # their liveness probe answered
    missed: dict[int, int] = field(default_factory=dict)  # a probe had no answer: bot id -> misses in a row
    unresponsive: list[int] = field(default_factory=list)  # enough misses: running -> unresponsive
    recovered: list[int] = field(default_factory=list)  # answered again: unresponsive -> running
    hung_killed: list[int] = field(default_factory=list)  # so many misses: killed, to be restarted

    def __bool__(self) -> bool:
        return bool(self.exited or self.promoted or self.restarted or self.unresponsive or self.recovered
                    or self.hung_killed)  # fmt: skip


def error_cause(log: Path, limit: int = 2000) -> str:
    """The lines of freqtrade's log that say why it gave up (its ERROR / Exception lines)."""
    lines = tail_lines(log, max_bytes=64 * 1024)
    if lines is None:
        return "freqtrade gave up (configuration or strategy error); no log was written"
    causes = [line for line in lines if " - ERROR - " in line or "Error" in line or "Exception" in line]
    text = "\n".join(causes[-5:] or lines[-5:])
    return text[-limit:] or "freqtrade exited with code 2 (configuration or strategy error)"


def is_our_process(process: psutil.Process, *, create_time: float | None, marker: str) -> bool:
    """The same process we started: same create time, and our bot's config on its command line."""
    try:
        if create_time is not None and abs(process.create_time() - create_time) > 0.01:
            return False
        return marker in " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


class Supervisor:
    def __init__(
        self,
        *,
        publish: Publish,
        host: str = "",
        grace_seconds: float = 10.0,
        restart_budget: int = 5,
        restart_window: float = 600.0,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        liveness: Liveness | None = None,
    ) -> None:
        self.publish, self.host = publish, host
        self.grace_seconds = grace_seconds
        self.restart_budget, self.restart_window = restart_budget, restart_window
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.children: dict[int, Child] = {}
        self.pending_restarts: dict[int, tuple[float, BotLaunch, list[float]]] = {}
        # bot id -> the final report of a bot that ended lately, and when (monotonic): see ENDED_SECONDS.
        self.ended: dict[int, tuple[BotStatusReport, float]] = {}
        self._lock = threading.RLock()
        # Stops wait out a grace period each: run them side by side, never in the command loop.
        self._stoppers = ThreadPoolExecutor(max_workers=32, thread_name_prefix="bot-stop")
        self.liveness = liveness or Liveness()
        self._prober = Prober(self.liveness)

    # -- reporting -------------------------------------------------------------------------------
    def _report(
        self, bot_id: int, status: BotStatus, *, restart_count: int = 0, at: float | None = None, **details: Any
    ) -> None:
        """Publish the bot's status; ``at`` (default now) is when it was so."""
        child = self.children.get(bot_id)
        alive = child is not None and status in ACTIVE_STATUSES
        report = build_bot_status(
            bot_id=bot_id, status=status, at=time.time() if at is None else at, host=self.host,
            pid=child.pid if alive else None, pid_create_time=child.create_time if alive else None,
            started_at=child.started_at if child else None,
            restart_count=len(child.restarts) if child else restart_count, **details,
        )  # fmt: skip
        with self._lock:
            if status in ACTIVE_STATUSES:
                self.ended.pop(bot_id, None)
            else:
                self.ended[bot_id] = (report, time.monotonic())
        self.publish(report)

    # -- starting --------------------------------------------------------------------------------
    def start(self, launch: BotLaunch, *, restarts: list[float] | None = None) -> str:
        with self._lock:
            child = self.children.get(launch.bot_id)
            if child is not None and child.process.is_running():
                # Never a second process for one bot: a stopping one still holds its port and database.
                return "still_stopping" if child.stopping else "already_running"
            self.pending_restarts.pop(launch.bot_id, None)
            launch.log.parent.mkdir(parents=True, exist_ok=True)
            with open(launch.log, "ab") as output:
                popen = subprocess.Popen(
                    launch.command, cwd=launch.workdir, stdout=output, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,  # its own process group
                )  # fmt: skip
            child = Child(launch=launch, process=psutil.Process(popen.pid), popen=popen, started_at=time.time(),
                          restarts=list(restarts or []))  # fmt: skip
            self.children[launch.bot_id] = child
        logger.info("bot %s started, pid %s", launch.bot_id, popen.pid)
        self._report(launch.bot_id, BotStatus.STARTING)
        return "started"

    def adopt(
        self,
        launch: BotLaunch,
        *,
        pid: int,
        create_time: float | None,
        detail: str = "adopted after a gateway restart",
        probe: bool = True,
    ) -> bool:
        """Take over a bot process that outlived the previous gateway, if it really is that bot.

        ``probe``: ask its API whether it is running yet; without, it is taken as running (to be stopped now).
        """
        try:
            process = psutil.Process(pid)
        except psutil.NoSuchProcess:
            return False
        if not is_our_process(process, create_time=create_time, marker=launch.marker):
            return False
        # One that was still starting when its gateway died is promoted by the next poll, like any start.
        answers = not probe or self._api_answers(launch.api_port)
        status = BotStatus.RUNNING if answers else BotStatus.STARTING
        with self._lock:
            self.children[launch.bot_id] = Child(
                launch=launch,
                process=process,
                popen=None,
                started_at=process.create_time(),
                status=status,
                answered_at=time.time() if answers else None,
            )
        self._report(launch.bot_id, status, detail=detail)
        return True

    # -- watching --------------------------------------------------------------------------------
    def poll(self) -> Polled:
        """Notice exits, promote started bots whose API answers to running, judge and start liveness probes,
        start due restarts."""
        polled, now = Polled(), time.time()
        for bot_id, child in list(self.children.items()):
            code = self._exit_code(child)
            if code is not None or not child.process.is_running():
                self._on_exit(bot_id, child, code, polled)
            elif child.status == BotStatus.STARTING and not child.stopping and self._api_answers(child.launch.api_port):
                child.status, child.answered_at, child.probed_at = BotStatus.RUNNING, time.time(), time.monotonic()
                polled.promoted.append(bot_id)
                self._report(bot_id, BotStatus.RUNNING)
            else:
                self._watch_liveness(bot_id, child, polled)
        for due, launch, restarts in list(self.pending_restarts.values()):
            if due <= now:
                polled.restarted[launch.bot_id] = self.start(launch, restarts=restarts)
        return polled

    @staticmethod
    def _exit_code(child: Child) -> int | None:
        if child.popen is not None:
            return child.popen.poll()  # also reaps it
        try:
            if child.process.status() == psutil.STATUS_ZOMBIE:
                return -1
        except psutil.NoSuchProcess:
            return -1
        return None

    @staticmethod
    def _api_answers(port: int) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/api/v1/ping", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    # -- liveness --------------------------------------------------------------------------------
    def _watch_liveness(self, bot_id: int, child: Child, polled: Polled) -> None:
        """Judge the child's finished probe, and start its next one when due (one at a time, never blocking).

        Only bots that are up: a starting one is promoted by its first answer, a stopping one is the
        user's to end, a killed one is about to exit.
        """
        if child.stopping or child.hung_for is not None:
            return
        if child.status not in (BotStatus.RUNNING, BotStatus.UNRESPONSIVE):
            return
        if child.probe is not None:
            if not child.probe.done():
                return
            probe, child.probe = child.probe, None
            try:
                answer = probe.result()
            except Exception as exc:  # noqa: BLE001 - a probe that broke has no answer either
                answer = Answer(answered=False, at=time.time(), why=f"probe failed: {type(exc).__name__}")
            self._judge(bot_id, child, answer, polled)
        if child.hung_for is None and time.monotonic() - child.probed_at >= self.liveness.interval:
            child.probed_at = time.monotonic()
            child.probe = self._prober.submit(child.launch.api_port, child.launch.api_auth)

    def _judge(self, bot_id: int, child: Child, answer: Answer, polled: Polled) -> None:
        silent = answer.at - (child.answered_at or child.watched_at)
        if answer.answered:
            child.answered_at, child.misses = answer.at, 0
            polled.answered.append(bot_id)
            if child.status == BotStatus.UNRESPONSIVE:
                child.status = BotStatus.RUNNING
                polled.recovered.append(bot_id)
                logger.warning("bot %s answers again after %.0fs", bot_id, silent)
                self._report(bot_id, BotStatus.RUNNING, detail=f"answers again after {silent:.0f}s")
            return
        child.misses += 1
        polled.missed[bot_id] = child.misses
        if child.misses >= self.liveness.restart_after:
            self._kill_hung(bot_id, child, silent, polled)
        elif child.misses >= self.liveness.unresponsive_after and child.status == BotStatus.RUNNING:
            child.status = BotStatus.UNRESPONSIVE
            polled.unresponsive.append(bot_id)
            logger.warning("bot %s: its API has not answered for %.0fs (%s)", bot_id, silent, answer.why)
            self._report(bot_id, BotStatus.UNRESPONSIVE,
                         detail=f"its API has not answered for {silent:.0f}s ({answer.why})")  # fmt: skip

    def _kill_hung(self, bot_id: int, child: Child, silent: float, polled: Polled) -> None:
        """SIGKILL its process group (SIGTERM waits for a frozen process to thaw); its exit restarts it."""
        with self._lock:
            if child.stopping or self.children.get(bot_id) is not child:
                return  # the user's stop came first: it ends the process
            child.status, child.hung_for = BotStatus.UNRESPONSIVE, silent
        group = self._our_group(child)
        if group is not None:
            os.killpg(group, signal.SIGKILL)
        polled.hung_killed.append(bot_id)
        logger.warning("bot %s hung for %.0fs: killed to be restarted", bot_id, silent)
        self._report(bot_id, BotStatus.UNRESPONSIVE, detail=f"hung for {silent:.0f}s: killed to be restarted")

    @staticmethod
    def _our_group(child: Child) -> int | None:
        """The child's process group, if its pid still is our process (a fresh look: never a reused pid)."""
        try:
            group = os.getpgid(child.pid)
            current = psutil.Process(child.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            return None
        return group if is_our_process(current, create_time=child.create_time, marker=child.launch.marker) else None

    def _on_exit(self, bot_id: int, child: Child, code: int | None, polled: Polled) -> None:
        with self._lock:
            if self.children.get(bot_id) is not child:
                return
            del self.children[bot_id]
        polled.exited[bot_id] = code if child.popen is not None else None
        if child.stopping:
            return  # the stopper reports the outcome
        # Exit 2 is freqtrade's "configuration or strategy error"; it exits 0 on a configuration
        # error too. Neither gets better by restarting.
        if code in (EXIT_CONFIG_ERROR, 0):
            logger.warning("bot %s exited with code %s by itself: not restarted", bot_id, code)
            polled.failed.append(bot_id)
            self._report(bot_id, BotStatus.ERROR, exit_code=code, detail=error_cause(child.launch.log),
                         restart_count=len(child.restarts))  # fmt: skip
            return
        now = time.time()
        recent = [moment for moment in child.restarts if now - moment < self.restart_window]
        # A hang we killed counts like a crash, and says so.
        ended = f"exited with code {code}" if child.hung_for is None else f"hung for {child.hung_for:.0f}s: killed"
        if len(recent) >= self.restart_budget:
            polled.failed.append(bot_id)
            self._report(bot_id, BotStatus.ERROR, exit_code=code, restart_count=len(recent),
                         detail=f"{ended}; ended {len(recent) + 1} times within "
                                f"{self.restart_window:.0f}s; restart budget spent")  # fmt: skip
            return
        delay = min(self.backoff_max, self.backoff_base * 2 ** len(recent))
        self.pending_restarts[bot_id] = (now + delay, child.launch, [*recent, now])
        polled.restarting[bot_id] = delay
        logger.warning("bot %s %s; restarting in %.0fs", bot_id, ended, delay)
        self._report(bot_id, BotStatus.STARTING, exit_code=code, restart_count=len(recent) + 1,
                     detail=f"{ended}; restarting in {delay:.0f}s")  # fmt: skip

    # -- stopping --------------------------------------------------------------------------------
    def stop(
        self, bot_id: int, *, kill: bool = False, before: Callable[[], None] | None = None, grace: float | None = None
    ) -> Future[str]:
        """Stop in the background: ``before`` (e.g. stop entries), SIGTERM the group, grace, SIGKILL, reap."""
        self.pending_restarts.pop(bot_id, None)
        with self._lock:
            child = self.children.get(bot_id)
            if child is not None:
                child.stopping = True
        if child is None:
            done: Future[str] = Future()
            done.set_result("not_running")
            self._report(bot_id, BotStatus.STOPPED, detail="was not running")
            return done
        # The stop first, its report after: a frozen Redis may hold up the report, never the stop. The
        # report keeps the moment before the stop began, so the stopper's "stopped" is always newer.
        at = time.time()
        stopping = self._stoppers.submit(self._stop, bot_id, child, kill, before, grace)
        self._report(bot_id, BotStatus.STOPPING, at=at)
        return stopping

    def _stop(
        self, bot_id: int, child: Child, kill: bool, before: Callable[[], None] | None, grace: float | None
    ) -> str:
        if before is not None and not kill:
            try:
                before()
            except Exception:
                logger.warning("bot %s: pre-stop step failed", bot_id, exc_info=True)
        outcome = "killed" if kill else "terminated"
        try:
            group = os.getpgid(child.pid)
        except ProcessLookupError:
            group = None
        try:
            # A fresh look at the pid: the cached process object would only agree with itself.
            current = psutil.Process(child.pid)
            ours = is_our_process(current, create_time=child.create_time, marker=child.launch.marker)
        except psutil.NoSuchProcess:
            ours = False
        if group is not None and ours:
            os.killpg(group, signal.SIGKILL if kill else signal.SIGTERM)
            if not kill:
                os.killpg(group, signal.SIGCONT)  # a frozen bot acts on its SIGTERM only once it runs again
            if not kill and not self._wait(child, self.grace_seconds if grace is None else grace):
                os.killpg(group, signal.SIGKILL)
                outcome = "killed_after_grace"
            self._wait(child, 10)
        with self._lock:
            if self.children.get(bot_id) is child:
                del self.children[bot_id]
        self._report(bot_id, BotStatus.STOPPED, detail=f"stopped ({outcome})", outcome=outcome)
        return outcome

    @staticmethod
    def _wait(child: Child, seconds: float) -> bool:
        if child.popen is not None:
            try:
                child.popen.wait(seconds)
                return True
            except subprocess.TimeoutExpired:
                return False
        try:
            child.process.wait(seconds)
            return True
        except psutil.TimeoutExpired:
            return False
        except psutil.NoSuchProcess:
            return True

    def running(self) -> dict[int, Child]:
        with self._lock:
            return dict(self.children)

    def snapshot(self) -> list[Supervised]:
        """Every bot supervised now, by id: its processes (a stopping one says so), its pending restarts, and
        the bots that ended within ENDED_SECONDS (stopped or in error, with their final words)."""
        with self._lock:
            lines = [
                Supervised(bot_id=bot_id, status=BotStatus.STOPPING if child.stopping else child.status,
                           pid=child.pid, pid_create_time=child.create_time, started_at=child.started_at,
                           restart_count=len(child.restarts), answered_at=child.answered_at)
                for bot_id, child in self.children.items()
            ]  # fmt: skip
            lines += [
                Supervised(bot_id=launch.bot_id, status=BotStatus.STARTING, pid=None, pid_create_time=None,
                           started_at=None, restart_count=len(restarts), answered_at=None)
                for _, launch, restarts in self.pending_restarts.values()
                if launch.bot_id not in self.children
            ]  # fmt: skip
            now, listed = time.monotonic(), {line.bot_id for line in lines}
            for bot_id, (report, ended_at) in list(self.ended.items()):
                if now - ended_at > ENDED_SECONDS:
                    del self.ended[bot_id]
                elif bot_id not in listed:
                    lines.append(Supervised(bot_id=bot_id, status=report["status"], pid=None, pid_create_time=None,
                                            started_at=None, restart_count=report["restart_count"],
                                            answered_at=None, detail=report["detail"]))  # fmt: skip
        return sorted(lines, key=lambda line: line.bot_id)

    def shutdown(self) -> None:
        """The gateway is leaving: bots keep running (the next gateway adopts them)."""
        self._stoppers.shutdown(wait=True)
        self._prober.shutdown()

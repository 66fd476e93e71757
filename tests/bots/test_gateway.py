"""The trading gateway: its steps driven one by one with tiny real children, then end to end with real bots.

The step tests build a ``Gateway`` whose bots are tiny python programs (tests/support/children.py)
and call its command handlers and loop steps directly. The end-to-end test runs real freqtrade bots
on the replay exchange against one gateway and one listeners process (the gateway is killed and
replaced in between), like an operator's afternoon.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil
import pytest
from django.conf import settings
from django.db import connection

from audit.models import AuditLog
from bots import listeners
from bots.commands import (
    BotStatus,
    Command,
    DesiredState,
    Report,
    build_bot_command,
    build_emergency_stop,
    read_bot_status,
    read_gateway_heartbeat,
)
from bots.gateway.service import HOST, CommandLine, Gateway
from bots.gateway.supervisor import Polled
from bots.handlers import gateway_registry
from bots.models import Bot
from bots.services import bot_status_apply
from bots.workspace import Workspace, workspace_for
from multibot.redis_client import redis_client
from strategies.library import install_builtin_strategies, library_dir
from streams.bus import Envelope, stream_key
from streams.catalog import TRADING_COMMANDS, TRADING_STATUS
from tests.factories import break_row, client_for, make_bot, make_user
from tests.support import children
from tests.support.freqtrade import ALWAYS_IN
from tests.support.market import store_history
from tests.support.processes import ROOT, database_url, server_env, wait_for
from tests.support.replay import answers, replay_exchange

# Transactional: the gateway's helper threads (stoppers) read and write through their own connections.
pytestmark = pytest.mark.django_db(transaction=True)

BROKEN = """
from freqtrade.strategy import IStrategy
import a_module_that_is_not_installed  # noqa: F401


class BrokenStrategy(IStrategy):
    timeframe = "1m"
"""


# -- the steps, with tiny children in place of freqtrade --------------------------------------------
def tiny(program: str) -> CommandLine:
    return lambda space: children.command(program, space.config)


def fake_freqtrade_bot(space: Workspace) -> list[str]:
    """A bot whose command line is exactly freqtrade's (``python -m freqtrade trade --config ...``), asleep."""
    children.fake_freqtrade(space.root)  # the bot runs in its directory: this package comes first
    return [sys.executable, "-m", "freqtrade", "trade", "--config", str(space.config)]


@pytest.fixture
def gateways(committed_db: None) -> Iterator[Callable[..., Gateway]]:
    install_builtin_strategies()
    made: list[Gateway] = []

    def make(command_line: CommandLine | None = None) -> Gateway:
        made.append(Gateway(command_line=command_line or tiny(children.SLEEP)))
        return made[-1]

    yield make
    for gateway in made:
        for child in gateway.supervisor.running().values():
            children.kill_group(child.pid)
        gateway.supervisor.shutdown()


def wanted(owner: Any, **fields: Any) -> Bot:
    """A bot its owner asked to run (the API recorded it; the command is what the test sends)."""
    bot = make_bot(owner=owner, **fields)
    Bot.objects.filter(pk=bot.pk).update(desired_state=DesiredState.RUNNING)
    bot.refresh_from_db()
    return bot


def handle(gateway: Gateway, kind: Command, payload: Mapping[str, Any]) -> None:
    """Deliver one command the way the stream worker does: to the handler registered for its kind."""
    registration = gateway_registry(gateway).handler_for(TRADING_COMMANDS, kind)
    assert registration is not None
    registration.func(Envelope(type=kind, payload=dict(payload)))


def published(kind: Report) -> list[dict[str, Any]]:
    entries = redis_client().xrange(stream_key(TRADING_STATUS))
    return [json.loads(fields["payload"]) for _, fields in entries if fields["type"] == kind]


def apply_status_reports() -> None:
    for payload in published(Report.BOT_STATUS):
        bot_status_apply(report=read_bot_status(payload))


def poll_until(gateway: Gateway, done: Callable[[Polled], bool], timeout: float = 15.0) -> Polled:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        polled = gateway.poll_children()
        if done(polled):
            return polled
        time.sleep(0.02)
    raise AssertionError(f"no poll came to it in {timeout:.0f}s")


def open_connections() -> int:
    """Connections to the test database open in this process (PostgreSQL: its backends)."""
    if connection.vendor == "sqlite":
        # Each SQLite connection holds the write-ahead log open (the database file itself may stay
        # open after a close, while another connection of the process holds its lock).
        wal = str(connection.settings_dict["NAME"]) + "-wal"
        return sum(1 for fd in Path("/proc/self/fd").iterdir() if os.path.realpath(fd) == wal)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def test_every_command_kind_has_its_own_handler_bound_to_the_gateway(gateways):
    registry = gateway_registry(gateways())

    handlers = {registration.type: registration.func for registration in registry}
    assert sorted(handlers) == sorted(Command) and len(set(handlers.values())) == len(Command)
    assert all(registration.stream == TRADING_COMMANDS and not registration.atomic for registration in registry)


def test_a_kill_command_sigkills_the_bot_without_its_grace(gateways, user):
    gateway = gateways(tiny(children.IGNORE_SIGTERM))
    bot = wanted(user)
    gateway.bot_start(build_bot_command(bot_id=bot.pk))
    pid = gateway.supervisor.running()[bot.pk].pid

    started = time.monotonic()
    assert gateway.bot_kill(build_bot_command(bot_id=bot.pk)).result(timeout=15) == "killed"

    assert time.monotonic() - started < 2 and not children.alive(pid)


def test_a_start_command_launches_the_bot_and_a_poll_reports_exit_code_2_as_error(gateways, user):
    # given: a bot whose "freqtrade" cannot load its strategy
    gateway = gateways(tiny(children.EXIT_2))
    bot = wanted(user)

    # when: the start command arrives, and the loop polls
    handle(gateway, Command.START, build_bot_command(bot_id=bot.pk, requested_by=user.username))
    polled = poll_until(gateway, lambda polled: bool(polled.exited))

    # then: reported as error with freqtrade's words, never restarted, and the database follows
    assert (polled.exited, polled.failed) == ({bot.pk: 2}, [bot.pk])
    apply_status_reports()
    bot.refresh_from_db()
    assert (bot.status, bot.desired_state, bot.pid) == (BotStatus.ERROR, DesiredState.STOPPED, None)
    assert "Impossible to load Strategy" in bot.status_detail
    assert AuditLog.objects.filter(action="bot_start", resource=f"bot:{bot.pk}", username="gateway").count() == 1
    assert gateway.supervisor.pending_restarts == {}


def test_a_start_that_a_later_stop_superseded_or_for_another_host_starts_nothing(gateways, user):
    gateway = gateways()
    stopped = make_bot(owner=user)  # its owner asked for a stop after the start was sent
    elsewhere = wanted(user)
    Bot.objects.filter(pk=elsewhere.pk).update(host="another-host")

    assert gateway.bot_start(build_bot_command(bot_id=stopped.pk)) == "superseded"
    assert gateway.bot_start(build_bot_command(bot_id=elsewhere.pk)) == "another_host"
    assert gateway.bot_start(build_bot_command(bot_id=999_999)) == "no_such_bot"
    assert gateway.supervisor.running() == {}


def test_a_start_of_a_bot_whose_row_cannot_be_loaded_reports_an_error_instead_of_failing(gateways, user):
    gateway = gateways()
    bot = wanted(user)
    break_row(bot)

    assert gateway.bot_start(build_bot_command(bot_id=bot.pk)) == "unreadable"

    [report] = [read_bot_status(payload) for payload in published(Report.BOT_STATUS)]
    assert report["status"] == BotStatus.ERROR and "cannot be read" in report["detail"]
    assert gateway.supervisor.running() == {}


def test_the_heartbeat_step_names_the_supervised_bots_once_per_period(gateways, user):
    # given
    gateway = gateways()
    bot = wanted(user)
    assert gateway.bot_start(build_bot_command(bot_id=bot.pk)) == "started"

    # when
    beat = gateway.heartbeat()
    ticked = gateway.tick()

    # then: one beat naming the bot, none again before its period; the listeners apply it
    assert beat is not None and [(b["bot_id"], b["status"]) for b in beat["bots"]] == [(bot.pk, BotStatus.STARTING)]
    assert ticked.heartbeat is None and ticked.trades is False  # a starting bot has no trades to collect yet
    [sent] = published(Report.GATEWAY_HEARTBEAT)
    assert read_gateway_heartbeat(sent) == beat
    registration = listeners.registry.handler_for(TRADING_STATUS, Report.GATEWAY_HEARTBEAT)
    registration.func(Envelope(type=Report.GATEWAY_HEARTBEAT, payload=sent))
    bot.refresh_from_db()
    assert bot.gateway_seen_at is not None


def test_a_restart_starts_the_bot_again_from_a_stopper_thread_that_closes_its_connection(gateways, user):
    # given: a running bot, and the connections this process holds
    gateway = gateways()
    bot = wanted(user)
    gateway.bot_start(build_bot_command(bot_id=bot.pk))
    old_pid = gateway.supervisor.running()[bot.pk].pid
    before = open_connections()

    # when
    outcome = gateway.bot_restart(build_bot_command(bot_id=bot.pk)).result(timeout=30)

    # then: a new process, the old one gone, and the stopper thread's connection closed
    assert outcome == "started"
    assert gateway.supervisor.running()[bot.pk].pid != old_pid and not children.alive(old_pid)
    assert AuditLog.objects.filter(action="bot_start", details__reason="restart").count() == 1  # it used the database
    assert open_connections() == before


def test_a_start_that_comes_while_the_bot_is_still_stopping_runs_once_the_old_process_is_gone(gateways, user, settings):
    # given: a bot whose process ignores SIGTERM, being stopped (its grace then SIGKILL)
    settings.GATEWAY = {**settings.GATEWAY, "grace_seconds": 1}
    gateway = gateways(tiny(children.IGNORE_SIGTERM))
    bot = wanted(user)
    gateway.bot_start(build_bot_command(bot_id=bot.pk))
    old_pid = gateway.supervisor.running()[bot.pk].pid
    log = gateway.supervisor.running()[bot.pk].launch.log
    wait_for(lambda: log.exists() and "ready" in log.read_text(), 10, "its SIGTERM handler to be in place")
    Bot.objects.filter(pk=bot.pk).update(desired_state=DesiredState.STOPPED)
    stopping = gateway.bot_stop(build_bot_command(bot_id=bot.pk))

    # when: its owner starts it again before the stop has ended
    Bot.objects.filter(pk=bot.pk).update(desired_state=DesiredState.RUNNING)
    assert gateway.bot_start(build_bot_command(bot_id=bot.pk)) == "still_stopping"
    early = gateway.start_stopped()
    stopping.result(timeout=30)
    late = gateway.start_stopped()

    # then: not while the old process lived; once it had gone, one new process
    assert early == {} and late == {bot.pk: "started"}
    assert not children.alive(old_pid) and gateway.supervisor.running()[bot.pk].pid != old_pid
    assert gateway.start_stopped() == {}  # asked once, started once


def test_an_emergency_stop_stops_every_bot_at_once_even_one_whose_row_cannot_be_loaded(gateways, user):
    # given: three running bots (whose API does not answer), one of them with a broken row
    gateway = gateways()
    bots = [wanted(user) for _ in range(3)]
    for bot in bots:
        gateway.bot_start(build_bot_command(bot_id=bot.pk))
    pids = [child.pid for child in gateway.supervisor.running().values()]
    break_row(bots[1])

    # when
    started = time.monotonic()
    stops = gateway.emergency_stop(build_emergency_stop(bot_ids=[bot.pk for bot in bots], force_exit=True))
    outcomes = {bot_id: stop.result(timeout=15) for bot_id, stop in stops.items()}

    # then: all stopped within the emergency budget, each step audited (failed: nobody answered)
    assert outcomes == {bot.pk: "terminated" for bot in bots}
    assert time.monotonic() - started < 5
    assert not any(children.alive(pid) for pid in pids)
    steps = AuditLog.objects.filter(action__startswith="emergency_").values_list("resource", "action", "status")
    assert sorted(steps) == sorted((f"bot:{bot.pk}", action, AuditLog.Status.FAILURE) for bot in bots
                                   for action in ("emergency_stop_entries", "emergency_force_exit_all"))  # fmt: skip
    apply_status_reports()
    assert set(Bot.objects.filter(pk__in=[b.pk for b in bots]).values_list("status", flat=True)) == {BotStatus.STOPPED}


def test_an_emergency_stop_reaches_by_pid_a_bot_process_this_gateway_did_not_start(gateways, user):
    # given: a bot process left by a previous gateway, recorded in a row that cannot be loaded
    bot = wanted(user)
    process = children.spawn(children.command(children.SLEEP, workspace_for(bot.pk).config))
    Bot.objects.filter(pk=bot.pk).update(status=BotStatus.RUNNING, pid=process.pid,
                                         pid_create_time=psutil.Process(process.pid).create_time())  # fmt: skip
    break_row(bot)
    gateway = gateways()

    # when
    stops = gateway.emergency_stop(build_emergency_stop(bot_ids=[bot.pk], force_exit=False))

    # then
    assert stops[bot.pk].result(timeout=15) == "terminated"
    assert not children.alive(process.pid)


@pytest.fixture
def leftovers() -> Iterator[list[subprocess.Popen[bytes]]]:
    spawned: list[subprocess.Popen[bytes]] = []
    yield spawned
    for process in spawned:
        children.kill_group(process.pid)
        process.wait(10)


def test_reconcile_adopts_its_own_process_and_never_a_reused_pid(gateways, user, leftovers):
    # given: three bots a previous gateway of this host ran
    own, reused, recreated = wanted(user), make_bot(owner=user), wanted(user)
    processes = {
        # the very process recorded: adopted
        own.pk: children.command(children.SLEEP, workspace_for(own.pk).config),
        # the recorded pid now runs something else: left alone, the bot marked stopped
        reused.pk: children.command(children.SLEEP, Path("/elsewhere/config.json")),
        # the bot's command line, but another process than the one recorded (another create time)
        recreated.pk: children.command(children.SLEEP, workspace_for(recreated.pk).config),
    }
    for bot_id, args in processes.items():
        leftovers.append(children.spawn(args))
        created = psutil.Process(leftovers[-1].pid).create_time() - (30 if bot_id == recreated.pk else 0)
        Bot.objects.filter(pk=bot_id).update(status=BotStatus.RUNNING, pid=leftovers[-1].pid, host=HOST,
                                             pid_create_time=created)  # fmt: skip
    gateway = gateways()

    # when
    report = gateway.reconcile()

    # then
    assert report == {"adopted": [own.pk], "restarted": [recreated.pk], "marked": [reused.pk], "killed": []}
    running = gateway.supervisor.running()
    assert running[own.pk].pid == leftovers[0].pid and running[recreated.pk].pid != leftovers[2].pid
    assert all(children.alive(process.pid) for process in leftovers)  # no foreign pid was signalled
    apply_status_reports()
    reused.refresh_from_db()
    assert reused.status == BotStatus.STOPPED and "process was gone" in reused.status_detail


def test_stray_killing_kills_a_bot_command_line_that_no_bot_owns_and_nothing_else(gateways, user, leftovers,
                                                                                  tmp_path):  # fmt: skip
    # given: an owned bot, a stray with a bot's command line, the same command outside the bots directory
    fake = children.fake_freqtrade(tmp_path / "fake")
    gateway = gateways(fake_freqtrade_bot)
    owned = wanted(user)
    gateway.bot_start(build_bot_command(bot_id=owned.pk))
    owned_pid = gateway.supervisor.running()[owned.pk].pid
    wait_for(lambda: psutil.Process(owned_pid).cmdline()[1:3] == ["-m", "freqtrade"], 10, "the owned bot to run")
    bots_dir = Path(settings.HOME) / "bots"
    stray_args = [sys.executable, "-m", "freqtrade", "trade", "--config", str(bots_dir / "999999" / "config.json")]
    leftovers.append(stray := children.spawn(stray_args, cwd=fake))
    outside_args = [*stray_args[:5], str(tmp_path / "config.json")]
    leftovers.append(outside := children.spawn(outside_args, cwd=fake))

    # when
    killed = gateway.kill_strays()

    # then
    assert killed == [stray.pid]
    stray.wait(10)
    assert children.alive(outside.pid) and children.alive(owned_pid)
    audit = AuditLog.objects.get(action="bot_stray_kill")
    assert audit.details == {"pids": [stray.pid]}


# -- end to end, with real freqtrade bots ------------------------------------------------------------


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


@pytest.mark.slow
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


def test_converging_makes_this_hosts_bots_what_the_database_wants_and_leaves_other_hosts_alone(gateways, user):
    # given: on this host, a bot that should run but has no process (its start was never read), and a
    # running bot that should be stopped (its stop was never read); on beta, a bot that should run
    gateway = gateways()
    missed_start, missed_stop, elsewhere = wanted(user), wanted(user), wanted(user)
    Bot.objects.filter(pk__in=[missed_start.pk, missed_stop.pk]).update(host=HOST)
    Bot.objects.filter(pk=elsewhere.pk).update(host="beta")
    handle(gateway, Command.START, build_bot_command(bot_id=missed_stop.pk))
    poll_until(gateway, lambda _: missed_stop.pk in gateway.supervisor.running())
    Bot.objects.filter(pk=missed_stop.pk).update(desired_state=DesiredState.STOPPED)

    # when
    report = gateway.converge(reason="test")

    # then
    assert report == {"started": [missed_start.pk], "stopped": [missed_stop.pk]}
    poll_until(gateway, lambda _: missed_stop.pk not in gateway.supervisor.running())
    assert set(gateway.supervisor.running()) == {missed_start.pk}
    assert elsewhere.pk not in gateway.supervisor.running()
    # and once true, converging again changes nothing
    assert gateway.converge(reason="test") == {"started": [], "stopped": []}


def test_an_unplaced_row_whose_process_runs_on_another_machine_is_not_claimed(gateways, user):
    bot = wanted(user)
    Bot.objects.filter(pk=bot.pk).update(status=BotStatus.RUNNING, pid=1, pid_create_time=1.0)  # not ours here
    gateway = gateways()

    assert gateway.bot_start(build_bot_command(bot_id=bot.pk)) == "another_host"
    assert Bot.objects.values_list("host", flat=True).get(pk=bot.pk) == ""
    assert gateway.supervisor.running() == {}


def test_a_restart_of_an_unplaced_stopped_bot_starts_it_on_the_host_that_claims_it(gateways, user):
    bot = wanted(user)
    gateway = gateways()

    outcome = gateway.bot_restart(build_bot_command(bot_id=bot.pk)).result(timeout=10)

    assert outcome == "started"
    assert Bot.objects.values_list("host", flat=True).get(pk=bot.pk) == HOST
    assert bot.pk in gateway.supervisor.running()

"""Real faults, real processes: the fleet picture comes back to the truth, and each test prints how long it took.

The gateway and the listeners run as their own processes on the test database and Redis, the bots are
real freqtrade processes on the replay exchange. "The truth" is what the operating system says: every
bot that should run has exactly one freqtrade process, and its record names that pid; a bot without a
process is never recorded running or stopping.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from django.conf import settings

from bots.models import Bot
from multibot.redis_client import redis_client
from strategies.library import library_dir
from streams.bus import stream_key
from streams.catalog import TRADING_STATUS
from tests.factories import PASSWORD, client_for, make_bot, make_user
from tests.support.freqtrade import ALWAYS_IN
from tests.support.market import store_history
from tests.support.processes import ROOT, database_url, free_port, server_env, uvicorn_process, wait_for
from tests.support.replay import replay_exchange

pytestmark = pytest.mark.slow

SNAPSHOT_SECONDS = 2.0


@pytest.fixture(scope="module")
def replay_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("faults-replay")
    store_history(home / "data" / "replay")
    with replay_exchange(home) as url:
        yield url


class System:
    """The gateway and the listeners (and the web when asked), as processes a test may kill."""

    def __init__(self, replay_url: str, logs: Path) -> None:
        self.env = server_env(
            DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url(), MULTIBOT_REPLAY_URL=replay_url,
            MULTIBOT_BOT_STOP_GRACE_SECONDS="5", MULTIBOT_GATEWAY_SNAPSHOT_MS=str(int(SNAPSHOT_SECONDS * 1000)),
            SECRET_KEY=settings.SECRET_KEY,
        )  # fmt: skip
        self.logs = logs
        self.gateway = self._spawn("run_gateway")
        self.listeners = self._spawn("run_listeners")
        self.web: subprocess.Popen[bytes] | None = None
        self.web_port = free_port()

    def _spawn(self, command: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{command}.log", "ab")
        return subprocess.Popen([sys.executable, "manage.py", command], cwd=ROOT, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip

    def kill_gateway(self) -> None:
        self.gateway.send_signal(signal.SIGKILL)
        self.gateway.wait(10)

    def start_gateway(self) -> None:
        self.gateway = self._spawn("run_gateway")

    def start_web(self) -> str:
        self.web = uvicorn_process(self.env, self.web_port, output=open(self.logs / "web.log", "a"))
        return f"http://127.0.0.1:{self.web_port}"

    def close(self) -> None:
        for process in (self.gateway, self.listeners, self.web):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()


@pytest.fixture
def system(replay_url: str, committed_db: None, tmp_path: Path) -> Iterator[System]:
    (library_dir() / "always_in.py").write_text(ALWAYS_IN)
    running = System(replay_url, tmp_path)
    try:
        yield running
    finally:
        running.close()
        _kill_bots()


def _bot_processes() -> dict[str, list[int]]:
    """Our freqtrade processes by their bot config (its directory names the bot)."""
    bots_dir = str(Path(settings.HOME) / "bots") + "/"
    found: dict[str, list[int]] = {}
    for process in psutil.process_iter(["pid", "cmdline"]):
        args = process.info["cmdline"] or []
        if args[1:5] == ["-m", "freqtrade", "trade", "--config"] and args[5:6] and args[5].startswith(bots_dir):
            found.setdefault(args[5], []).append(process.info["pid"])
    return found


def _kill_bots() -> None:
    for pids in _bot_processes().values():
        for pid in pids:
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _config(bot: Bot) -> str:
    return str(Path(settings.HOME) / "bots" / str(bot.pk) / "config.json")


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _records(bots: list[Bot]) -> list[Bot]:
    return list(Bot.objects.filter(pk__in=[bot.pk for bot in bots]).order_by("pk"))


def _untrue(bots: list[Bot], *, running: bool) -> list[str]:
    """What the records say that the operating system does not (empty: the picture is true)."""
    processes = _bot_processes()
    wrong = []
    for bot in _records(bots):
        pids = processes.get(_config(bot), [])
        if running and (len(pids) != 1 or bot.status != "running" or bot.pid != pids[0]):
            wrong.append(f"{bot.name}: recorded {bot.status} pid {bot.pid}, processes {pids}")
        if bot.status in ("running", "stopping", "starting", "unresponsive") and not _alive(bot.pid):
            if bot.status != "starting" or not running:
                wrong.append(f"{bot.name}: recorded {bot.status} with no process (pid {bot.pid})")
    return wrong


def _time_to_truth(bots: list[Bot], *, running: bool, timeout: float, since: float) -> float:
    last: list[str] = []

    def true() -> bool:
        nonlocal last
        last = _untrue(bots, running=running)
        return not last

    try:
        wait_for(true, timeout, "the records to match the processes")
    except AssertionError:
        raise AssertionError(f"still untrue after {timeout:.0f}s: {last}") from None
    return time.monotonic() - since


def _fleet(count: int) -> tuple[list[Bot], object]:
    owner = make_user()
    bots = [make_bot(owner=owner, strategy_name="AlwaysIn", timeframe="1m", pair_whitelist=["BTC/USDT"])
            for _ in range(count)]  # fmt: skip
    return bots, client_for(owner)


def test_a_gateway_killed_in_the_middle_of_start_all_leaves_one_process_per_bot_and_true_records(system):
    # given: four bots, a start-all, and the gateway SIGKILLed as soon as the first bot process exists
    bots, api = _fleet(4)
    assert api.post("/api/v1/bots/start-all").status_code == 202
    wait_for(lambda: _bot_processes(), 60, "a first bot process")
    system.kill_gateway()
    before_the_kill = {config: pids[0] for config, pids in _bot_processes().items()}
    started_before_the_kill = len(before_the_kill)

    # when: a new gateway (as a process manager would start it)
    since = time.monotonic()
    system.start_gateway()

    # then: each bot runs once, and its record names its process
    took = _time_to_truth(bots, running=True, timeout=120, since=since)
    print(f"\ngateway SIGKILLed with {started_before_the_kill} of 4 bot processes started: "
          f"one process per bot and every record true {took:.1f}s after the new gateway started")  # fmt: skip
    time.sleep(SNAPSHOT_SECONDS * 2)  # and it stays so: no second process appears later
    assert _untrue(bots, running=True) == []
    assert all(len(pids) == 1 for pids in _bot_processes().values())
    # The processes the dead gateway had started were adopted, not killed and started again.
    recorded = {_config(bot): bot.pid for bot in _records(bots)}
    assert {config: recorded[config] for config in before_the_kill} == before_the_kill


def test_a_web_killed_right_after_a_stop_leaves_no_bot_stopping_and_start_works(system):
    # given: two running bots, the web serving them
    bots, _ = _fleet(2)
    base = system.start_web()
    login = {"username": bots[0].owner.username, "password": PASSWORD}
    token = httpx.post(f"{base}/api/v1/auth/login/json", json=login).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    for bot in bots:
        assert httpx.post(f"{base}/api/v1/bots/{bot.pk}/start", headers=auth).status_code == 202
    _time_to_truth(bots, running=True, timeout=120, since=time.monotonic())

    # when: a stop is accepted and the web is SIGKILLed at once, then comes back
    stopped = httpx.post(f"{base}/api/v1/bots/{bots[0].pk}/stop", headers=auth)
    system.web.send_signal(signal.SIGKILL)
    system.web.wait(10)
    since = time.monotonic()
    base = system.start_web()

    # then: the stopped bot is stopped with no process, the other still runs, and a start works
    assert stopped.status_code == 202
    took = _time_to_truth(bots[1:], running=True, timeout=60, since=since)
    wait_for(lambda: _records(bots[:1])[0].status == "stopped" and not _bot_processes().get(_config(bots[0])), 60,
             "the stopped bot to read stopped with no process")  # fmt: skip
    assert _untrue(bots[:1], running=False) == []
    started = httpx.post(f"{base}/api/v1/bots/{bots[0].pk}/start", headers=auth)
    assert started.status_code == 202, started.text
    again = _time_to_truth(bots, running=True, timeout=120, since=time.monotonic())
    print(f"\nweb SIGKILLed after a stop: records true {max(took, 0):.1f}s after it came back; "
          f"the stopped bot started again and ran {again:.1f}s later")  # fmt: skip


def test_reports_made_while_redis_is_frozen_arrive_when_it_returns(system, redis_server):
    # given: two running bots
    bots, api = _fleet(2)
    assert api.post("/api/v1/bots/start-all").status_code == 202
    _time_to_truth(bots, running=True, timeout=120, since=time.monotonic())
    victim = _records(bots)[0]

    # when: Redis is frozen (SIGSTOP) for 20 s, and meanwhile one bot dies and its gateway restarts it
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        os.killpg(os.getpgid(victim.pid), signal.SIGKILL)
        wait_for(lambda: [pid for pid in _bot_processes().get(_config(victim), []) if pid != victim.pid], 30,
                 "the gateway to restart the killed bot while Redis is frozen")  # fmt: skip
        frozen_record = _records([victim])[0]
        time.sleep(max(0.0, 20 - (time.monotonic() - frozen_at)))
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    since = time.monotonic()

    # then: the record was stale during the freeze, and is true within about one period of Redis returning
    assert frozen_record.pid == victim.pid  # nobody could tell the listeners
    took = _time_to_truth(bots, running=True, timeout=60, since=since)
    # The gateway's own reports of the restart, made during the freeze, were kept and sent (not only healed
    # by a later snapshot): the new pid's report carries a moment from inside the freeze.
    new_pid = _records([victim])[0].pid
    frozen_wall = (time.time() - (time.monotonic() - frozen_at), time.time() - (time.monotonic() - since))
    reports = [json.loads(fields["payload"]) for _, fields in redis_client().xrange(stream_key(TRADING_STATUS))
               if fields["type"] == "bot_status"]  # fmt: skip
    assert any(report["bot_id"] == victim.pk and report["pid"] == new_pid and
               frozen_wall[0] <= report["at"] <= frozen_wall[1] for report in reports)  # fmt: skip
    print(f"\nRedis frozen 20 s while a bot was restarted: records true {took:.1f}s after SIGCONT "
          f"(snapshot period {SNAPSHOT_SECONDS:.0f}s)")  # fmt: skip
    assert took < 20, "the kept reports and the snapshot heal the picture soon after Redis returns"


def test_commands_sent_while_redis_is_frozen_are_carried_out_once_when_it_returns(system, redis_server):
    from audit.models import AuditLog
    from audit.resources import bot_resource

    # given: two running bots and a stopped one
    (to_stop, to_restart, to_start), api = _fleet(3)
    for bot in (to_stop, to_restart):
        assert api.post(f"/api/v1/bots/{bot.pk}/start").status_code == 202
    _time_to_truth([to_stop, to_restart], running=True, timeout=120, since=time.monotonic())
    restarted_pid = _records([to_restart])[0].pid

    # when: Redis is frozen for 20 s, and a stop, a restart and a start are sent meanwhile
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    answers = []
    try:
        for bot, command in ((to_stop, "stop"), (to_restart, "restart"), (to_start, "start")):
            asked = time.monotonic()
            answers.append((api.post(f"/api/v1/bots/{bot.pk}/{command}").status_code, time.monotonic() - asked))
        time.sleep(max(0.0, 20 - (time.monotonic() - frozen_at)))
        untouched = _records([to_stop, to_restart, to_start])
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    since = time.monotonic()

    # then: each accepted at once, nothing done while Redis was frozen, each done once after
    assert [status for status, _ in answers] == [202, 202, 202]
    assert [bot.status for bot in untouched] == ["running", "running", "stopped"]
    took = _time_to_truth([to_restart, to_start], running=True, timeout=90, since=since)
    wait_for(lambda: _records([to_stop])[0].status == "stopped" and not _bot_processes().get(_config(to_stop)), 60,
             "the stopped bot to stop")  # fmt: skip
    assert _records([to_restart])[0].pid != restarted_pid
    time.sleep(SNAPSHOT_SECONDS * 2)  # a duplicate, if any, would have been carried out by now
    restarts = AuditLog.objects.filter(action="bot_start", resource=bot_resource(to_restart.pk),
                                       details__reason="restart")  # fmt: skip
    starts = AuditLog.objects.filter(action="bot_start", resource=bot_resource(to_start.pk), details__reason="command")
    assert (restarts.count(), starts.count()) == (1, 1)
    print(f"\nRedis frozen 20 s while 3 commands were sent (answered 202 in "
          f"{', '.join(f'{seconds:.2f}' for _, seconds in answers)} s): all carried out once, "
          f"records true {took:.1f}s after SIGCONT")  # fmt: skip

"""Liveness end to end: a real freqtrade bot on the replay exchange, frozen (SIGSTOP), its gateway run tick by tick.

The supervisor's rules are tested step by step with tiny children in test_supervisor.py; here the
bot is freqtrade itself (its API on a thread of its own, its startup, its exit on SIGKILL) and the
verdicts reach the bot's row through the reports the gateway publishes, as the listeners apply them.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from bots.commands import BotStatus, DesiredState
from bots.gateway.service import Gateway, Ticked
from bots.models import Bot
from bots.workspace import workspace_for
from strategies.library import install_builtin_strategies, library_dir
from tests.bots.test_gateway import apply_status_reports
from tests.factories import make_bot
from tests.support.freqtrade import ALWAYS_IN
from tests.support.market import store_history
from tests.support.processes import free_port
from tests.support.replay import replay_exchange

# embedded_only: freqtrade's API and the gateway's probes; the reports' database side runs on both in test_gateway.py.
pytestmark = [pytest.mark.slow, pytest.mark.embedded_only, pytest.mark.django_db(transaction=True)]

# The task's test settings: a probe a second with half a second to answer; unresponsive after 3 misses,
# killed to be restarted after 10.
LIVENESS = {"liveness_interval_seconds": 1.0, "liveness_timeout_seconds": 0.5, "unresponsive_after_misses": 3,
            "restart_after_misses": 10, "backoff_base_seconds": 1}  # fmt: skip


@pytest.fixture
def gateway(tmp_path: Path, settings, committed_db: None) -> Iterator[Gateway]:
    """A gateway in this process (its steps called by the test) whose bots trade on a replay exchange."""
    store_history(tmp_path / "data" / "replay")
    with replay_exchange(tmp_path) as url:
        settings.HOME, settings.REPLAY_EXCHANGE_URL = tmp_path, url
        settings.MARKETDATA = {**settings.MARKETDATA, "dir": tmp_path / "data"}
        port = free_port()
        settings.BOTS = {**settings.BOTS, "api_port_first": port, "api_port_last": port}
        settings.GATEWAY = {**settings.GATEWAY, **LIVENESS}
        install_builtin_strategies()
        (library_dir() / "always_in.py").write_text(ALWAYS_IN)
        gateway = Gateway()
        try:
            yield gateway
        finally:
            for child in gateway.supervisor.running().values():
                _kill(child.pid)
            gateway.supervisor.shutdown()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def drive(gateway: Gateway, done: Callable[[Ticked], bool], timeout: float, what: str) -> float:
    """The gateway's loop (a tick every 0.5 s), its reports applied to the rows, until ``done``; the seconds it took."""
    started = deadline = time.monotonic()
    deadline += timeout
    while time.monotonic() < deadline:
        ticked = gateway.tick()
        apply_status_reports()
        if done(ticked):
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"no tick came to {what} in {timeout:.0f}s")


def row(bot: Bot) -> Bot:
    bot.refresh_from_db()
    return bot


def freqtrade_processes(bot: Bot) -> list[int]:
    marker = str(workspace_for(bot.pk).config)
    return [process.pid for process in psutil.process_iter(["cmdline"])
            if marker in (process.info["cmdline"] or []) and process.status() != psutil.STATUS_ZOMBIE]  # fmt: skip


def test_a_frozen_bot_is_unresponsive_within_seconds_running_again_if_it_thaws_and_restarted_if_it_stays_frozen(
    gateway, user
):
    # given: a running bot
    bot = make_bot(owner=user, strategy_name="AlwaysIn", timeframe="1m", pair_whitelist=["BTC/USDT"])
    Bot.objects.filter(pk=bot.pk).update(desired_state=DesiredState.RUNNING)
    assert gateway.start(row(bot)) == "started"
    drive(gateway, lambda _: row(bot).status == BotStatus.RUNNING, 120, "the bot running")
    pid = gateway.supervisor.running()[bot.pk].pid
    assert row(bot).pid == pid

    # when: its process is frozen
    os.kill(pid, signal.SIGSTOP)
    seen: list[Ticked] = []
    took = drive(gateway, lambda ticked: seen.append(ticked) or row(bot).status == BotStatus.UNRESPONSIVE, 30,
                 "the frozen bot unresponsive")  # fmt: skip

    # then: unresponsive within seconds, in the report and in its row, the same process
    print(f"\nSIGSTOP -> unresponsive in its row: {took:.1f}s")
    assert took < 10
    assert any(ticked.children.unresponsive == [bot.pk] for ticked in seen)
    assert row(bot).pid == pid and bot.status_detail.startswith("its API has not answered for ")

    # when: it runs again before its restart is due
    os.kill(pid, signal.SIGCONT)
    took = drive(gateway, lambda _: row(bot).status == BotStatus.RUNNING, 30, "the thawed bot running")

    # then: running again, the very same process, nothing restarted
    print(f"SIGCONT -> running in its row: {took:.1f}s")
    assert row(bot).pid == pid and bot.status_detail.startswith("answers again after ")
    assert bot.restart_count == 0

    # when: it is frozen again, and stays so
    os.kill(pid, signal.SIGSTOP)
    took = drive(gateway, lambda ticked: ticked.children.hung_killed == [bot.pk], 40, "the hung bot killed")
    print(f"SIGSTOP -> killed as hung: {took:.1f}s")
    took += drive(gateway, lambda _: row(bot).status == BotStatus.RUNNING and bot.pid not in (None, pid), 120,
                  "the bot restarted")  # fmt: skip

    # then: killed, restarted (a new process, counted like a crash), running again; one process for the bot
    print(f"SIGSTOP -> running again in a new process: {took:.1f}s")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert bot.restart_count == 1 and bot.pid == gateway.supervisor.running()[bot.pk].pid
    assert freqtrade_processes(bot) == [bot.pid]

"""The Supervisor step by step, with tiny real child processes in place of freqtrade (tests/support/children.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from bots.commands import BotStatus, BotStatusReport
from bots.gateway.supervisor import BotLaunch, Polled, Supervisor
from tests.support import children
from tests.support.processes import free_port, wait_for


class Watched:
    """A supervisor and every report it published."""

    def __init__(self, **options: float) -> None:
        self.reports: list[BotStatusReport] = []
        self.supervisor = Supervisor(publish=self.reports.append, host="test-host",
                                     **{"grace_seconds": 2.0, "backoff_base": 0.05, **options})  # fmt: skip

    def statuses(self) -> list[BotStatus]:
        return [report["status"] for report in self.reports]

    def poll_until(self, done: Callable[[Polled], bool], timeout: float = 15.0) -> Polled:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            polled = self.supervisor.poll()
            if done(polled):
                return polled
            time.sleep(0.02)
        raise AssertionError(f"no poll came to it in {timeout:.0f}s; reports: {self.reports}")


@pytest.fixture
def watched() -> Iterator[Callable[..., Watched]]:
    made: list[Watched] = []

    def make(**options: float) -> Watched:
        made.append(Watched(**options))
        return made[-1]

    yield make
    for each in made:
        for child in each.supervisor.running().values():
            children.kill_group(child.pid)
        each.supervisor.shutdown()


def launch(tmp_path: Path, program: str, *, bot_id: int = 1, api_port: int | None = None) -> BotLaunch:
    root = tmp_path / "bots" / str(bot_id)
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.json"
    config.write_text("{}")
    return BotLaunch(bot_id=bot_id, command=children.command(program, config), workdir=root,
                     log=root / "logs" / "freqtrade.log", api_port=api_port or free_port())  # fmt: skip


def test_exit_code_2_ends_in_error_with_freqtrades_words_and_is_never_restarted(watched, tmp_path):
    # given
    watch = watched()
    assert watch.supervisor.start(launch(tmp_path, children.EXIT_2)) == "started"

    # when
    polled = watch.poll_until(lambda polled: bool(polled.exited))

    # then
    assert (polled.exited, polled.failed, polled.restarting) == ({1: 2}, [1], {})
    error = watch.reports[-1]
    assert (error["status"], error["exit_code"], error["pid"]) == (BotStatus.ERROR, 2, None)
    assert "Impossible to load Strategy Nope" in error["detail"]
    time.sleep(0.3)  # well past any backoff
    assert not watch.supervisor.poll()
    assert watch.supervisor.running() == {} and watch.supervisor.pending_restarts == {}
    assert watch.statuses() == [BotStatus.STARTING, BotStatus.ERROR]


def test_exit_code_0_by_itself_ends_in_error_too(watched, tmp_path):
    watch = watched()
    watch.supervisor.start(launch(tmp_path, children.EXIT_0))

    polled = watch.poll_until(lambda polled: bool(polled.exited))

    assert (polled.exited, polled.failed) == ({1: 0}, [1])
    assert watch.reports[-1]["status"] == BotStatus.ERROR and watch.reports[-1]["exit_code"] == 0
    assert watch.supervisor.pending_restarts == {}


def test_a_crash_is_restarted_after_a_backoff_that_doubles_with_each_crash(watched, tmp_path):
    # given: a bot that crashes at once, every time
    watch = watched(backoff_base=0.3, restart_budget=5)
    watch.supervisor.start(launch(tmp_path, children.CRASH))
    first_pid = watch.reports[0]["pid"]

    # when: it crashes
    polled = watch.poll_until(lambda polled: bool(polled.exited))

    # then: a restart after the base backoff, not before
    assert (polled.exited, polled.restarting, polled.failed) == ({1: 1}, {1: 0.3}, [])
    waiting = watch.reports[-1]
    assert (waiting["status"], waiting["exit_code"], waiting["restart_count"]) == (BotStatus.STARTING, 1, 1)
    assert watch.supervisor.poll().restarted == {}  # the backoff is not over
    restarted = watch.poll_until(lambda polled: bool(polled.restarted))
    assert restarted.restarted == {1: "started"}
    assert watch.reports[-1]["pid"] not in (None, first_pid)
    # and the next crash waits twice as long
    again = watch.poll_until(lambda polled: bool(polled.exited))
    assert again.restarting == {1: 0.6}


def test_a_bot_that_keeps_crashing_ends_in_error_once_its_restart_budget_is_spent(watched, tmp_path):
    watch = watched(backoff_base=0.01, restart_budget=2)
    watch.supervisor.start(launch(tmp_path, children.CRASH))

    polled = watch.poll_until(lambda polled: bool(polled.failed))

    assert polled.failed == [1]
    final = watch.reports[-1]
    assert (final["status"], final["restart_count"]) == (BotStatus.ERROR, 2)
    assert "restart budget spent" in final["detail"]
    # the first start and two restarts, each reported as starting
    assert [report["pid"] is not None for report in watch.reports if report["status"] == BotStatus.STARTING] == [
        True, False, True, False, True]  # fmt: skip
    assert watch.supervisor.pending_restarts == {} and watch.supervisor.running() == {}


def test_a_stop_while_the_bot_is_starting_terminates_it_and_nothing_starts_it_again(watched, tmp_path):
    # given: a bot whose API never answers, so it stays "starting"
    watch = watched()
    watch.supervisor.start(launch(tmp_path, children.SLEEP))
    pid = watch.reports[0]["pid"]
    assert not watch.supervisor.poll().promoted

    # when
    outcome = watch.supervisor.stop(1).result(timeout=15)

    # then
    assert outcome == "terminated" and not children.alive(pid)
    assert watch.statuses() == [BotStatus.STARTING, BotStatus.STOPPING, BotStatus.STOPPED]
    assert not watch.supervisor.poll() and watch.supervisor.running() == {}


def test_a_stop_while_a_restart_waits_for_its_backoff_cancels_the_restart(watched, tmp_path):
    watch = watched(backoff_base=0.3)
    watch.supervisor.start(launch(tmp_path, children.CRASH))
    watch.poll_until(lambda polled: bool(polled.restarting))

    assert watch.supervisor.stop(1).result(timeout=5) == "not_running"

    time.sleep(0.5)
    assert watch.supervisor.poll().restarted == {} and watch.supervisor.running() == {}
    assert watch.reports[-1]["status"] == BotStatus.STOPPED


def test_a_started_bot_is_running_once_its_api_answers(watched, tmp_path):
    port = free_port()
    watch = watched()
    watch.supervisor.start(launch(tmp_path, children.answers_ping(port), api_port=port))

    polled = watch.poll_until(lambda polled: bool(polled.promoted))

    assert polled.promoted == [1]
    assert watch.reports[-1]["status"] == BotStatus.RUNNING and watch.reports[-1]["host"] == "test-host"


def test_a_bot_that_ignores_sigterm_is_killed_once_its_grace_is_over(watched, tmp_path):
    watch = watched(grace_seconds=0.5)
    bot = launch(tmp_path, children.IGNORE_SIGTERM)
    watch.supervisor.start(bot)
    wait_for(lambda: bot.log.exists() and "ready" in bot.log.read_text(), 10, "the handler to be installed")

    started = time.monotonic()
    outcome = watch.supervisor.stop(1).result(timeout=15)

    assert outcome == "killed_after_grace" and 0.5 <= time.monotonic() - started < 5
    assert watch.reports[-1]["outcome"] == "killed_after_grace"


# -- adoption after a gateway restart ---------------------------------------------------------------
@pytest.fixture
def orphan(tmp_path) -> Iterator[tuple[BotLaunch, psutil.Process]]:
    """A bot process left by a previous gateway: alive, its config on its command line."""
    bot = launch(tmp_path, children.SLEEP)
    process = children.spawn(bot.command)
    yield bot, psutil.Process(process.pid)
    children.kill_group(process.pid)
    process.wait(10)


def test_adoption_takes_over_the_very_process_it_recorded(watched, orphan):
    bot, process = orphan
    watch = watched()

    assert watch.supervisor.adopt(bot, pid=process.pid, create_time=process.create_time())

    assert watch.supervisor.running()[1].pid == process.pid
    assert watch.reports[-1]["status"] == BotStatus.RUNNING and watch.reports[-1]["pid"] == process.pid


def test_adoption_refuses_a_reused_pid_whose_create_time_differs(watched, orphan):
    bot, process = orphan
    watch = watched()

    assert not watch.supervisor.adopt(bot, pid=process.pid, create_time=process.create_time() - 30)

    assert watch.supervisor.running() == {} and watch.reports == []
    assert children.alive(process.pid)  # never signalled


def test_adoption_refuses_a_reused_pid_that_runs_another_command(watched, orphan, tmp_path):
    _, process = orphan
    another = launch(tmp_path, children.SLEEP, bot_id=2)  # the same pid recorded for bot 2: its config is not there
    watch = watched()

    assert not watch.supervisor.adopt(another, pid=process.pid, create_time=process.create_time())

    assert watch.supervisor.running() == {} and watch.reports == []
    assert children.alive(process.pid)

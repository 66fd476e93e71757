"""The Supervisor step by step, with tiny real child processes in place of freqtrade (tests/support/children.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from bots.commands import BotStatus, BotStatusReport
from bots.gateway.liveness import Liveness
from bots.gateway.supervisor import BotLaunch, Polled, Supervisor
from tests.support import children
from tests.support.processes import free_port, wait_for


class Watched:
    """A supervisor and every report it published."""

    def __init__(self, **options: Any) -> None:
        self.reports: list[BotStatusReport] = []
        self.supervisor = Supervisor(publish=self.reports.append, host="test-host",
                                     **{"grace_seconds": 2.0, "backoff_base": 0.05, **options})  # fmt: skip

    def statuses(self) -> list[BotStatus]:
        """In the order they were so (their ``at``), as the listeners apply them: a stop's "stopping" is
        published after the stopper has started, so its "stopped" may be heard first."""
        return [report["status"] for report in sorted(self.reports, key=lambda report: report["at"])]

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

    def make(**options: Any) -> Watched:
        made.append(Watched(**options))
        return made[-1]

    yield make
    for each in made:
        for child in each.supervisor.running().values():
            children.kill_group(child.pid)
        each.supervisor.shutdown()


def launch(
    tmp_path: Path, program: str, *, bot_id: int = 1, api_port: int | None = None,
    api_auth: tuple[str, str] | None = None,
) -> BotLaunch:  # fmt: skip
    root = tmp_path / "bots" / str(bot_id)
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.json"
    config.write_text("{}")
    return BotLaunch(bot_id=bot_id, command=children.command(program, config), workdir=root,
                     log=root / "logs" / "freqtrade.log", api_port=api_port or free_port(),
                     api_auth=api_auth)  # fmt: skip


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
    # The snapshot still lists it, in error with its cause, until it is started again.
    (line,) = watch.supervisor.snapshot()
    assert (line.bot_id, line.status, line.pid, line.detail) == (1, BotStatus.ERROR, None, error["detail"])


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
    # Its API does not answer (yet): adopted as starting, promoted by a poll once it does.
    assert watch.reports[-1]["status"] == BotStatus.STARTING and watch.reports[-1]["pid"] == process.pid


def test_adoption_to_stop_at_once_asks_the_bot_nothing(watched, orphan):
    bot, process = orphan
    watch = watched()

    assert watch.supervisor.adopt(bot, pid=process.pid, create_time=process.create_time(), probe=False)

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


# -- liveness: a running bot's own API, probed ------------------------------------------------------
# Probes every 0.1 s with a 0.3 s timeout: a frozen bot misses one about every 0.3 s.
QUICK = Liveness(interval=0.1, timeout=0.3, unresponsive_after=2, restart_after=1000, loop_stale=60)


def running_bot(watched: Callable[..., Watched], tmp_path: Path, **options: Any) -> tuple[Watched, int]:
    """A started bot that answers its pings, promoted to running; and its pid."""
    port = free_port()
    watch = watched(**{"liveness": QUICK, **options})
    watch.supervisor.start(launch(tmp_path, children.answers_ping(port), api_port=port))
    watch.poll_until(lambda polled: bool(polled.promoted))
    return watch, watch.supervisor.running()[1].pid


@pytest.fixture
def thaw() -> Iterator[list[int]]:
    """Processes a test froze: never left stopped (their group is killed by the supervisor's fixture)."""
    frozen: list[int] = []
    yield frozen
    for pid in frozen:
        children.resume(pid)


def test_a_frozen_bot_is_unresponsive_after_its_misses_and_running_again_once_it_answers(watched, tmp_path, thaw):
    # given: a running bot whose probes answer
    watch, pid = running_bot(watched, tmp_path)
    watch.poll_until(lambda polled: polled.answered == [1])

    # when: its process is frozen whole
    thaw.append(children.freeze(pid))
    child = watch.supervisor.running()[1]
    watch.poll_until(lambda polled: child.probe is not None)

    # then: that poll started a probe and returned without waiting for it (a frozen bot answers nothing:
    # only its timeout ends it) ...
    assert not child.probe.done()
    # ... the misses add up, and it is unresponsive
    polled = watch.poll_until(lambda polled: bool(polled.unresponsive))
    assert polled.unresponsive == [1] and polled.missed == {1: 2}
    report = watch.reports[-1]
    assert (report["status"], report["pid"]) == (BotStatus.UNRESPONSIVE, pid)
    assert report["detail"].startswith("its API has not answered for ") and "/ping: ReadTimeout" in report["detail"]
    assert [line.status for line in watch.supervisor.snapshot()] == [BotStatus.UNRESPONSIVE]

    # when: it runs again
    children.resume(pid)
    recovered = watch.poll_until(lambda polled: bool(polled.recovered))

    # then: running, the same process, its answer recorded
    assert recovered.recovered == [1] and recovered.answered == [1]
    assert (watch.reports[-1]["status"], watch.reports[-1]["pid"]) == (BotStatus.RUNNING, pid)
    assert watch.reports[-1]["detail"].startswith("answers again after ")
    assert watch.statuses().count(BotStatus.UNRESPONSIVE) == 1
    child = watch.supervisor.running()[1]
    assert child.misses == 0 and child.answered_at is not None and time.time() - child.answered_at < 5


def test_a_bot_that_stays_frozen_is_killed_and_restarted_like_a_crash(watched, tmp_path, thaw):
    # given: a running bot, killed as hung after 4 misses
    watch, pid = running_bot(watched, tmp_path, liveness=Liveness(interval=0.1, timeout=0.3, unresponsive_after=2,
                                                                   restart_after=4))  # fmt: skip

    # when: it is frozen and stays so
    thaw.append(children.freeze(pid))
    killed = watch.poll_until(lambda polled: bool(polled.hung_killed))

    # then: its process group SIGKILLed (frozen, it could not have acted on SIGTERM) ...
    assert killed.hung_killed == [1] and killed.missed == {1: 4}
    assert watch.reports[-1]["status"] == BotStatus.UNRESPONSIVE
    assert watch.reports[-1]["detail"].startswith("hung for ") and watch.reports[-1]["detail"].endswith(
        "s: killed to be restarted")  # fmt: skip
    exited = watch.poll_until(lambda polled: bool(polled.exited))
    assert exited.exited == {1: -9} and not children.alive(pid)
    # ... and restarted after its backoff, counted like a crash
    waiting = watch.reports[-1]
    assert (waiting["status"], waiting["restart_count"]) == (BotStatus.STARTING, 1)
    assert waiting["detail"].startswith("hung for ") and "s: killed; restarting in " in waiting["detail"]
    watch.poll_until(lambda polled: bool(polled.promoted))
    assert watch.supervisor.running()[1].pid != pid
    assert watch.statuses()[-1] == BotStatus.RUNNING


def test_a_hung_bot_whose_restart_budget_is_spent_ends_in_error(watched, tmp_path, thaw):
    hangs = Liveness(interval=0.1, timeout=0.3, unresponsive_after=1, restart_after=2)
    watch, pid = running_bot(watched, tmp_path, restart_budget=0, liveness=hangs)

    thaw.append(children.freeze(pid))
    polled = watch.poll_until(lambda polled: bool(polled.failed))

    assert watch.reports[-1]["status"] == BotStatus.ERROR
    assert watch.reports[-1]["detail"].startswith("hung for ") and "restart budget spent" in watch.reports[-1]["detail"]
    assert polled.exited == {1: -9} and watch.supervisor.pending_restarts == {}


def test_a_frozen_bot_the_user_stops_is_stopped_at_once_and_never_killed_as_hung(watched, tmp_path, thaw):
    # given: a frozen bot, unresponsive
    hangs = Liveness(interval=0.1, timeout=0.3, unresponsive_after=1, restart_after=3)
    watch, pid = running_bot(watched, tmp_path, grace_seconds=30.0, liveness=hangs)
    thaw.append(children.freeze(pid))
    watch.poll_until(lambda polled: bool(polled.unresponsive))

    # when: the user stops it, while polls go on
    stopping = watch.supervisor.stop(1)
    while not stopping.done():
        assert not watch.supervisor.poll().hung_killed
        time.sleep(0.05)

    # then: its SIGTERM took effect (thawed to act on it), well within its grace; no liveness verdict after
    assert stopping.result() == "terminated" and not children.alive(pid)
    assert watch.statuses()[-2:] == [BotStatus.STOPPING, BotStatus.STOPPED]


@pytest.mark.parametrize(
    ("loop_ran_ago", "password", "misses"),
    [(600, "right", True), (5, "right", False), (None, "right", False), (600, "wrong", False)],
    ids=["its loop hangs", "its loop runs", "no iteration yet", "credentials refused: cannot tell"],
)
def test_a_bot_whose_api_answers_but_whose_main_loop_hangs_misses_too(watched, tmp_path, loop_ran_ago, password,
                                                                        misses):  # fmt: skip
    # given: a bot API that answers its pings; /health says when the main loop last ran
    port = free_port()
    program = children.answers_health(port, loop_ran_ago=loop_ran_ago, username="bot", password="right")
    watch = watched(liveness=Liveness(interval=0.05, timeout=1.0, unresponsive_after=2, restart_after=1000,
                                      loop_stale=60))  # fmt: skip
    watch.supervisor.start(launch(tmp_path, program, api_port=port, api_auth=("bot", password)))
    watch.poll_until(lambda polled: bool(polled.promoted))

    # when: three probes have been judged
    judged: list[Polled] = []
    watch.poll_until(lambda polled: judged.append(polled) or sum(
        1 in each.answered or 1 in each.missed for each in judged) >= 3)  # fmt: skip

    # then
    if misses:
        assert any(polled.unresponsive == [1] for polled in judged)
        assert re.search(r"\(its main loop last ran 60\ds ago\)$", watch.reports[-1]["detail"])
    else:
        assert not any(polled.missed for polled in judged) and watch.statuses()[-1] == BotStatus.RUNNING


def test_a_launch_never_shows_its_api_credentials(tmp_path):
    bot = launch(tmp_path, children.SLEEP, api_auth=("bot", "s3cret-password"))

    assert "s3cret-password" not in repr(bot)

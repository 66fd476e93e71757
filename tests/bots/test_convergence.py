"""The fleet picture converges: reports the bus refused are sent later, and the gateway's snapshot corrects the rest."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest

from bots.commands import BotStatus, Report, build_bot_beat, build_bot_status, build_gateway_heartbeat
from bots.gateway.reporting import ReportBacklog
from bots.models import Bot
from bots.services import bot_snapshot_apply, bot_status_apply
from multibot.redis_client import redis_client
from streams.bus import publish, stream_key
from streams.catalog import TRADING_STATUS
from tests.factories import make_bot


def _send(report: Any) -> None:
    publish(TRADING_STATUS, type=Report.BOT_STATUS, payload=report, producer="test")


def _sent() -> list[tuple[int, str]]:
    entries = redis_client().xrange(stream_key(TRADING_STATUS))
    return [(payload["bot_id"], payload["status"]) for payload in (json.loads(f["payload"]) for _, f in entries)]


def _report(bot_id: int, status: BotStatus, at: float) -> Any:
    return build_bot_status(bot_id=bot_id, status=status, at=at, host="h")


class _Frozen:
    """The real Redis server, stopped (SIGSTOP): it accepts connections and answers nothing."""

    def __init__(self, server: Any, settings: Any) -> None:
        self.pid = server.process.pid
        # The bus gives up on a frozen server after its socket timeout: keep that short here.
        settings.REDIS_URL = server.url + "?socket_timeout=0.2"

    def __enter__(self) -> _Frozen:
        os.kill(self.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc: object) -> None:
        os.kill(self.pid, signal.SIGCONT)


def test_reports_the_bus_refused_are_sent_once_it_answers_newest_per_bot_in_order(redis_server, settings):
    # given: a backlog in front of the real bus, and Redis frozen while three bots change
    backlog = ReportBacklog(_send, retry_seconds=0)
    now = time.time()
    with _Frozen(redis_server, settings):
        # when
        assert backlog.report(_report(1, BotStatus.STOPPING, now)) is False
        backlog.report(_report(2, BotStatus.STARTING, now + 1))
        backlog.report(_report(1, BotStatus.STOPPED, now + 2))  # bot 1's newest: replaces its stopping
        backlog.report(_report(3, BotStatus.RUNNING, now + 3))
        backlog.report(_report(3, BotStatus.STARTING, now + 2.5))  # older than the one kept: ignored
        assert backlog.flush() == 0 and len(backlog) == 3
    settings.REDIS_URL = redis_server.url
    sent = backlog.flush()
    # then: what waited went out in the order it happened, each bot's newest only; a new report goes straight
    assert sent == 3 and len(backlog) == 0
    assert _sent() == [(2, "starting"), (1, "stopped"), (3, "running")]
    assert backlog.report(_report(2, BotStatus.RUNNING, now + 4)) is True
    assert _sent()[-1] == (2, "running")


def test_a_report_made_while_others_wait_joins_the_queue_and_never_overtakes_them(redis_server, settings):
    # given: one report waiting, and a bus that answers again
    backlog = ReportBacklog(_send, retry_seconds=60)
    now = time.time()
    with _Frozen(redis_server, settings):
        backlog.report(_report(1, BotStatus.STOPPING, now))
    settings.REDIS_URL = redis_server.url
    # when: a newer report of another bot comes before the retry is due
    sent_now = backlog.report(_report(2, BotStatus.RUNNING, now + 1))
    # then: it waits behind the first; both leave in order at the forced flush (the gateway's shutdown)
    assert sent_now is False and _sent() == []
    assert backlog.drain(timeout=5) is True
    assert _sent() == [(1, "stopping"), (2, "running")]


def test_the_backlog_is_bounded_and_drops_its_oldest(redis_server, settings):
    backlog = ReportBacklog(_send, limit=2, retry_seconds=0)
    now = time.time()
    with _Frozen(redis_server, settings):
        for bot_id in (1, 2, 3):
            backlog.report(_report(bot_id, BotStatus.RUNNING, now + bot_id))
    settings.REDIS_URL = redis_server.url
    assert backlog.dropped == 1 and backlog.flush() == 2
    assert _sent() == [(2, "running"), (3, "running")]


# -- the snapshot ----------------------------------------------------------------------------------
def _recorded(bot: Bot, status: BotStatus, *, pid: int | None, host: str = "alpha", at: float) -> None:
    Bot.objects.filter(pk=bot.pk).update(status=status, pid=pid, host=host, status_at=at)


def _snapshot(at: float, *beats: Any, host: str = "alpha") -> Any:
    return build_gateway_heartbeat(bots=list(beats), at=at, host=host)


@pytest.mark.django_db
def test_a_snapshot_stops_bots_it_does_not_list_and_corrects_those_it_does(user):
    # given: records left wrong by lost reports, on host alpha, and one bot of another host
    dead_running, stuck_stopping, wrong_pid, unlisted_stopped, elsewhere, true = (
        make_bot(owner=user) for _ in range(6)
    )
    before = time.time() - 60
    _recorded(dead_running, BotStatus.RUNNING, pid=4242, at=before)
    _recorded(stuck_stopping, BotStatus.STOPPING, pid=4343, at=before)
    _recorded(wrong_pid, BotStatus.RUNNING, pid=1, at=before)
    _recorded(unlisted_stopped, BotStatus.STOPPED, pid=None, at=before)
    _recorded(elsewhere, BotStatus.RUNNING, pid=77, host="beta", at=before)
    _recorded(true, BotStatus.RUNNING, pid=55, at=before)
    Bot.objects.filter(pk=true.pk).update(status_detail="running since the morning")
    at = time.time()
    snapshot = _snapshot(
        at,
        build_bot_beat(bot_id=wrong_pid.pk, pid=2, status=BotStatus.RUNNING, started_at=at - 5, restart_count=1,
                       answered_at=at - 1),
        build_bot_beat(bot_id=true.pk, pid=55, status=BotStatus.RUNNING, answered_at=at - 0.5),
    )  # fmt: skip

    # when
    corrected = bot_snapshot_apply(snapshot=snapshot)

    # then: no bot without a process reads running or stopping; the listed ones read what the gateway sees
    assert sorted(corrected) == sorted([dead_running.pk, stuck_stopping.pk, wrong_pid.pk])
    rows = {bot.pk: bot for bot in Bot.objects.all()}
    assert (rows[dead_running.pk].status, rows[dead_running.pk].pid) == ("stopped", None)
    assert "snapshot does not list it (was running)" in rows[dead_running.pk].status_detail
    assert (rows[stuck_stopping.pk].status, rows[stuck_stopping.pk].pid) == ("stopped", None)
    assert (rows[wrong_pid.pk].status, rows[wrong_pid.pk].pid, rows[wrong_pid.pk].restart_count) == ("running", 2, 1)
    assert rows[wrong_pid.pk].status_at == at
    assert rows[wrong_pid.pk].api_answered_at.timestamp() == pytest.approx(at - 1, abs=1e-3)
    assert (rows[elsewhere.pk].status, rows[elsewhere.pk].pid) == ("running", 77)  # beta's gateway says for it
    assert rows[unlisted_stopped.pk].status_at == before
    # The true record is left as it was, its heartbeats brought up to date.
    assert rows[true.pk].status_detail == "running since the morning" and rows[true.pk].status_at == before
    assert rows[true.pk].gateway_seen_at.timestamp() == pytest.approx(at, abs=1e-3)
    assert rows[true.pk].api_answered_at.timestamp() == pytest.approx(at - 0.5, abs=1e-3)


@pytest.mark.django_db
def test_a_report_newer_than_the_snapshot_wins_whichever_arrives_first(user):
    # given: a bot that started just after the snapshot was taken
    bot = make_bot(owner=user)
    snapshot_at = time.time()
    _recorded(bot, BotStatus.STOPPED, pid=None, at=snapshot_at - 30)
    starting = build_bot_status(bot_id=bot.pk, status=BotStatus.STARTING, at=snapshot_at + 0.01, host="alpha",
                                pid=999)  # fmt: skip
    # when: the report is applied first, then the snapshot that does not list the bot yet
    assert bot_status_apply(report=starting)
    corrected = bot_snapshot_apply(snapshot=_snapshot(snapshot_at))
    # then: the snapshot, older, changes nothing
    bot.refresh_from_db()
    assert corrected == [] and (bot.status, bot.pid) == ("starting", 999)
    # and the other way round: a snapshot applied first is overruled by a later report
    _recorded(bot, BotStatus.RUNNING, pid=999, at=snapshot_at - 30)
    assert bot_snapshot_apply(snapshot=_snapshot(snapshot_at)) == [bot.pk]
    assert bot_status_apply(report=build_bot_status(bot_id=bot.pk, status=BotStatus.RUNNING, at=snapshot_at + 1,
                                                    host="alpha", pid=999))  # fmt: skip
    bot.refresh_from_db()
    assert (bot.status, bot.pid) == ("running", 999)


@pytest.mark.django_db
def test_a_start_of_a_bot_recorded_stopping_is_accepted(user, user_api):
    # given: a bot recorded stopping (its stop may be under way, or its process long gone)
    from strategies.library import install_builtin_strategies

    install_builtin_strategies()
    bot = make_bot(owner=user)
    _recorded(bot, BotStatus.STOPPING, pid=4242, at=time.time())
    # when
    response = user_api.post(f"/api/v1/bots/{bot.pk}/start")
    # then: taken; the gateway starts it once no process of it is left
    assert response.status_code == 202 and response.json()["status"] == "start_command_sent"
    bot.refresh_from_db()
    assert bot.desired_state == "running"


@pytest.mark.django_db
def test_a_snapshot_that_overtook_an_error_report_says_the_error_with_its_cause(user):
    # given: a bot recorded running whose error report is still on its way (or was lost)
    bot = make_bot(owner=user)
    Bot.objects.filter(pk=bot.pk).update(desired_state="running")
    _recorded(bot, BotStatus.RUNNING, pid=4242, at=time.time() - 10)
    cause = "Impossible to load Strategy 'Nope'"
    # when: the gateway's snapshot lists it among the bots that ended lately, with its final words
    corrected = bot_snapshot_apply(snapshot=_snapshot(
        time.time(), build_bot_beat(bot_id=bot.pk, pid=None, status=BotStatus.ERROR, restart_count=0, detail=cause)
    ))  # fmt: skip
    # then: error with the cause, and it waits for its owner (not restarted by the next gateway)
    bot.refresh_from_db()
    assert corrected == [bot.pk]
    assert (bot.status, bot.pid, bot.status_detail, bot.desired_state) == ("error", None, cause, "stopped")


@pytest.mark.django_db
def test_an_older_gateways_heartbeat_corrects_nothing(user):
    bot = make_bot(owner=user)
    _recorded(bot, BotStatus.RUNNING, pid=4242, at=time.time() - 10)
    older = {**_snapshot(time.time()), "complete": False}
    assert bot_snapshot_apply(snapshot=older) == []
    bot.refresh_from_db()
    assert (bot.status, bot.pid) == ("running", 4242)

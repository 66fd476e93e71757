"""Events from where they happen, through the real listeners' worker and channel layer, to the right sockets only.

User A's socket hears A's bots, trades, jobs and actions and nothing of B's; a superuser hears both.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import transaction

from analytics.models import Trade
from analytics.notifications import trade_notification
from audit import events
from audit.services import Actor
from bots.commands import Report, build_bot_beat, build_bot_status, build_gateway_heartbeat
from bots.models import Bot
from multibot.redis_client import redis_client
from realtime.services import system_metrics_broadcast
from streams.bus import publish
from streams.catalog import LISTENERS, SYSTEM_EVENTS, TRADING_STATUS
from streams.worker import StreamWorker, discover
from tests import factories
from tests.realtime.conftest import Socket, bearer, run


class Fleet:
    """Two users with a bot each, a superuser, and a token for each of them."""

    def __init__(self) -> None:
        self.a, self.b = factories.make_user(), factories.make_user()
        self.admin = factories.make_user(is_superuser=True)
        self.bot_a, self.bot_b = factories.make_bot(owner=self.a), factories.make_bot(owner=self.b)
        self.tokens = {who: factories.access_token_for(getattr(self, who)) for who in ("a", "b", "admin")}


@pytest.fixture
def fleet() -> Fleet:
    made = Fleet()
    redis_client().flushdb()  # the audit rows of the set-up are not what the tests listen for
    return made


def listeners_handle_everything() -> int:
    """The real listeners' registry and worker, stepped until the streams are drained; entries handled."""
    worker = StreamWorker(registry=discover("listeners"), group=LISTENERS, consumer="test", block_ms=50)
    worker.prepare()
    handled, idle = 0, 0
    while idle < 3:  # three empty reads in a row (50 ms each): drained
        done = worker.step().processed
        handled, idle = handled + done, 0 if done else idle + 1
    worker.close()
    return handled


async def collect(socket: Socket, quiet: float = 0.5) -> list[dict[str, Any]]:
    """Every message until ``quiet`` seconds pass without one (welcome and pings left out)."""
    messages = []
    while not await socket.nothing_arrives(quiet):
        message = await socket.read()
        if message["type"] not in ("welcome", "ping"):
            messages.append(message)
    return messages


def hear(fleet: Fleet, produce: Any) -> dict[str, list[dict[str, Any]]]:
    """Sockets for A, B and the superuser; ``produce`` (sync) publishes, the listeners handle it: what each heard."""

    async def scenario():
        sockets = {who: await Socket(*bearer(token)).open() for who, token in fleet.tokens.items()}
        for socket in sockets.values():
            await socket.read_type("welcome")
        await asyncio.to_thread(produce)
        await asyncio.to_thread(listeners_handle_everything)
        heard = {who: await collect(socket) for who, socket in sockets.items()}
        for socket in sockets.values():
            await socket.close()
        return heard

    return run(scenario)


def test_bot_status_updates_go_to_the_bots_owner_and_the_superusers_only(fleet):
    def produce():
        for bot, pid in ((fleet.bot_a, 4242), (fleet.bot_b, 4343)):
            report = build_bot_status(bot_id=bot.pk, status="running", at=time.time(), host="h1", pid=pid,
                                      started_at=1_767_225_600.0, restart_count=1)  # fmt: skip
            publish(TRADING_STATUS, type=Report.BOT_STATUS, payload=report)

    Bot.objects.filter(pk=fleet.bot_a.pk).update(total_profit="12.5")

    heard = hear(fleet, produce)

    assert [m["type"] for m in heard["a"]] == ["bot_status_update"]
    assert heard["a"][0]["data"] == {
        "bot_id": fleet.bot_a.pk, "bot_name": fleet.bot_a.name, "status": "running", "profit": 12.5, "pid": 4242,
        "started_at": "2026-01-01T00:00:00+00:00", "status_detail": "", "restart_count": 1, "host": "h1",
        "dry_run": True, "stake_currency": "USDT",
    }  # fmt: skip
    assert [m["data"]["bot_id"] for m in heard["b"]] == [fleet.bot_b.pk]
    assert sorted(m["data"]["bot_id"] for m in heard["admin"]) == [fleet.bot_a.pk, fleet.bot_b.pk]


def test_a_stale_status_report_is_not_broadcast(fleet):
    Bot.objects.filter(pk=fleet.bot_a.pk).update(status_at=time.time() + 3600)

    def produce():
        report = build_bot_status(bot_id=fleet.bot_a.pk, status="running", at=time.time(), host="h1", pid=1)
        publish(TRADING_STATUS, type=Report.BOT_STATUS, payload=report)

    heard = hear(fleet, produce)

    assert heard["a"] == [] and heard["admin"] == []


def _open_trade(bot: Bot, trade_id: int) -> Trade:
    return Trade.objects.create(
        bot=bot, bot_name=bot.name, owner=bot.owner, trade_id=trade_id, pair="BTC/USDT", is_open=True, amount=0.01,
        stake_amount=100, open_rate=10_000, open_date=datetime(2026, 1, 1, tzinfo=UTC), stake_currency="USDT",
        dry_run=True, raw={"amount_requested": 0.01},
    )  # fmt: skip


def test_trade_notifications_reach_the_trades_owner_without_the_owner_id(fleet):
    def produce():
        for bot in (fleet.bot_a, fleet.bot_b):
            with transaction.atomic():  # as the trade listener does: announced once the trade commits
                trade_notification(trade=_open_trade(bot, trade_id=1), event="entry")

    heard = hear(fleet, produce)

    [event] = heard["a"]
    assert event["type"] == "trade_notification"
    assert event["data"]["bot_id"] == fleet.bot_a.pk and event["data"]["event"] == "entry"
    assert "owner_id" not in event["data"]
    assert [m["data"]["bot_id"] for m in heard["b"]] == [fleet.bot_b.pk]
    assert sorted(m["data"]["bot_id"] for m in heard["admin"]) == [fleet.bot_a.pk, fleet.bot_b.pk]


def test_job_progress_reaches_the_jobs_owner_only(fleet):
    def produce():
        for job_id, owner in ((1, fleet.a), (2, fleet.b)):
            publish(SYSTEM_EVENTS, type="job_progress", payload={
                "job_id": job_id, "kind": "backtest", "status": "running", "progress": 0.5, "step": "backtesting",
                "attempt": 1, "owner_id": owner.pk,
            })  # fmt: skip

    heard = hear(fleet, produce)

    assert [(m["type"], m["data"]["job_id"]) for m in heard["a"]] == [("job_progress", 1)]
    assert heard["a"][0]["data"] == {"job_id": 1, "kind": "backtest", "status": "running", "progress": 0.5,
                                     "step": "backtesting", "attempt": 1}  # fmt: skip
    assert [m["data"]["job_id"] for m in heard["b"]] == [2]
    assert sorted(m["data"]["job_id"] for m in heard["admin"]) == [1, 2]


def test_audit_events_go_to_the_actor_and_the_superusers_and_system_rows_to_superusers_only(fleet):
    def produce():
        with transaction.atomic():
            events.ws_ticket_issued_event(actor=Actor(user=fleet.a, ip_address="10.0.0.1"), expires_in=30)
            events.ws_ticket_issued_event(actor=Actor(user=fleet.b, ip_address="10.0.0.2"), expires_in=30)
            events.bot_strays_killed_event(actor=Actor(user=None, ip_address=None, name="gateway"), pids=[1])

    heard = hear(fleet, produce)

    [mine] = heard["a"]
    assert mine["type"] == "audit_event"
    assert {key: mine["data"][key] for key in ("action", "resource_type", "resource_id", "status", "user")} == {
        "action": "ws_ticket", "resource_type": "user", "resource_id": str(fleet.a.pk), "status": "success",
        "user": fleet.a.username,
    }  # fmt: skip
    assert mine["data"]["ip_address"] == "10.0.0.1" and isinstance(mine["data"]["at"], float)
    assert "details" not in mine["data"]
    assert [m["data"]["user"] for m in heard["b"]] == [fleet.b.username]
    assert sorted(m["data"]["action"] for m in heard["admin"]) == ["bot_stray_kill", "ws_ticket", "ws_ticket"]


def _recorded_as(beats: list, host: str) -> None:
    """The records agree with the beats: the snapshot corrects nothing, and says only its metrics."""
    for beat in beats:
        Bot.objects.filter(pk=beat["bot_id"]).update(status=beat["status"], pid=beat["pid"], host=host)


def test_a_heartbeat_becomes_one_bot_metrics_event_per_owner(fleet):
    extra = factories.make_bot(owner=fleet.a)
    _open_trade(fleet.bot_a, trade_id=1), _open_trade(fleet.bot_a, trade_id=2)
    redis_client().flushdb()  # the new bot's audit row

    def produce():
        beats = [
            build_bot_beat(bot_id=fleet.bot_a.pk, pid=11, status="running", cpu_percent=12.345, memory_mb=210.0),
            build_bot_beat(bot_id=extra.pk, pid=12, status="running"),  # a gateway that samples nothing
            build_bot_beat(bot_id=fleet.bot_b.pk, pid=13, status="running", cpu_percent=1, memory_mb=99),
        ]
        _recorded_as(beats, "h1")
        publish(TRADING_STATUS, type=Report.GATEWAY_HEARTBEAT,
                payload=build_gateway_heartbeat(bots=beats, at=time.time(), host="h1"))  # fmt: skip

    heard = hear(fleet, produce)

    [metrics] = heard["a"]
    assert metrics["type"] == "bot_metrics"
    assert metrics["data"]["bots"] == [
        {"bot_id": fleet.bot_a.pk, "cpu_percent": 12.3, "memory_mb": 210.0, "open_trades": 2, "profit": 0.0},
        {"bot_id": extra.pk, "cpu_percent": None, "memory_mb": None, "open_trades": 0, "profit": 0.0},
    ]
    assert [[bot["bot_id"] for bot in m["data"]["bots"]] for m in heard["b"]] == [[fleet.bot_b.pk]]
    assert len(heard["admin"]) == 2  # one per owner


def test_system_metrics_and_stream_health_go_to_everyone(fleet):
    heard = hear(fleet, system_metrics_broadcast)

    for who in ("a", "b", "admin"):
        metrics, health = heard[who]
        assert metrics["type"] == "system_metrics" and set(metrics["data"]) == {"cpu_usage", "memory_usage",
                                                                                "disk_usage"}  # fmt: skip
        assert all(0 <= value <= 100 for value in metrics["data"].values())
        assert health["type"] == "stream_health" and health["data"]["overall_status"] in ("healthy", "degraded")
        names = {stream["name"] for stream in health["data"]["streams"]}
        assert {"trading:mgmt:status", "system:events", "audit:events"} <= names
        assert set(health["data"]["streams"][0]) == {"name", "length", "pending", "lag", "dead_letters", "status"}


def test_a_heartbeat_whose_first_metrics_redis_does_not_take_skips_the_rest_of_that_beat(
    fleet, redis_server, caplog, settings
):
    import logging
    import os
    import signal

    from bots.listeners import handle_gateway_heartbeat
    from streams.bus import Envelope

    # given: three owners' bots in one beat, and a Redis that accepts nothing (stopped, not gone)
    third = factories.make_bot(owner=factories.make_user())
    beats = [build_bot_beat(bot_id=bot.pk, pid=11, status="running") for bot in (fleet.bot_a, fleet.bot_b, third)]
    _recorded_as(beats, "h")
    payload = build_gateway_heartbeat(bots=beats, at=time.time(), host="h")
    beat = Envelope(type=Report.GATEWAY_HEARTBEAT, payload=payload)
    settings.REALTIME = {**settings.REALTIME, "send_timeout_seconds": 0.3}
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        # when
        with caplog.at_level(logging.WARNING, logger="realtime.broadcast"):
            handle_gateway_heartbeat(beat)
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)

    # then: one send waited out its timeout; the other owners' waited for nothing (next beat resamples)
    assert [r.getMessage().split(" ")[0] for r in caplog.records] == ["bot_metrics"]
    assert Bot.objects.filter(pk__in=[b["bot_id"] for b in beats], gateway_seen_at__isnull=False).count() == 3

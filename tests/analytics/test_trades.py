"""trades_apply: the gateway's trade reports become Trade rows, bot totals and trade notifications."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from analytics.models import Trade
from analytics.services import trades_apply
from bots.commands import Report, build_trade_update, deleted_report, trade_report
from multibot.redis_client import redis_client
from streams.bus import publish, stream_key
from streams.catalog import LISTENERS, SYSTEM_EVENTS, TRADING_STATUS
from streams.worker import StreamWorker, discover
from tests.factories import make_bot, make_user

pytestmark = pytest.mark.django_db

OPENED = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


def ft_trade(trade_id: int, *, pair: str = "BTC/USDT", closed: float | None = None, profit: float = 0.0,
             opened: datetime | None = None, close_rate: float = 60_600.0, amount: float = 0.00166,
             ) -> dict[str, Any]:  # fmt: skip
    """A freqtrade trade as its API answers (the fields the report reads, plus a few it carries)."""
    opened = opened or OPENED
    is_open = closed is None
    return {
        "trade_id": trade_id, "pair": pair, "is_open": is_open, "is_short": False, "exchange": "binance",
        "amount": amount, "amount_requested": 0.00166, "stake_amount": 99.6, "open_rate": 60_000.12345678,
        "open_timestamp": int(opened.timestamp() * 1000), "open_date": opened.strftime("%Y-%m-%d %H:%M:%S"),
        "close_rate": None if is_open else close_rate,
        "close_timestamp": None if is_open else int(closed * 1000),
        "profit_abs": (-0.42 if is_open else profit),  # /status: the live profit of an open trade
        "profit_ratio": (-0.004 if is_open else profit / 99.6),
        "exit_reason": "" if is_open else "force_exit",
        "orders": [{"ft_order_side": "buy", "amount": 0.00166, "status": "closed"}],
    }  # fmt: skip


def reports(*trades: dict[str, Any]) -> list[dict[str, Any]]:
    return [trade_report(trade) for trade in trades]


def notifications() -> list[dict[str, Any]]:
    entries = redis_client().xrange(stream_key(SYSTEM_EVENTS))
    return [json.loads(fields["payload"]) for _, fields in entries if fields["type"] == "trade_notification"]


@pytest.fixture
def bot(user: Any) -> Any:
    return make_bot(owner=user, stake_currency="USDT")


@pytest.fixture
def commits(django_capture_on_commit_callbacks: Any) -> Any:
    """Run on-commit callbacks (the notifications) as a real commit would."""

    def apply(**kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return trades_apply(**kwargs)

    return apply


def test_an_opened_trade_becomes_a_row_and_one_entry_notification(bot, commits):
    # when
    result = commits(bot_id=bot.pk, trades=reports(ft_trade(1)), observed_at=time.time())

    # then
    trade = Trade.objects.get(bot=bot, trade_id=1)
    assert (trade.owner_id, trade.bot_name, trade.pair, trade.is_open) == (bot.owner_id, bot.name, "BTC/USDT", True)
    assert trade.open_rate == 60_000.12345678 and trade.amount == 0.00166 and trade.stake_amount == 99.6
    assert trade.profit_abs is None and trade.close_date is None  # the live profit is not a record
    assert trade.dry_run is True and trade.stake_currency == "USDT"
    assert trade.raw["orders"][0]["ft_order_side"] == "buy"
    assert result.created == 1
    [note] = notifications()
    assert note["event"] == "entry" and note["side"] == "buy" and note["bot_id"] == bot.pk
    assert (note["pair"], note["amount"], note["price"], note["owner_id"]) == ("BTC/USDT", 0.00166, 60_000.12345678,
                                                                              bot.owner_id)  # fmt: skip


def test_the_same_update_applied_twice_changes_nothing_and_notifies_once(bot, commits):
    # given
    update = reports(ft_trade(1), ft_trade(2, closed=time.time() - 60, profit=1.5))
    commits(bot_id=bot.pk, trades=update, observed_at=time.time())
    before = list(Trade.objects.filter(bot=bot).order_by("trade_id").values())
    notes = notifications()

    # when: the gateway restarts and re-sends
    result = commits(bot_id=bot.pk, trades=update, observed_at=time.time())

    # then
    assert (result.created, result.updated, result.unchanged, result.notified) == (0, 0, 2, 0)
    assert list(Trade.objects.filter(bot=bot).order_by("trade_id").values()) == before
    assert len(notes) == 3  # trade 1 entered; trade 2 entered and exited
    assert notifications() == notes
    bot.refresh_from_db()
    assert (bot.total_trades, bot.profitable_trades, bot.total_profit) == (1, 1, Decimal("1.5"))


def test_an_open_trade_that_closes_updates_the_totals_and_notifies_its_exit(bot, commits):
    # given
    commits(bot_id=bot.pk, trades=reports(ft_trade(1)), observed_at=time.time() - 20)
    bot.refresh_from_db()
    assert (bot.total_trades, bot.total_profit) == (0, 0)

    # when
    closed_at = time.time() - 5
    result = commits(bot_id=bot.pk, trades=reports(ft_trade(1, closed=closed_at, profit=-2.25, close_rate=59_000.5)),
                     observed_at=time.time())  # fmt: skip

    # then
    trade = Trade.objects.get(bot=bot, trade_id=1)
    assert not trade.is_open and trade.close_rate == 59_000.5 and trade.profit_abs == -2.25
    assert trade.exit_reason == "force_exit" and abs(trade.close_date.timestamp() - closed_at) < 0.001
    assert result.updated == 1
    bot.refresh_from_db()
    assert (bot.total_trades, bot.profitable_trades, bot.total_profit) == (1, 0, Decimal("-2.25"))
    entry, exit_ = notifications()
    assert (entry["event"], exit_["event"], exit_["side"], exit_["price"]) == ("entry", "exit", "sell", 59_000.5)
    assert exit_["profit_abs"] == -2.25


def test_bot_totals_count_closed_trades_and_profitable_ones(bot, commits):
    now = time.time()
    profits = [3.0, -1.25, 0.0, 0.5]  # a break-even trade is not a profitable one
    trades = [ft_trade(i, closed=now - 60 * i, profit=profit) for i, profit in enumerate(profits, 1)] + [ft_trade(5)]

    commits(bot_id=bot.pk, trades=reports(*trades), observed_at=now)

    bot.refresh_from_db()
    assert (bot.total_trades, bot.profitable_trades, bot.total_profit) == (4, 2, Decimal("2.25"))


def test_another_bots_trades_do_not_count(bot, commits, user):
    # given: another bot of the same owner, and a stranger's bot, with the same freqtrade trade ids
    sibling, foreign = make_bot(owner=user), make_bot(owner=make_user())
    now = time.time()
    commits(bot_id=sibling.pk, trades=reports(ft_trade(1, closed=now - 60, profit=10.0)), observed_at=now)
    commits(bot_id=foreign.pk, trades=reports(ft_trade(1, closed=now - 60, profit=20.0)), observed_at=now)

    # when
    commits(bot_id=bot.pk, trades=reports(ft_trade(1, closed=now - 60, profit=-1.0)), observed_at=now)

    # then
    for each in (bot, sibling, foreign):
        each.refresh_from_db()
    assert [(each.total_trades, each.total_profit) for each in (bot, sibling, foreign)] == [
        (1, Decimal("-1")), (1, Decimal("10")), (1, Decimal("20"))]  # fmt: skip
    assert Trade.objects.filter(trade_id=1).count() == 3
    assert Trade.objects.get(bot=foreign).owner_id == foreign.owner_id


def test_a_late_older_report_never_reopens_a_closed_trade(bot, commits):
    now = time.time()
    commits(bot_id=bot.pk, trades=reports(ft_trade(1, closed=now - 10, profit=1.0)), observed_at=now)

    # an update read before the close, applied after it (another listener, a retry)
    result = commits(bot_id=bot.pk, trades=reports(ft_trade(1)), observed_at=now - 30)
    # a report that says open again, however new
    again = commits(bot_id=bot.pk, trades=reports(ft_trade(1)), observed_at=now + 30)

    assert (result.stale, again.stale) == (1, 1)
    assert not Trade.objects.get(bot=bot, trade_id=1).is_open
    bot.refresh_from_db()
    assert bot.total_trades == 1


def test_an_old_history_seen_for_the_first_time_is_recorded_without_notifications(bot, commits):
    long_ago = datetime.now(UTC) - timedelta(days=30)
    old = ft_trade(1, opened=long_ago, closed=(long_ago + timedelta(hours=2)).timestamp(), profit=4.0)

    result = commits(bot_id=bot.pk, trades=reports(old), observed_at=time.time())

    assert result.created == 1 and result.notified == 0 and notifications() == []
    bot.refresh_from_db()
    assert bot.total_trades == 1


def test_a_deleted_bots_trades_stay_with_its_name_and_owner(bot, commits, user):
    commits(bot_id=bot.pk, trades=reports(ft_trade(1, closed=time.time(), profit=1.0)), observed_at=time.time())
    bot_id, name = bot.pk, bot.name

    bot.delete()

    trade = Trade.objects.get(trade_id=1)
    assert (trade.bot_id, trade.bot_name, trade.owner_id) == (None, name, user.pk)
    # and a report that arrives for the deleted bot records nothing
    assert commits(bot_id=bot_id, trades=reports(ft_trade(2)), observed_at=time.time()).created == 0
    assert Trade.objects.count() == 1


def test_an_entry_waiting_to_fill_is_announced_placed_then_filled(bot, commits):
    # given: freqtrade lists the trade as soon as its entry order is placed, with nothing filled
    commits(bot_id=bot.pk, trades=reports(ft_trade(1, amount=0.0)), observed_at=time.time() - 10)
    assert Trade.objects.get(bot=bot, trade_id=1).amount == 0

    # when
    commits(bot_id=bot.pk, trades=reports(ft_trade(1)), observed_at=time.time())

    # then
    placed, filled = notifications()
    assert (placed["event"], placed["filled"], placed["amount"]) == ("entry", False, 0.00166)
    assert (filled["event"], filled["filled"], filled["amount"]) == ("entry_fill", True, 0.00166)
    assert Trade.objects.get(bot=bot, trade_id=1).amount == 0.00166


def test_an_entry_that_never_filled_and_was_removed_is_deleted_and_announced_cancelled(bot, commits):
    commits(bot_id=bot.pk, trades=reports(ft_trade(1, amount=0.0)), observed_at=time.time() - 10)

    result = commits(bot_id=bot.pk, trades=[deleted_report(1)], observed_at=time.time())

    assert result.deleted == 1 and not Trade.objects.filter(bot=bot).exists()
    assert [n["event"] for n in notifications()] == ["entry", "entry_cancel"]


def test_a_deleted_closed_trade_leaves_the_totals(bot, commits):
    now = time.time()
    commits(bot_id=bot.pk, trades=reports(ft_trade(1, closed=now - 60, profit=1.0), ft_trade(2, closed=now - 30,
            profit=2.0)), observed_at=now - 5)  # fmt: skip

    commits(bot_id=bot.pk, trades=[deleted_report(1)], observed_at=now)

    bot.refresh_from_db()
    assert (bot.total_trades, bot.total_profit) == (1, Decimal("2"))
    assert [n["event"] for n in notifications()].count("entry_cancel") == 0  # it had filled: no cancel


def test_a_reused_trade_id_is_another_trade(bot, commits):
    # given: an entry that never filled; freqtrade removes it and gives its id to the next trade
    commits(bot_id=bot.pk, trades=reports(ft_trade(3, amount=0.0, pair="ETH/USDT")), observed_at=time.time() - 10)

    # when: the gateway sees only the new trade 3
    later = OPENED + timedelta(minutes=11)
    result = commits(bot_id=bot.pk, trades=reports(ft_trade(3, opened=later)), observed_at=time.time())

    # then
    row = Trade.objects.get(bot=bot, trade_id=3)
    assert (row.pair, row.open_date, row.amount) == ("BTC/USDT", later, 0.00166)
    assert (result.deleted, result.created) == (1, 1)
    assert [(n["event"], n["pair"]) for n in notifications()] == [
        ("entry", "ETH/USDT"), ("entry_cancel", "ETH/USDT"), ("entry", "BTC/USDT")]  # fmt: skip


def test_the_listeners_apply_a_trade_update_once_per_envelope(bot, django_capture_on_commit_callbacks):
    # given: the gateway's envelope on its stream, delivered to the listeners' consumer group
    payload = build_trade_update(bot_id=bot.pk, trades=reports(ft_trade(7)), at=time.time(), host="here")
    publish(TRADING_STATUS, type=Report.TRADE_UPDATE, payload=payload, request_id="update-7")
    publish(TRADING_STATUS, type=Report.TRADE_UPDATE, payload=payload, request_id="update-7")  # redelivered
    publish(TRADING_STATUS, type=Report.TRADE_UPDATE, payload=payload)  # re-sent by a new gateway
    worker = StreamWorker(
        registry=discover("listeners"),
        group=LISTENERS,
        consumer="test",
        streams=[TRADING_STATUS],
        block_ms=0,
    )
    try:
        worker.prepare()
        # when
        with django_capture_on_commit_callbacks(execute=True):
            result = worker.read_new(block_ms=0)
    finally:
        worker.close()

    # then
    assert (result.processed, result.skipped, result.dead) == (2, 1, 0)
    assert Trade.objects.filter(bot=bot, trade_id=7, is_open=True).count() == 1
    assert [note["trade_id"] for note in notifications()] == [7]

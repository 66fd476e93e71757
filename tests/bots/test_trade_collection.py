"""Trade collection end to end: real freqtrade bots on the replay exchange, the gateway and the listeners.

A bot's trades reach analytics.Trade through the gateway's collector, the trading status stream and the
listeners; entries and exits are announced on system:events.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psutil
import pytest

from analytics.models import BotBalance, Trade
from bots.ftclient import client_for as bot_api
from bots.gateway.trades import TradeCollector
from bots.models import Bot
from bots.workspace import workspace_for
from multibot.redis_client import redis_client
from strategies.library import library_dir
from streams.bus import stream_key
from streams.catalog import SYSTEM_EVENTS
from tests.factories import client_for, make_bot, make_user
from tests.support.freqtrade import ALWAYS_IN
from tests.support.market import store_history
from tests.support.processes import ROOT, database_url, server_env, wait_for
from tests.support.replay import replay_exchange, stop

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# AlwaysIn's entries wait at the bid for the price to come down (a minute or more on the replay
# market); this one's bid crosses the spread, so its entries fill the moment they are placed.
FILL_AT_ONCE = (
    ALWAYS_IN.replace("class AlwaysIn(", "class FillAtOnce(")
    + """
    def custom_entry_price(self, pair, trade, current_time, proposed_rate, entry_tag, side, **kwargs) -> float:
        return proposed_rate * 1.003
"""
)


@pytest.fixture(scope="module")
def replay_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("trades-replay")
    store_history(home / "data" / "replay")
    with replay_exchange(home) as url:
        yield url


@pytest.fixture
def bots_started() -> Iterator[list[Bot]]:
    """Bots the test starts; their freqtrade processes (children of the gateway) are killed after it."""
    started: list[Bot] = []
    yield started
    for bot in started:
        marker = str(workspace_for(bot.pk).config)
        for process in psutil.process_iter(["cmdline"]):
            if marker in (process.info["cmdline"] or []):
                try:
                    os.killpg(os.getpgid(process.pid), signal.SIGKILL)  # the bot runs in its own group
                except (ProcessLookupError, PermissionError):
                    pass


@pytest.fixture
def fleet(replay_url: str, committed_db: None, bots_started: list[Bot]) -> Iterator[None]:
    """The gateway (collecting trades every second) and the listeners, as real processes."""
    (library_dir() / "always_in.py").write_text(ALWAYS_IN)
    (library_dir() / "fill_at_once.py").write_text(FILL_AT_ONCE)
    env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url(),
                     MULTIBOT_REPLAY_URL=replay_url, MULTIBOT_BOT_STOP_GRACE_SECONDS="5",
                     MULTIBOT_TRADE_POLL_SECONDS="1")  # fmt: skip
    processes = [subprocess.Popen([sys.executable, "manage.py", command], cwd=ROOT, env=env)
                 for command in ("run_listeners", "run_gateway")]  # fmt: skip
    try:
        yield
    finally:
        for process in processes:
            stop(process)


def _notifications(bot: Bot, event: str) -> list[dict[str, Any]]:
    entries = redis_client().xrange(stream_key(SYSTEM_EVENTS))
    payloads = [json.loads(fields["payload"]) for _, fields in entries if fields["type"] == "trade_notification"]
    return [p for p in payloads if p["bot_id"] == bot.pk and p["event"] == event]


def _open_trades(bot: Bot) -> dict[int, dict[str, Any]]:
    with bot_api(bot) as api:
        return {trade["trade_id"]: trade for trade in api.status()}


def _filled(bot: Bot, count: int) -> bool:
    trades = _open_trades(bot).values()
    return len(trades) == count and all(trade["amount"] > 0 and not trade["has_open_orders"] for trade in trades)


def _row_matches(bot: Bot, trade: dict[str, Any]) -> bool:
    row = Trade.objects.filter(bot=bot, trade_id=trade["trade_id"]).first()
    return row is not None and row.is_open and (row.pair, row.open_rate, row.amount) == (
        trade["pair"], trade["open_rate"], trade["amount"])  # fmt: skip


def _closed_row(bot: Bot, trade_id: int) -> Trade | None:
    return Trade.objects.filter(bot=bot, trade_id=trade_id, is_open=False).first()


def _start(owner: Any, **fields: Any) -> Bot:
    bot = make_bot(owner=owner, timeframe="1m", **fields)
    assert client_for(owner).post(f"/api/v1/bots/{bot.pk}/start").status_code == 202
    return bot


# embedded_only: the collector, freqtrade's API and the stream; trades_apply on the database runs on both (analytics).
@pytest.mark.embedded_only
def test_running_bots_trades_are_collected_kept_up_to_date_and_announced(fleet, bots_started):
    owner = make_user()
    waiting = _start(owner, strategy_name="AlwaysIn", pair_whitelist=["BTC/USDT"], max_open_trades=1)
    filling = _start(owner, strategy_name="FillAtOnce", pair_whitelist=["BTC/USDT", "ETH/USDT"], max_open_trades=2)
    bots_started += [waiting, filling]
    wait_for(lambda: Bot.objects.filter(pk__in=[waiting.pk, filling.pk], status="running").count() == 2, 120,
             "both bots to run")  # fmt: skip

    # An open trade appears as the bot itself reports it, and its entry is announced.
    wait_for(lambda: len(_open_trades(waiting)) == 1, 90, "AlwaysIn to open a trade")
    wait_for(lambda: all(_row_matches(waiting, trade) for trade in _open_trades(waiting).values()), 30,
             "the open trade to be collected as /api/v1/status reports it")  # fmt: skip
    row = Trade.objects.get(bot=waiting, is_open=True)
    assert (row.owner_id, row.bot_name, row.dry_run, row.stake_currency) == (owner.pk, waiting.name, True, "USDT")
    wait_for(lambda: _notifications(waiting, "entry"), 15, "the entry's trade_notification")
    [entry] = _notifications(waiting, "entry")
    assert (entry["trade_id"], entry["pair"], entry["side"], entry["price"]) == (row.trade_id, "BTC/USDT", "buy",
                                                                                 row.open_rate)  # fmt: skip

    # A trade freqtrade deletes goes (freqtrade may give its id to the next trade: that is another row).
    with bot_api(waiting) as api:
        assert api.request("DELETE", f"/api/v1/trades/{row.trade_id}").status_code == 200
    wait_for(lambda: not Trade.objects.filter(pk=row.pk).exists(), 30, "the deleted trade's row to go")

    # Trades that close (out of id order: the later first) are updated, counted and announced.
    wait_for(lambda: _filled(filling, 2), 90, "FillAtOnce to hold both pairs")
    first, second = sorted(_open_trades(filling))
    for trade_id in (second, first):
        with bot_api(filling) as api:
            exit_ = api.request("POST", "/api/v1/forceexit", json={"tradeid": str(trade_id), "ordertype": "market"})
        assert exit_.status_code == 200, exit_.text
        wait_for(lambda trade_id=trade_id: _closed_row(filling, trade_id), 60, f"trade {trade_id} to close")
    with bot_api(filling) as api:
        closed = {trade["trade_id"]: trade for trade in api.trades()["trades"]}
    rows = [_closed_row(filling, trade_id) for trade_id in (first, second)]
    for row in rows:
        ft = closed[row.trade_id]
        assert (row.profit_abs, row.close_rate, row.exit_reason) == (ft["profit_abs"], ft["close_rate"], "force_exit")
    filling.refresh_from_db()
    assert filling.total_trades == 2
    assert filling.profitable_trades == sum(1 for row in rows if row.profit_abs > 0)
    assert filling.total_profit == Decimal(repr(rows[0].profit_abs + rows[1].profit_abs)).quantize(Decimal("1E-8"))
    wait_for(lambda: {n["trade_id"] for n in _notifications(filling, "exit")} == {first, second}, 15, "the exits")
    waiting.refresh_from_db()
    assert waiting.total_trades == 0  # another bot's trades do not count

    # A closed trade deleted in freqtrade leaves the records and the totals.
    with bot_api(filling) as api:
        assert api.request("DELETE", f"/api/v1/trades/{second}").status_code == 200
    wait_for(lambda: not _closed_row(filling, second), 30, "the deleted closed trade's row to go")
    filling.refresh_from_db()
    assert (filling.total_trades, filling.total_profit) == (1, Decimal(repr(rows[0].profit_abs)).quantize(
        Decimal("1E-8")))  # fmt: skip

    # A collector sends a bot's trades once, then only what changed.
    # freqtrade locks a pair until the next candle after an exit: up to a minute on 1m candles.
    wait_for(lambda: _filled(filling, 2), 120, "FillAtOnce to be back in both pairs")
    sent: list[dict[str, Any]] = []
    collector = TradeCollector(publish=sent.append, poll_seconds=0)
    trades = {first, *_open_trades(filling)}
    assert collector.collect([filling.pk]) == {filling.pk: 3}
    assert sorted(trade["trade_id"] for update in sent for trade in update["trades"]) == sorted(trades)
    assert collector.collect([filling.pk]) == {filling.pk: 0}


def test_a_running_bots_balance_lands_as_freqtrade_reports_it_with_its_open_trades_prices(fleet, bots_started):
    # given: a bot that holds a filled trade
    bot = _start(make_user(), strategy_name="FillAtOnce", pair_whitelist=["BTC/USDT"], max_open_trades=1)
    bots_started.append(bot)
    wait_for(lambda: Bot.objects.filter(pk=bot.pk, status="running").exists(), 120, "the bot to run")
    wait_for(lambda: _filled(bot, 1), 90, "FillAtOnce to hold BTC/USDT")
    [trade_id] = _open_trades(bot)

    # when: the gateway's rounds read its balance
    wait_for(lambda: str(trade_id) in getattr(BotBalance.objects.filter(bot=bot).first(), "open_trades", {}), 30,
             "the balance with the open trade to be collected")  # fmt: skip

    # then: freqtrade's own figures, as its /balance gives them now (prices move: the total within a cent)
    row = BotBalance.objects.get(bot=bot)
    with bot_api(bot) as api:
        balance, [status] = api.balance(), api.status()
    stake = next(c for c in balance["currencies"] if c["currency"] == "USDT")
    assert (row.stake_currency, row.starting_capital) == ("USDT", balance["starting_capital"])
    assert row.total == pytest.approx(balance["total"], abs=0.01) and row.free == pytest.approx(stake["free"])
    assert row.starting_capital == pytest.approx(990.0, rel=1e-3)  # the 1000 wallet at tradable_balance_ratio 0.99
    mark = row.open_trades[str(trade_id)]
    assert mark["current_rate"] == pytest.approx(status["current_rate"], rel=0.01)
    assert time.time() - row.read_at.timestamp() < 30
    # A collector of its own sends the balance once, in the last update of its round.
    sent: list[dict[str, Any]] = []
    TradeCollector(publish=sent.append, poll_seconds=0).collect([bot.pk])
    assert [("balance" in update) for update in sent] == [False] * (len(sent) - 1) + [True]
    assert sent[-1]["balance"]["starting_capital"] == balance["starting_capital"]

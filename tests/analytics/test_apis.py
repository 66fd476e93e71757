"""The analytics API: figures per (stake_currency, dry_run) group, scoped to the caller, filtered and validated."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from freqtrade.data import metrics as ft

from analytics.services import bot_balance_record, trades_apply
from bots.commands import Report, balance_report, build_trade_update, trade_report
from streams.bus import publish
from streams.catalog import LISTENERS, TRADING_STATUS
from streams.worker import StreamWorker, discover
from tests.factories import make_bot

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC).replace(microsecond=0)
CAPITAL = 990.0  # freqtrade's starting capital of a 1000 dry-run wallet (tradable_balance_ratio 0.99)
PATHS = ("performance", "risk", "portfolio", "profit", "trades")


def ft_trade(trade_id: int, *, pair: str = "BTC/USDT", opened: datetime, closed: datetime | None = None,
             profit: float = 0.0, amount: float = 0.002, open_rate: float = 50_000.0,
             current_rate: float = 50_500.0) -> dict[str, Any]:  # fmt: skip
    """A freqtrade trade as /status (open) or /trades (closed) answers it."""
    is_open = closed is None
    stake = amount * open_rate
    return {
        "trade_id": trade_id, "pair": pair, "is_open": is_open, "is_short": False, "amount": amount,
        "stake_amount": stake, "open_rate": open_rate, "open_timestamp": int(opened.timestamp() * 1000),
        "close_rate": None if is_open else open_rate * (1 + profit / stake),
        "close_timestamp": None if is_open else int(closed.timestamp() * 1000),
        "current_rate": current_rate if is_open else None,
        "profit_abs": amount * (current_rate - open_rate) if is_open else profit,
        "profit_ratio": (current_rate / open_rate - 1) if is_open else profit / stake,
        "exit_reason": "" if is_open else "roi",
    }  # fmt: skip


def collect(bot: Any, *trades: dict[str, Any]) -> None:
    """The trades as the gateway's collector reports them, applied as the listeners apply them."""
    trades_apply(bot_id=bot.pk, trades=[trade_report(trade) for trade in trades], observed_at=time.time())


def record_balance(bot: Any, *, total: float, free: float, open_trades: list[dict[str, Any]], stake: str = "USDT",
                   capital: float = CAPITAL) -> None:  # fmt: skip
    answer = {"stake": stake, "total": total, "starting_capital": capital,
              "currencies": [{"currency": stake, "free": free, "balance": free, "used": 0.0}]}  # fmt: skip
    bot_balance_record(bot_id=bot.pk, balance=balance_report(answer, open_trades), observed_at=time.time())


def data(api: Any, path: str, **params: Any) -> Any:
    response = api.get(f"/api/v1/analytics/{path}", params)
    assert response.status_code == 200, response.content
    return response.json()


def closed_history() -> list[dict[str, Any]]:
    """Closed trades over the last days: two in the last 24 hours, five in the last week, six in all."""
    ago = lambda **delta: NOW - timedelta(**delta)  # noqa: E731
    return [
        ft_trade(1, opened=ago(days=40), closed=ago(days=39), profit=7.0),
        ft_trade(2, opened=ago(days=6), closed=ago(days=5, hours=20), profit=-3.5),
        ft_trade(3, opened=ago(days=4), closed=ago(days=3), profit=2.25),
        ft_trade(4, pair="ETH/USDT", opened=ago(days=3), closed=ago(days=2, hours=12), profit=-1.0),
        ft_trade(5, opened=ago(hours=20), closed=ago(hours=10), profit=4.0),
        ft_trade(6, pair="ETH/USDT", opened=ago(hours=9), closed=ago(hours=2), profit=-0.5),
    ]


@pytest.fixture
def bot(user: Any) -> Any:
    bot = make_bot(owner=user, pair_whitelist=["BTC/USDT", "ETH/USDT"])
    collect(bot, *closed_history())
    return bot


def test_performance_counts_the_windows_closed_trades_and_the_open_ones(user_api, bot):
    collect(bot, ft_trade(7, opened=NOW - timedelta(minutes=5)))

    day = data(user_api, "performance")
    week = data(user_api, "performance", window="7d")
    ever = data(user_api, "performance", window="all")

    assert day["timeframe"] == "24h" and week["timeframe"] == "7d"
    [entry] = day["data"]
    assert (entry["stake_currency"], entry["dry_run"]) == ("USDT", True)
    assert (entry["total_trades"], entry["profitable_trades"], entry["win_rate"]) == (2, 1, 50.0)
    assert entry["profit_abs"] == pytest.approx(3.5) and entry["open_trades"] == 1
    assert entry["profit_pct"] == pytest.approx(3.5 / CAPITAL * 100)
    assert entry["avg_profit"] == pytest.approx((4.0 / 100 - 0.5 / 100) / 2 * 100)  # stakes of 100
    assert week["data"][0]["total_trades"] == 5 and week["data"][0]["profit_abs"] == pytest.approx(1.25)
    assert ever["data"][0]["total_trades"] == 6 and ever["data"][0]["profitable_trades"] == 3


def test_risk_is_freqtrades_own_on_the_windows_trades(user_api, bot):
    [entry] = data(user_api, "risk", window="7d")["data"]

    # freqtrade's functions on the same five trades, over the period they span
    trades = [t for t in closed_history() if t["close_timestamp"] / 1000 >= (NOW - timedelta(days=7)).timestamp()]
    df = pd.DataFrame({
        "close_date": [datetime.fromtimestamp(t["close_timestamp"] / 1000, UTC) for t in trades],
        "profit_abs": [t["profit_abs"] for t in trades],
    })  # fmt: skip
    dates = {"min_date": datetime.fromtimestamp(trades[0]["open_timestamp"] / 1000, UTC),
             "max_date": df["close_date"].max(), "starting_balance": CAPITAL}  # fmt: skip
    drawdown = ft.calculate_max_drawdown(df, value_col="profit_abs", starting_balance=CAPITAL)
    assert entry["sharpe_ratio"] == pytest.approx(ft.calculate_sharpe(df, **dates), rel=1e-12)
    assert entry["sortino_ratio"] == pytest.approx(ft.calculate_sortino(df, **dates), rel=1e-12)
    assert entry["calmar_ratio"] == pytest.approx(ft.calculate_calmar(df, **dates), rel=1e-12)
    assert entry["max_drawdown"] == pytest.approx(drawdown.relative_account_drawdown * 100, rel=1e-12)
    assert entry["max_drawdown_abs"] == pytest.approx(3.5)
    assert (entry["trades"], entry["days"], entry["starting_capital"]) == (5, 5, CAPITAL)


def test_profit_series_are_daily_and_cumulative_per_bot_and_combined(user, user_api, bot):
    sibling = make_bot(owner=user)
    collect(sibling, ft_trade(1, opened=NOW - timedelta(hours=3), closed=NOW - timedelta(hours=1), profit=1.5))

    [entry] = data(user_api, "profit", window="7d")["data"]

    combined = entry["combined"]
    assert sum(point["profit_abs"] for point in combined["daily"]) == pytest.approx(1.25 + 1.5)
    assert combined["cumulative"][-1]["profit_abs"] == pytest.approx(2.75)
    days = [point["date"] for point in combined["daily"]]
    assert days == sorted(days) and len(days) == len(set(days))
    assert days[-1] == NOW.date().isoformat() or days[-1] == (NOW - timedelta(hours=1)).date().isoformat()
    by_bot = {series["bot_id"]: series for series in entry["bots"]}
    assert set(by_bot) == {bot.pk, sibling.pk} and by_bot[sibling.pk]["bot_name"] == sibling.name
    assert by_bot[sibling.pk]["cumulative"][-1]["profit_abs"] == pytest.approx(1.5)
    assert by_bot[bot.pk]["cumulative"][-1]["profit_abs"] == pytest.approx(1.25)


def test_dry_and_live_and_each_stake_currency_are_separate_entries_never_summed(user, user_api, bot):
    btc = make_bot(owner=user, stake_currency="BTC", pair_whitelist=["ETH/BTC"])
    live = make_bot(owner=user, exchange="binance", dry_run=False, exchange_key="k", exchange_secret="s",
                    pair_whitelist=["BTC/USDT"])  # fmt: skip
    soon = NOW - timedelta(hours=1)
    collect(btc, ft_trade(1, pair="ETH/BTC", opened=soon, closed=soon, profit=0.001, amount=1, open_rate=0.05))
    collect(live, ft_trade(1, opened=soon, closed=soon, profit=9.0))

    entries = data(user_api, "performance")["data"]

    groups = [(entry["stake_currency"], entry["dry_run"]) for entry in entries]
    assert groups == [("BTC", True), ("USDT", True), ("USDT", False)]  # dry-run first, then by currency
    profits = {group: entry["profit_abs"] for group, entry in zip(groups, entries, strict=True)}
    assert profits[("BTC", True)] == pytest.approx(0.001)
    assert profits[("USDT", True)] == pytest.approx(3.5)
    assert profits[("USDT", False)] == pytest.approx(9.0)
    # a live bot's wallet is unknown until its balance is read: no percentage rather than a made-up one
    assert entries[2]["profit_pct"] is None and entries[2]["starting_capital"] == 0
    for path in ("risk", "portfolio", "profit"):
        assert [(e["stake_currency"], e["dry_run"]) for e in data(user_api, path)["data"]] == groups
    only_live = data(user_api, "performance", dry_run="false", stake_currency="usdt")["data"]
    assert [(e["stake_currency"], e["dry_run"]) for e in only_live] == [("USDT", False)]
    assert [e["stake_currency"] for e in data(user_api, "performance", bot=btc.pk)["data"]] == ["BTC"]


def test_another_user_sees_none_of_my_figures_and_my_bot_is_a_404_to_them(user_api, other_api, admin_api, bot):
    collect(bot, ft_trade(7, opened=NOW - timedelta(minutes=5)))

    for path in PATHS:
        answer = data(other_api, path, window="all")
        assert answer.get("data", []) == [] and answer.get("trades", []) == []
        refused = other_api.get(f"/api/v1/analytics/{path}", {"bot": bot.pk})
        assert refused.status_code == 404 and refused.json() == {"detail": "Bot not found"}
        # the owner and a superuser see them
        assert user_api.get(f"/api/v1/analytics/{path}", {"bot": bot.pk}).status_code == 200
    assert data(admin_api, "performance", window="all", bot=bot.pk)["data"][0]["total_trades"] == 6
    assert data(admin_api, "trades", window="all")["total"] == 7


@pytest.mark.parametrize(
    ("params", "field"),
    [({"window": "1y"}, "window"), ({"dry_run": "yes"}, "dry_run"), ({"bot": "seven"}, "bot"), ({"bot": "0"}, "bot"),
     ({"stake_currency": "US-DT"}, "stake_currency"), ({"window": "24H"}, "window")],
)  # fmt: skip
def test_a_bad_filter_is_a_422_naming_it(user_api, params, field):
    for path in PATHS:
        response = user_api.get(f"/api/v1/analytics/{path}", params)

        assert response.status_code == 422, (path, response.content)
        [error] = response.json()["detail"]
        assert error["loc"] == ["query", field] and error["input"] == params[field]


def test_an_empty_filter_is_no_filter(user_api, bot):
    answer = data(user_api, "performance", window="", bot="", stake_currency="", dry_run="")

    assert answer["timeframe"] == "24h" and answer["data"][0]["total_trades"] == 2


@pytest.mark.parametrize("params", [{"is_open": "1"}, {"page": "0"}, {"per_page": "501"}])
def test_a_bad_trades_query_is_a_422(user_api, params):
    response = user_api.get("/api/v1/analytics/trades", params)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", *params]


def test_the_figures_need_a_login(api):
    for path in PATHS:
        assert api.get(f"/api/v1/analytics/{path}").status_code == 401


def test_trades_list_open_trades_at_their_current_price_first_then_the_windows_closed_ones(user_api, bot):
    opened = NOW - timedelta(minutes=30)
    collect(bot, ft_trade(7, opened=opened, current_rate=50_500.0))
    # the next round's balance carries the price since: 51 000
    record_balance(bot, total=1003.0, free=900.0, open_trades=[ft_trade(7, opened=opened, current_rate=51_000.0)])

    answer = data(user_api, "trades")
    closed_week = data(user_api, "trades", window="7d", is_open="false", per_page=2, page=2)

    assert (answer["total"], answer["page"], answer["per_page"]) == (3, 1, 50)
    first, *closed = answer["trades"]
    assert (first["trade_id"], first["is_open"], first["bot_id"], first["bot_name"]) == (7, True, bot.pk, bot.name)
    assert first["current_rate"] == 51_000.0 and first["profit_abs"] == pytest.approx(0.002 * 1000)
    assert first["close_date"] is None and first["side"] == "long" and first["dry_run"] is True
    assert [t["trade_id"] for t in closed] == [6, 5]  # newest close first
    assert closed[0]["profit_abs"] == -0.5 and closed[0]["exit_reason"] == "roi" and closed[0]["current_rate"] is None
    assert closed_week["total"] == 5 and [t["trade_id"] for t in closed_week["trades"]] == [4, 3]
    assert [t["trade_id"] for t in data(user_api, "trades", is_open="true")["trades"]] == [7]


def test_portfolio_values_what_freqtrade_reports_and_says_where_each_bots_balance_comes_from(user, user_api, bot):
    fresh = make_bot(owner=user)  # never collected
    opened = NOW - timedelta(minutes=30)
    collect(bot, ft_trade(7, opened=opened), ft_trade(8, pair="ETH/USDT", opened=opened, amount=0.1, open_rate=2000,
                                                      current_rate=1990.0))  # fmt: skip
    marks = [ft_trade(7, opened=opened, current_rate=51_000.0),
             ft_trade(8, pair="ETH/USDT", opened=opened, amount=0.1, open_rate=2000, current_rate=1990.0)]  # fmt: skip
    record_balance(bot, total=1005.25, free=806.5, open_trades=marks)

    [entry] = data(user_api, "portfolio")["data"]

    # freqtrade's totals, never recomputed: the collected bot's plus the fresh bot's starting wallet
    assert entry["total_value"] == pytest.approx(1005.25 + 1000.0)
    assets = {asset["symbol"]: asset for asset in entry["assets"]}
    assert assets["BTC/USDT"] == pytest.approx({"symbol": "BTC/USDT", "amount": 0.002, "value": 0.002 * 51_000,
                                                "profit": 0.002 * 1000})  # fmt: skip
    assert assets["ETH/USDT"]["value"] == pytest.approx(199.0) and assets["ETH/USDT"]["profit"] == pytest.approx(-1.0)
    assert assets["USDT"] == {"symbol": "USDT", "amount": 806.5 + 1000.0, "value": 806.5 + 1000.0, "profit": 0.0}
    # realised in the window (3.5) plus open (2 - 1)
    assert entry["total_profit"] == pytest.approx(4.5)
    assert entry["profit_percentage"] == pytest.approx(4.5 / (2 * CAPITAL) * 100)
    sources = {b["bot_id"]: (b["balance_source"], b["read_at"] is not None) for b in entry["bots"]}
    assert sources == {bot.pk: ("bot", True), fresh.pk: ("starting_wallet", False)}


def test_an_older_balance_report_does_not_replace_a_newer_one(bot):
    answer = {"stake": "USDT", "total": 1001.0, "starting_capital": CAPITAL, "currencies": []}
    assert bot_balance_record(bot_id=bot.pk, balance=balance_report(answer, []), observed_at=200.0) is not None

    late = bot_balance_record(bot_id=bot.pk, balance=balance_report({**answer, "total": 5.0}, []), observed_at=100.0)

    assert late is None
    assert bot.balance.total == 1001.0 and bot.balance.read_at == datetime.fromtimestamp(200.0, UTC)


def test_the_listeners_keep_the_balance_a_trade_update_carries(bot):
    # given: a round in which only the balance moved (no trade changed), as the gateway publishes it
    answer = {"stake": "USDT", "total": 1004.5, "starting_capital": CAPITAL,
              "currencies": [{"currency": "USDT", "free": 1004.5, "balance": 1004.5, "used": 0.0}]}  # fmt: skip
    update = build_trade_update(bot_id=bot.pk, trades=[], at=time.time(), host="here",
                                balance=balance_report(answer, []))  # fmt: skip
    publish(TRADING_STATUS, type=Report.TRADE_UPDATE, payload=update)
    worker = StreamWorker(registry=discover("listeners"), group=LISTENERS, consumer="test", streams=[TRADING_STATUS],
                          block_ms=0)  # fmt: skip
    try:
        worker.prepare()
        # when
        result = worker.read_new(block_ms=0)
    finally:
        worker.close()

    # then
    assert (result.processed, result.dead) == (1, 0)
    assert (bot.balance.total, bot.balance.free, bot.balance.starting_capital) == (1004.5, 1004.5, CAPITAL)


def test_a_bot_moved_to_another_stake_currency_does_not_bring_its_old_wallet_along(user, user_api, bot):
    from audit.services import Actor
    from bots.services import bot_update
    from marketdata.models import CandleSet

    # given: a USDT bot whose wallet was read, and a BTC market on the replay exchange
    record_balance(bot, total=1005.25, free=1005.25, open_trades=[])
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    CandleSet.objects.create(exchange="replay", pair="ETH/BTC", timeframe="1m", start=moment, end=moment,
                             records=0, source=CandleSet.Source.DEMO, synthetic=True)  # fmt: skip

    # when: it is reconfigured to trade against BTC
    bot_update(actor=Actor(user=user, ip_address="127.0.0.1"), bot=bot, stake_currency="BTC",
               pair_whitelist=["ETH/BTC"])  # fmt: skip

    # then: the BTC entry does not carry the 1005.25 USDT wallet: the bot counts as never read
    [entry] = data(user_api, "portfolio", stake_currency="BTC")["data"]
    assert entry["total_value"] != pytest.approx(1005.25)
    assert [b["balance_source"] for b in entry["bots"] if b["bot_id"] == bot.pk] == ["starting_wallet"]

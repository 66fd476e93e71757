"""Reading collected trades and balances, scoped to the user, and the figures the analytics API shows.

Scope: a user's own trades (``Trade.owner``, so a deleted bot's trades still count) and own bots;
a superuser's, everyone's. ``bot=<id>`` of a bot the user cannot see is a 404.

Figures are per *group*, one ``(stake_currency, dry_run)`` pair: amounts in different currencies,
or of simulated and real money, are never added together. The groups shown are those of the bots
in scope (as they are configured now) and of the trades in scope, sorted dry-run first, then by
currency. A closed trade belongs to the window by its close date; open trades are now.

Starting capital of a group: the sum over the group's bots of freqtrade's own ``starting_capital``
from the bot's last collected ``/balance`` (for a dry-run bot: its wallet, ``DRY_RUN_WALLET``,
times ``tradable_balance_ratio``, as freqtrade computes it). A bot never collected yet counts with
what freqtrade will report for it: for a dry-run bot that same product (its ``balance_source`` is
``starting_wallet``); a live bot's wallet is unknown until collected (``none``: it adds 0). Trades
of a deleted bot count in the figures but bring no capital.

Portfolio of a group (nothing recomputed that freqtrade reports):
- ``total_value`` = the sum of freqtrade's ``total`` (every currency held, valued in the stake
  currency) over the group's bots; a dry-run bot never collected: its whole starting wallet;
- ``assets``: each pair held by open trades (``amount``, ``value`` = amount * the current rate the
  gateway read with the balance, ``profit`` = freqtrade's unrealised profit of those trades), summed
  over the group's bots, then the stake currency's free balance as its own asset;
- ``total_profit`` = realised profit of the trades closed in the window + unrealised profit of the
  open trades; ``profit_percentage`` = that over the group's starting capital.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce

from analytics import metrics
from analytics.models import BotBalance, Trade
from bots.ftconfig import DRY_RUN_WALLET, TRADABLE_BALANCE_RATIO
from bots.selectors import bot_list
from multibot.errors import NotFoundError

if TYPE_CHECKING:
    from multibot.models import User

WINDOWS: dict[str, timedelta | None] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}
WINDOW_NAMES = tuple(WINDOWS)
DEFAULT_WINDOW = "24h"

Group = tuple[str, bool]  # (stake_currency, dry_run)


@dataclass(frozen=True)
class Filters:
    window: str = DEFAULT_WINDOW
    bot_id: int | None = None
    stake_currency: str | None = None
    dry_run: bool | None = None

    def since(self, now: datetime | None = None) -> datetime | None:
        length = WINDOWS[self.window]
        return None if length is None else (now or datetime.now(UTC)) - length


def trade_list(*, user: User) -> QuerySet[Trade]:
    trades = Trade.objects.all()
    return trades if user.is_superuser else trades.filter(owner=user)


@dataclass(frozen=True)
class BotInScope:
    id: int
    name: str
    stake_currency: str
    dry_run: bool


@dataclass
class Scope:
    trades: QuerySet[Trade]
    bots: list[BotInScope]
    balances: dict[int, BotBalance]
    since: datetime | None

    def closed(self) -> QuerySet[Trade]:
        closed = self.trades.filter(is_open=False, close_date__isnull=False)
        return closed if self.since is None else closed.filter(close_date__gte=self.since)

    def groups(self, *extra: Iterable[Group]) -> list[Group]:
        found = {(bot.stake_currency, bot.dry_run) for bot in self.bots}
        found |= set(self.trades.values_list("stake_currency", "dry_run").distinct().order_by())
        for more in extra:
            found |= set(more)
        return sorted(found, key=lambda group: (not group[1], group[0]))

    def bots_of(self, group: Group) -> list[BotInScope]:
        return [bot for bot in self.bots if (bot.stake_currency, bot.dry_run) == group]

    def balance_source(self, bot: BotInScope) -> str:
        if bot.id in self.balances:
            return "bot"
        return "starting_wallet" if bot.dry_run else "none"

    def starting_capital(self, group: Group) -> float:
        total = 0.0
        for bot in self.bots_of(group):
            balance = self.balances.get(bot.id)
            if balance is not None:
                total += balance.starting_capital
            elif bot.dry_run:
                total += DRY_RUN_WALLET * TRADABLE_BALANCE_RATIO
        return total


def scope(*, user: User, filters: Filters) -> Scope:
    """The trades, bots and balances the filters select among the user's."""
    bots = bot_list(user=user)
    trades = trade_list(user=user)
    if filters.bot_id is not None:
        if not bots.filter(pk=filters.bot_id).exists():
            raise NotFoundError("Bot not found")
        bots, trades = bots.filter(pk=filters.bot_id), trades.filter(bot_id=filters.bot_id)
    if filters.stake_currency:
        bots = bots.filter(stake_currency=filters.stake_currency)
        trades = trades.filter(stake_currency=filters.stake_currency)
    if filters.dry_run is not None:
        bots, trades = bots.filter(dry_run=filters.dry_run), trades.filter(dry_run=filters.dry_run)
    # Only these columns: a bot row broken elsewhere (an unreadable stake) never breaks the figures.
    in_scope = [BotInScope(*row) for row in bots.values_list("id", "name", "stake_currency", "dry_run")]
    balances = {row.bot_id: row for row in BotBalance.objects.filter(bot_id__in=[bot.id for bot in in_scope])}
    return Scope(trades=trades, bots=in_scope, balances=balances, since=filters.since())


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: a figure that is not a number is no figure."""
    return None if value is None or not math.isfinite(value) else value


def _entry(group: Group, **fields: Any) -> dict[str, Any]:
    return {"stake_currency": group[0], "dry_run": group[1], **fields}


def _closed_by_group(scope: Scope) -> dict[Group, list[tuple[int | None, str, metrics.ClosedTrade]]]:
    """The window's closed trades per group, oldest close first: ``(bot_id, bot_name, trade)``."""
    rows = (
        scope.closed()
        .order_by("close_date", "id")
        .values_list(
            "stake_currency", "dry_run", "bot_id", "bot_name", "open_date", "close_date", "profit_abs", "profit_ratio"
        )
    )
    found: dict[Group, list[tuple[int | None, str, metrics.ClosedTrade]]] = defaultdict(list)
    for currency, dry_run, bot_id, bot_name, opened, closed, profit_abs, profit_ratio in rows:
        trade = metrics.ClosedTrade(opened, closed, profit_abs or 0.0, profit_ratio or 0.0)
        found[currency, dry_run].append((bot_id, bot_name, trade))
    return found


def performance_figures(*, user: User, filters: Filters) -> list[dict[str, Any]]:
    selected = scope(user=user, filters=filters)
    closed = _closed_by_group(selected)
    open_counts: dict[Group, int] = defaultdict(int)
    for currency, dry_run in selected.trades.filter(is_open=True).values_list("stake_currency", "dry_run"):
        open_counts[currency, dry_run] += 1
    entries = []
    for group in selected.groups(closed, open_counts):
        trades = [trade for _, _, trade in closed.get(group, [])]
        figures = metrics.performance(trades, starting_capital=selected.starting_capital(group))
        entries.append(_entry(
            group, total_trades=figures.total_trades, profitable_trades=figures.profitable_trades,
            avg_profit=_finite(figures.avg_profit), win_rate=figures.win_rate, profit_abs=_finite(figures.profit_abs),
            profit_pct=_finite(figures.profit_pct), open_trades=open_counts.get(group, 0),
            starting_capital=selected.starting_capital(group),
        ))  # fmt: skip
    return entries


def risk_figures(*, user: User, filters: Filters) -> list[dict[str, Any]]:
    selected = scope(user=user, filters=filters)
    closed = _closed_by_group(selected)
    entries = []
    for group in selected.groups(closed):
        trades = [trade for _, _, trade in closed.get(group, [])]
        capital = selected.starting_capital(group)
        figures = metrics.risk(trades, starting_capital=capital)
        drawdown = figures.max_drawdown
        entries.append(_entry(
            group, max_drawdown=None if drawdown is None else _finite(drawdown * 100),
            max_drawdown_abs=_finite(figures.max_drawdown_abs), sharpe_ratio=_finite(figures.sharpe_ratio),
            sortino_ratio=_finite(figures.sortino_ratio), calmar_ratio=_finite(figures.calmar_ratio),
            days=figures.days, trades=figures.trades, starting_capital=capital,
        ))  # fmt: skip
    return entries


def _series(trades: Iterable[metrics.ClosedTrade]) -> dict[str, list[dict[str, Any]]]:
    daily = metrics.daily_profit(trades)
    return {"daily": _points(daily), "cumulative": _points(metrics.cumulative_profit(daily))}


def _points(series: list[metrics.DailyProfit]) -> list[dict[str, Any]]:
    return [{"date": point.date.isoformat(), "profit_abs": _finite(point.profit_abs)} for point in series]


def profit_series(*, user: User, filters: Filters) -> list[dict[str, Any]]:
    selected = scope(user=user, filters=filters)
    closed = _closed_by_group(selected)
    entries = []
    for group in selected.groups(closed):
        rows = closed.get(group, [])
        by_bot: dict[tuple[int | None, str], list[metrics.ClosedTrade]] = defaultdict(list)
        for bot_id, bot_name, trade in rows:
            by_bot[bot_id, bot_name].append(trade)
        # By bot id; a deleted bot's trades (no id) last.
        keys = sorted(by_bot, key=lambda key: (key[0] is None, key[0] or 0, key[1]))
        bots = [{"bot_id": bot_id, "bot_name": name, **_series(by_bot[bot_id, name])} for bot_id, name in keys]
        entries.append(_entry(group, combined=_series(trade for _, _, trade in rows), bots=bots))
    return entries


@dataclass(frozen=True)
class Mark:
    """An open trade at the current price: from the last balance read, else as the trade was last collected."""

    current_rate: float | None
    profit_abs: float | None
    profit_ratio: float | None


def _mark(trade: Trade, balances: dict[int, BotBalance]) -> Mark:
    balance = balances.get(trade.bot_id) if trade.bot_id is not None else None
    mark = (balance.open_trades.get(str(trade.trade_id)) if balance is not None else None) or {}
    if not mark:
        # /status's answer when the trade was last collected.
        mark = {key: trade.raw.get(key) for key in ("current_rate", "profit_abs", "profit_ratio")}
    numbers = {key: mark.get(key) if isinstance(mark.get(key), int | float) else None for key in mark}
    return Mark(*(_finite(numbers.get(key)) for key in ("current_rate", "profit_abs", "profit_ratio")))


def portfolio_figures(*, user: User, filters: Filters) -> list[dict[str, Any]]:
    selected = scope(user=user, filters=filters)
    realised: dict[Group, float] = defaultdict(float)
    for currency, dry_run, profit in selected.closed().values_list("stake_currency", "dry_run", "profit_abs"):
        realised[currency, dry_run] += profit or 0.0
    open_trades: dict[Group, list[Trade]] = defaultdict(list)
    for trade in selected.trades.filter(is_open=True).order_by("pair", "id"):
        open_trades[trade.stake_currency, trade.dry_run].append(trade)
    entries = []
    for group in selected.groups(realised, open_trades):
        assets: dict[str, dict[str, float]] = {}
        open_profit = 0.0
        for trade in open_trades.get(group, []):
            mark = _mark(trade, selected.balances)
            rate = mark.current_rate if mark.current_rate is not None else trade.open_rate
            asset = assets.setdefault(trade.pair, {"amount": 0.0, "value": 0.0, "profit": 0.0})
            asset["amount"] += trade.amount
            asset["value"] += trade.amount * rate
            asset["profit"] += mark.profit_abs or 0.0
            open_profit += mark.profit_abs or 0.0
        total_value, free, bots = 0.0, 0.0, []
        for bot in selected.bots_of(group):
            source, balance = selected.balance_source(bot), selected.balances.get(bot.id)
            value = balance.total if balance is not None else DRY_RUN_WALLET if bot.dry_run else 0.0
            free += balance.free if balance is not None else value
            total_value += value
            read_at = balance.read_at if balance is not None else None
            bots.append({"bot_id": bot.id, "bot_name": bot.name, "balance_source": source,
                         "total_value": _finite(value), "read_at": read_at})  # fmt: skip
        if bots:
            assets[group[0]] = {"amount": free, "value": free, "profit": 0.0}
        capital = selected.starting_capital(group)
        total_profit = realised.get(group, 0.0) + open_profit
        entries.append(_entry(
            group, total_value=_finite(total_value), total_profit=_finite(total_profit),
            profit_percentage=_finite(total_profit / capital * 100) if capital else None,
            realised_profit=_finite(realised.get(group, 0.0)), open_profit=_finite(open_profit),
            starting_capital=capital,
            assets=[{"symbol": symbol, **{key: _finite(value) for key, value in figures.items()}}
                    for symbol, figures in assets.items()],
            bots=bots,
        ))  # fmt: skip
    return entries


def trade_page(
    *, user: User, filters: Filters, is_open: bool | None, page: int, per_page: int
) -> tuple[list[dict[str, Any]], int]:
    """Open trades (across the fleet, at their current price) and the window's closed ones; open first, newest first."""
    selected = scope(user=user, filters=filters)
    trades = selected.trades
    closed = Q(is_open=False) if selected.since is None else Q(is_open=False, close_date__gte=selected.since)
    if is_open is True:
        trades = trades.filter(is_open=True)
    elif is_open is False:
        trades = trades.filter(closed)
    else:
        trades = trades.filter(Q(is_open=True) | closed)
    ordered = trades.order_by(F("is_open").desc(), Coalesce("close_date", "open_date").desc(), "-id")
    offset = (page - 1) * per_page
    rows = list(ordered[offset : offset + per_page])
    return [_trade_row(trade, selected.balances) for trade in rows], trades.count()


def _trade_row(trade: Trade, balances: dict[int, BotBalance]) -> dict[str, Any]:
    row = {
        "id": trade.pk, "bot_id": trade.bot_id, "bot_name": trade.bot_name, "trade_id": trade.trade_id,
        "pair": trade.pair, "side": trade.side, "is_open": trade.is_open, "amount": trade.amount,
        "stake_amount": trade.stake_amount, "open_rate": trade.open_rate, "close_rate": trade.close_rate,
        "current_rate": None, "open_date": trade.open_date, "close_date": trade.close_date,
        "profit_abs": trade.profit_abs, "profit_ratio": trade.profit_ratio, "exit_reason": trade.exit_reason,
        "stake_currency": trade.stake_currency, "dry_run": trade.dry_run,
    }  # fmt: skip
    if trade.is_open:
        mark = _mark(trade, balances)
        row.update(current_rate=mark.current_rate, profit_abs=mark.profit_abs, profit_ratio=mark.profit_ratio)
    for key in ("amount", "stake_amount", "open_rate", "close_rate", "profit_abs", "profit_ratio"):
        row[key] = _finite(row[key])
    return row

"""Trading figures from closed trades: performance, risk and profit series (pure Python, no Django).

Every function takes plain values: ``ClosedTrade`` (what a closed trade contributes) and the
starting capital of the group the trades belong to. The risk formulas are freqtrade's own
(``freqtrade.data.metrics``, the functions behind its ``/profit`` and its backtest results), rewritten
here without pandas; tests compare both on the same trades. Ratios therefore mean what they
mean in FreqUI, quirks included:

- returns are ``profit_abs / starting_capital``, per trade;
- ``days`` = ``max(1, whole days from min_date to max_date)``, where ``min_date`` is the earliest
  open date of the trades and ``max_date`` the latest close date (the period they span; freqtrade's
  ``/profit`` passes the first and last trade's open dates, a backtest its timerange);
- **Sharpe** = ``(sum(returns) / days) / pstdev(returns) * sqrt(365)``: the mean daily return over
  the (population) standard deviation of the per-trade returns, annualised;
- **Sortino** = the same over the population standard deviation of the losing trades' returns only;
- **max drawdown** (freqtrade's ``calculate_max_drawdown``, absolute mode): the trades in close date
  order, ``cumulative`` = running profit, ``high`` = ``max(0, running max)``; the worst
  ``cumulative - high`` is ``max_drawdown_abs`` and, at that same trade,
  ``(capital + high - (capital + cumulative)) / (capital + high)`` is ``max_drawdown`` (a ratio);
- **Calmar** = ``(sum(returns) / days * 100) / max_drawdown * sqrt(365)``;
- no trades, or ``min_date == max_date``: 0 for the three ratios; a zero (or undefined) denominator
  (one trade, equal returns, no losing trade for Sortino, no drawdown for Calmar): -100, freqtrade's
  mark for "not a meaningful ratio".

A starting capital of 0 (unknown) gives ``None`` for every figure that divides by it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

ANNUALISATION_DAYS = 365
# freqtrade's value for a ratio whose denominator is zero or undefined.
UNDEFINED_RATIO = -100.0


@dataclass(frozen=True)
class ClosedTrade:
    open_date: datetime
    close_date: datetime
    profit_abs: float  # in the stake currency, fees included (freqtrade's close_profit_abs)
    profit_ratio: float  # freqtrade's close_profit: over the trade's own stake


@dataclass(frozen=True)
class Performance:
    total_trades: int
    profitable_trades: int
    avg_profit: float  # mean profit_ratio, in percent
    win_rate: float  # percent of trades with profit_abs > 0
    profit_abs: float
    profit_pct: float | None  # profit_abs over the starting capital, in percent


@dataclass(frozen=True)
class Drawdown:
    max_drawdown: float  # ratio of the account at its high (freqtrade's relative_account_drawdown)
    max_drawdown_abs: float
    high_date: datetime | None
    low_date: datetime | None


@dataclass(frozen=True)
class Risk:
    max_drawdown: float | None  # ratio
    max_drawdown_abs: float
    sharpe_ratio: float | None
    sortino_ratio: float | None
    calmar_ratio: float | None
    days: int  # the period the ratios are computed over
    trades: int


def _chronological(trades: Iterable[ClosedTrade]) -> list[ClosedTrade]:
    # A stable sort: trades closing at the same moment keep the order they were given in (by id).
    return sorted(trades, key=lambda trade: trade.close_date)


def period(trades: Sequence[ClosedTrade]) -> tuple[datetime | None, datetime | None]:
    """``(min_date, max_date)``: the earliest open date and the latest close date of the trades."""
    if not trades:
        return None, None
    return min(trade.open_date for trade in trades), max(trade.close_date for trade in trades)


def days_between(min_date: datetime, max_date: datetime) -> int:
    return max(1, (max_date - min_date).days)


def performance(trades: Sequence[ClosedTrade], *, starting_capital: float) -> Performance:
    total = len(trades)
    profitable = sum(1 for trade in trades if trade.profit_abs > 0)
    profit = sum(trade.profit_abs for trade in trades)
    return Performance(
        total_trades=total,
        profitable_trades=profitable,
        avg_profit=(sum(trade.profit_ratio for trade in trades) / total * 100) if total else 0.0,
        win_rate=(profitable / total * 100) if total else 0.0,
        profit_abs=profit,
        profit_pct=(profit / starting_capital * 100) if starting_capital else None,
    )


def _pstdev(values: Sequence[float]) -> float:
    """numpy's ``std`` (ddof=0); NaN for no values, as numpy gives."""
    if not values:
        return math.nan
    mean = sum(values) / len(values)
    return math.sqrt(sum((value - mean) ** 2 for value in values) / len(values))


def _annualised(mean_return: float, denominator: float) -> float:
    if denominator != 0 and not math.isnan(denominator):
        return mean_return / denominator * math.sqrt(ANNUALISATION_DAYS)
    return UNDEFINED_RATIO


def _undefined_period(trades: Sequence[ClosedTrade], min_date: datetime | None, max_date: datetime | None) -> bool:
    return not trades or min_date is None or max_date is None or min_date == max_date


def sharpe(
    trades: Sequence[ClosedTrade], *, min_date: datetime | None, max_date: datetime | None, starting_capital: float
) -> float:
    if _undefined_period(trades, min_date, max_date):
        return 0.0
    assert min_date is not None and max_date is not None
    returns = [trade.profit_abs / starting_capital for trade in trades]
    return _annualised(sum(returns) / days_between(min_date, max_date), _pstdev(returns))


def sortino(
    trades: Sequence[ClosedTrade], *, min_date: datetime | None, max_date: datetime | None, starting_capital: float
) -> float:
    if _undefined_period(trades, min_date, max_date):
        return 0.0
    assert min_date is not None and max_date is not None
    returns = [trade.profit_abs / starting_capital for trade in trades]
    losses = [trade.profit_abs / starting_capital for trade in trades if trade.profit_abs < 0]
    return _annualised(sum(returns) / days_between(min_date, max_date), _pstdev(losses))


def max_drawdown(trades: Sequence[ClosedTrade], *, starting_capital: float) -> Drawdown:
    """freqtrade's ``calculate_max_drawdown(value_col="profit_abs")``; no trades: no drawdown."""
    ordered = _chronological(trades)
    if not ordered:
        return Drawdown(0.0, 0.0, None, None)
    # Row 0 is freqtrade's zero row (before any trade); row i is after the i-th trade.
    cumulative, high = [0.0], [0.0]
    running = running_max = 0.0
    for index, trade in enumerate(ordered):
        running += trade.profit_abs
        running_max = running if index == 0 else max(running_max, running)
        cumulative.append(running)
        high.append(max(0.0, running_max))
    drawdowns = [value - peak for value, peak in zip(cumulative, high, strict=True)]
    worst = min(range(len(drawdowns)), key=drawdowns.__getitem__)  # the first of equal minima
    peak = max(range(worst + 1), key=high.__getitem__)
    if starting_capital:
        top = starting_capital + high[worst]
        relative = (top - (starting_capital + cumulative[worst])) / top
    elif worst == 0 or high[worst]:  # freqtrade's own approximation without a capital
        relative = (high[worst] - cumulative[worst]) / high[worst] if worst else 0.0
    else:
        relative = math.inf  # a loss from a high of 0, over no capital
    return Drawdown(
        max_drawdown=relative,
        max_drawdown_abs=abs(drawdowns[worst]),
        high_date=ordered[max(peak - 1, 0)].close_date,
        low_date=ordered[max(worst - 1, 0)].close_date,
    )


def calmar(
    trades: Sequence[ClosedTrade], *, min_date: datetime | None, max_date: datetime | None, starting_capital: float
) -> float:
    if _undefined_period(trades, min_date, max_date):
        return 0.0
    assert min_date is not None and max_date is not None
    total_return = sum(trade.profit_abs for trade in trades) / starting_capital
    mean_return = total_return / days_between(min_date, max_date) * 100
    return _annualised(mean_return, max_drawdown(trades, starting_capital=starting_capital).max_drawdown)


def risk(trades: Sequence[ClosedTrade], *, starting_capital: float) -> Risk:
    """Every risk figure over ``period(trades)``; ``None`` where the capital is unknown (0)."""
    min_date, max_date = period(trades)
    days = days_between(min_date, max_date) if min_date and max_date else 0
    if not starting_capital:
        drawdown = max_drawdown(trades, starting_capital=0)
        return Risk(None, drawdown.max_drawdown_abs, None, None, None, days, len(trades))
    drawdown = max_drawdown(trades, starting_capital=starting_capital)
    dates = {"min_date": min_date, "max_date": max_date, "starting_capital": starting_capital}
    return Risk(
        max_drawdown=drawdown.max_drawdown,
        max_drawdown_abs=drawdown.max_drawdown_abs,
        sharpe_ratio=sharpe(trades, **dates),
        sortino_ratio=sortino(trades, **dates),
        calmar_ratio=calmar(trades, **dates),
        days=days,
        trades=len(trades),
    )


@dataclass(frozen=True)
class DailyProfit:
    date: date
    profit_abs: float


def daily_profit(trades: Iterable[ClosedTrade]) -> list[DailyProfit]:
    """Realised profit per UTC day of closing, every day from the first to the last (0 on quiet days)."""
    by_day: dict[date, float] = {}
    for trade in _chronological(trades):
        day = trade.close_date.date()
        by_day[day] = by_day.get(day, 0.0) + trade.profit_abs
    if not by_day:
        return []
    first, last = min(by_day), max(by_day)
    days = (first + timedelta(days=offset) for offset in range((last - first).days + 1))
    return [DailyProfit(day, by_day.get(day, 0.0)) for day in days]


def cumulative_profit(daily: Iterable[DailyProfit]) -> list[DailyProfit]:
    """The running total of a daily series: realised profit up to and including each day."""
    total, series = 0.0, []
    for point in daily:
        total += point.profit_abs
        series.append(DailyProfit(point.date, total))
    return series

"""analytics.metrics against freqtrade's own freqtrade.data.metrics, on the same trades."""

from __future__ import annotations

import math
import warnings
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from freqtrade.data import metrics as ft

from analytics import metrics
from analytics.metrics import ClosedTrade

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CAPITAL = 990.0  # what freqtrade reports for a 1000 dry-run wallet at tradable_balance_ratio 0.99


def trade(opened_hours: float, held_hours: float, profit_abs: float, stake: float = 99.0) -> ClosedTrade:
    opened = START + timedelta(hours=opened_hours)
    return ClosedTrade(opened, opened + timedelta(hours=held_hours), profit_abs, profit_abs / stake)


TRADE_SETS = {
    "wins and losses over a week": [
        trade(0, 3, 2.5),
        trade(5, 20, -1.75),
        trade(30, 2, 0.4),
        trade(50, 1, -3.2),
        trade(60, 30, 5.1),
        trade(100, 4, -0.05),
        trade(150, 10, 1.3),
    ],
    "losses only": [trade(0, 1, -1.0), trade(2, 5, -2.5), trade(30, 1, -0.3)],
    "wins only": [trade(0, 1, 1.0), trade(26, 2, 0.5), trade(60, 1, 2.0)],
    "a single day": [trade(0, 1, 1.2), trade(2, 1, -0.7), trade(4, 3, 0.9), trade(8, 1, -1.6)],
    "a single trade": [trade(0, 6, -4.0)],
    "a drawdown from below zero": [trade(0, 1, -5.0), trade(3, 1, 2.0), trade(30, 1, -6.0), trade(80, 2, 1.0)],
    "a month": [trade(hours, 5, (-1) ** hours * (hours % 7) * 0.3) for hours in range(0, 24 * 30, 17)],
    "no trades": [],
}


def frame(trades: list[ClosedTrade]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"open_date": t.open_date, "close_date": t.close_date, "profit_abs": t.profit_abs,
          "profit_ratio": t.profit_ratio} for t in trades],
        columns=["open_date", "close_date", "profit_abs", "profit_ratio"],
    )  # fmt: skip


def freqtrades(trades: list[ClosedTrade], capital: float) -> dict[str, float]:
    """freqtrade's own figures, called as its /profit calls them."""
    df = frame(trades)
    min_date, max_date = metrics.period(trades)
    dates = {"min_date": min_date, "max_date": max_date, "starting_balance": capital}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's std of no losing trade
        figures = {"sharpe": ft.calculate_sharpe(df, **dates), "sortino": ft.calculate_sortino(df, **dates),
                   "calmar": ft.calculate_calmar(df, **dates)}  # fmt: skip
    if trades:
        drawdown = ft.calculate_max_drawdown(df, value_col="profit_abs", starting_balance=capital)
        figures |= {"max_drawdown": drawdown.relative_account_drawdown, "max_drawdown_abs": drawdown.drawdown_abs,
                    "high_date": drawdown.high_date, "low_date": drawdown.low_date}  # fmt: skip
    else:
        figures |= {"max_drawdown": 0.0, "max_drawdown_abs": 0.0, "high_date": None, "low_date": None}
    return figures


@pytest.mark.parametrize("name", TRADE_SETS)
def test_risk_figures_equal_freqtrades_own(name):
    trades = TRADE_SETS[name]
    expected = freqtrades(trades, CAPITAL)

    risk = metrics.risk(trades, starting_capital=CAPITAL)
    drawdown = metrics.max_drawdown(trades, starting_capital=CAPITAL)

    assert risk.sharpe_ratio == pytest.approx(expected["sharpe"], rel=1e-12, abs=1e-12)
    assert risk.sortino_ratio == pytest.approx(expected["sortino"], rel=1e-12, abs=1e-12)
    assert risk.calmar_ratio == pytest.approx(expected["calmar"], rel=1e-12, abs=1e-12)
    assert risk.max_drawdown == pytest.approx(expected["max_drawdown"], rel=1e-12, abs=1e-12)
    assert risk.max_drawdown_abs == pytest.approx(expected["max_drawdown_abs"], rel=1e-12, abs=1e-12)
    assert (drawdown.high_date, drawdown.low_date) == (expected["high_date"], expected["low_date"])
    assert risk.trades == len(trades)


def test_the_trade_sets_reach_every_branch_of_freqtrades_formulas():
    # Sanity of the table above: the comparisons are not all of zeros.
    figures = {name: freqtrades(trades, CAPITAL) for name, trades in TRADE_SETS.items()}

    assert figures["wins only"]["sortino"] == -100.0  # no losing trade: freqtrade's "undefined"
    assert figures["wins only"]["calmar"] == -100.0  # no drawdown
    assert figures["a single trade"]["sharpe"] == -100.0  # one return has no deviation
    assert figures["no trades"]["sharpe"] == 0
    assert figures["wins and losses over a week"]["max_drawdown"] > 0.003
    assert all(figures["a month"][key] not in (0.0, -100.0) for key in ("sharpe", "sortino", "calmar"))
    assert figures["a drawdown from below zero"]["max_drawdown_abs"] == pytest.approx(9.0)


def test_a_single_day_counts_as_one_day():
    trades = TRADE_SETS["a single day"]

    risk = metrics.risk(trades, starting_capital=CAPITAL)

    assert risk.days == 1
    returns = [t.profit_abs / CAPITAL for t in trades]
    mean = sum(returns)  # over one day
    std = math.sqrt(sum((r - sum(returns) / 4) ** 2 for r in returns) / 4)
    assert risk.sharpe_ratio == pytest.approx(mean / std * math.sqrt(365))


def test_an_unknown_capital_gives_no_ratios_but_the_absolute_drawdown():
    risk = metrics.risk(TRADE_SETS["losses only"], starting_capital=0)

    assert (risk.sharpe_ratio, risk.sortino_ratio, risk.calmar_ratio, risk.max_drawdown) == (None, None, None, None)
    assert risk.max_drawdown_abs == pytest.approx(3.8)


def test_performance_counts_wins_averages_ratios_and_sets_profit_against_the_capital():
    trades = TRADE_SETS["wins and losses over a week"]

    figures = metrics.performance(trades, starting_capital=CAPITAL)

    assert (figures.total_trades, figures.profitable_trades) == (7, 4)
    assert figures.win_rate == pytest.approx(400 / 7)
    assert figures.avg_profit == pytest.approx(frame(trades)["profit_ratio"].mean() * 100)
    assert figures.profit_abs == pytest.approx(4.3)
    assert figures.profit_pct == pytest.approx(4.3 / CAPITAL * 100)
    empty = metrics.performance([], starting_capital=0)
    assert (empty.total_trades, empty.win_rate, empty.avg_profit, empty.profit_pct) == (0, 0.0, 0.0, None)


def test_daily_profit_fills_quiet_days_and_the_cumulative_series_adds_up():
    trades = [trade(0, 1, 1.0), trade(2, 1, -0.25), trade(49, 1, 2.0)]  # 1 March twice, 3 March once

    daily = metrics.daily_profit(trades)
    cumulative = metrics.cumulative_profit(daily)

    assert [(p.date, p.profit_abs) for p in daily] == [(date(2026, 3, 1), 0.75), (date(2026, 3, 2), 0.0),
                                                       (date(2026, 3, 3), 2.0)]  # fmt: skip
    assert [p.profit_abs for p in cumulative] == [0.75, 0.75, 2.75]
    assert metrics.daily_profit([]) == []
    # freqtrade's own resampling of profit by close day gives the same days
    resampled = frame(trades).resample("1D", on="close_date")["profit_abs"].sum()
    assert [p.profit_abs for p in daily] == pytest.approx(list(resampled))

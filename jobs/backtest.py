"""A backtest job's files and results: its freqtrade config and command, and what freqtrade reported.

No Django here. The config points freqtrade at the replay exchange's market metadata and at the
stored candles; the results are read from freqtrade's own result file (the zip it writes under the
job's ``user_data/backtest_results``), never recomputed: the summary keys are freqtrade's own.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any, TypedDict


class BacktestParameters(TypedDict):
    strategy_name: str
    strategy_file: str  # the file's name, as copied into the job's directory
    timeframe: str
    timerange: str
    pairs: list[str]
    stake_currency: str
    stake_amount: float | str  # a number, or freqtrade's "unlimited"
    dry_run_wallet: float
    max_open_trades: int
    timeframe_detail: str
    enable_protections: bool
    fee: float | None


# freqtrade's strategy-level figures the summary shows, by their own names.
SUMMARY_KEYS = (
    "total_trades", "wins", "draws", "losses", "winrate", "profit_total_abs", "profit_total", "profit_total_pct",
    "cagr", "profit_factor", "expectancy", "expectancy_ratio", "max_drawdown_abs", "max_drawdown_account",
    "max_relative_drawdown", "sharpe", "sortino", "calmar", "sqn", "market_change", "starting_balance",
    "final_balance", "stake_currency", "timeframe", "timeframe_detail", "timerange", "backtest_start",
    "backtest_end", "backtest_days", "max_open_trades", "trade_count_long", "trade_count_short",
)  # fmt: skip
TRADE_KEYS = (
    "pair", "open_date", "close_date", "open_rate", "close_rate", "amount", "stake_amount", "profit_abs",
    "profit_ratio", "exit_reason", "enter_tag", "is_short", "trade_duration", "fee_open", "fee_close",
)  # fmt: skip


def render_config(parameters: BacktestParameters, *, exchange_section: dict[str, Any]) -> dict[str, Any]:
    """freqtrade's config for the backtest; ``exchange_section`` points it at the replay exchange."""
    return {
        "max_open_trades": parameters["max_open_trades"],
        "stake_currency": parameters["stake_currency"],
        "stake_amount": parameters["stake_amount"],
        "dry_run": True,
        "dry_run_wallet": parameters["dry_run_wallet"],
        "timeframe": parameters["timeframe"],
        "trading_mode": "spot",
        "dataformat_ohlcv": "feather",
        "exchange": exchange_section,
        "pairlists": [{"method": "StaticPairList"}],
        "entry_pricing": {"price_side": "same", "use_order_book": False},
        "exit_pricing": {"price_side": "same", "use_order_book": False},
        "internals": {},
    }


def prepare(
    directory: Path, parameters: BacktestParameters, *, strategy_file: Path, exchange_section: dict[str, Any]
) -> Path:
    """The job's own directory: its config, its own copy of the strategy, an empty results directory."""
    strategies = directory / "user_data" / "strategies"
    strategies.mkdir(parents=True, exist_ok=True)
    (directory / "user_data" / "backtest_results").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(strategy_file, strategies / strategy_file.name)
    # freqtrade reads a strategy's parameter file beside it, by the same stem.
    parameter_file = strategy_file.with_suffix(".json")
    if parameter_file.exists():
        shutil.copyfile(parameter_file, strategies / parameter_file.name)
    config = directory / "config.json"
    config.write_text(json.dumps(render_config(parameters, exchange_section=exchange_section), indent=2))
    return config


def cli_arguments(directory: Path, parameters: BacktestParameters, *, datadir: Path) -> list[str]:
    """The ``freqtrade backtesting`` arguments, after the subcommand's name is given."""
    args = [
        "backtesting", "-c", str(directory / "config.json"), "--userdir", str(directory / "user_data"),
        "--datadir", str(datadir), "--strategy", parameters["strategy_name"],
        "--strategy-path", str(directory / "user_data" / "strategies"),
        "--timeframe", parameters["timeframe"], "--timerange", parameters["timerange"],
        "--export", "trades", "--backtest-directory", str(results_dir(directory)), "--cache", "none",
    ]  # fmt: skip
    if parameters.get("timeframe_detail"):
        args += ["--timeframe-detail", parameters["timeframe_detail"]]
    if parameters.get("enable_protections"):
        args.append("--enable-protections")
    if parameters.get("fee") is not None:
        args += ["--fee", repr(float(parameters["fee"]))]  # type: ignore[arg-type]
    return args


def command(
    directory: Path, parameters: BacktestParameters, *, datadir: Path, python: str = sys.executable
) -> list[str]:
    """The subprocess: freqtrade's CLI through jobs.backtest_entry, which reports its progress."""
    return [python, "-m", "jobs.backtest_entry", "--results-json", str(results_json(directory)),
            *cli_arguments(directory, parameters, datadir=datadir)]  # fmt: skip


def results_dir(directory: Path) -> Path:
    return directory / "user_data" / "backtest_results"


class ResultsMissing(Exception):  # noqa: N818 - reads as the condition
    """freqtrade exited without writing a result file."""


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def results_json(directory: Path) -> Path:
    """Where the subprocess writes what it read from freqtrade's result file (see jobs.backtest_entry)."""
    return directory / "results.json"


def read_results(found: Path, strategy_name: str) -> dict[str, Any]:
    """The summary, tables, equity curve and trades from freqtrade's result file in the directory ``found``."""
    from freqtrade.data.btanalysis import load_backtest_stats

    if not (found / ".last_result.json").exists():
        raise ResultsMissing(f"freqtrade wrote no result file under {found.name}")
    stats = load_backtest_stats(found)
    strategy = stats["strategy"][strategy_name]
    trades = [{key: trade.get(key) for key in TRADE_KEYS} for trade in strategy.get("trades", [])]
    return _jsonable({
        "strategy_name": strategy_name,
        "result_file": json.loads((found / ".last_result.json").read_text())["latest_backtest"],
        "summary": {key: strategy.get(key) for key in SUMMARY_KEYS},
        "results_per_pair": strategy.get("results_per_pair", []),
        "exit_reason_summary": strategy.get("exit_reason_summary", []),
        "equity_curve": equity_curve(trades, float(strategy.get("starting_balance") or 0.0)),
        "daily_profit": strategy.get("daily_profit", []),
        "trades": trades,
    })  # fmt: skip


def equity_curve(trades: list[dict[str, Any]], starting_balance: float) -> list[dict[str, Any]]:
    """The wallet and the cumulative profit after each closed trade, by close date: freqtrade's profits
    added up in order (the first point, dated None, is the start)."""
    points = [{"date": None, "balance": starting_balance, "profit_abs": 0.0}]
    profit = 0.0
    for trade in sorted(trades, key=lambda item: str(item.get("close_date"))):
        profit += float(trade.get("profit_abs") or 0.0)
        points.append({"date": trade.get("close_date"), "balance": starting_balance + profit, "profit_abs": profit})
    return points

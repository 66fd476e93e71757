"""A hyperopt job's command and results: freqtrade's own ``hyperopt`` and its own results file. No Django here.

freqtrade appends one JSON line per epoch to ``user_data/hyperopt_results/*.fthypt``; that file,
read as it grows, is both the progress (epochs done of the total, the best so far) and the result.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from jobs.backtest import BacktestParameters

# freqtrade's figures of the best epoch, by their own names.
RESULT_KEYS = (
    "total_trades", "wins", "draws", "losses", "profit_total", "profit_total_abs", "profit_mean", "cagr",
    "profit_factor", "expectancy", "max_drawdown_account", "max_drawdown_abs", "sharpe", "sortino", "calmar",
)  # fmt: skip


class HyperoptParameters(BacktestParameters):
    epochs: int
    spaces: list[str]
    loss: str
    min_trades: int
    jobs: int
    random_state: int | None


def results_dir(directory: Path) -> Path:
    return directory / "user_data" / "hyperopt_results"


def command(
    directory: Path, parameters: HyperoptParameters, *, datadir: Path, python: str = sys.executable
) -> list[str]:
    args = [
        python, "-m", "freqtrade", "hyperopt", "-c", str(directory / "config.json"),
        "--userdir", str(directory / "user_data"), "--datadir", str(datadir),
        "--strategy", parameters["strategy_name"], "--strategy-path", str(directory / "user_data" / "strategies"),
        "--timeframe", parameters["timeframe"], "--timerange", parameters["timerange"],
        "--hyperopt-loss", parameters["loss"], "--epochs", str(parameters["epochs"]), "-j", str(parameters["jobs"]),
        "--min-trades", str(parameters["min_trades"]), "--spaces", *parameters["spaces"],
        "--disable-param-export", "--print-all", "--no-color",
    ]  # fmt: skip
    if parameters.get("random_state") is not None:
        args += ["--random-state", str(parameters["random_state"])]
    if parameters.get("timeframe_detail"):
        args += ["--timeframe-detail", parameters["timeframe_detail"]]
    if parameters.get("enable_protections"):
        args.append("--enable-protections")
    if parameters.get("fee") is not None:
        args += ["--fee", repr(float(parameters["fee"]))]  # type: ignore[arg-type]
    return args


def results_file(directory: Path) -> Path | None:
    found = sorted(results_dir(directory).glob("*.fthypt"), key=lambda path: path.stat().st_mtime)
    return found[-1] if found else None


def read_epochs(path: Path) -> list[dict[str, Any]]:
    """Every complete line of the file; one being written is left for the next read."""
    epochs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            epochs.append(json.loads(line))
        except ValueError:
            break
    return epochs


def _loss(epoch: dict[str, Any]) -> float:
    return float(epoch.get("loss", float("inf")))


def epoch_row(epoch: dict[str, Any]) -> dict[str, Any]:
    """One epoch as its table shows it: its number, loss, parameters and freqtrade's figures (no trades)."""
    metrics = epoch.get("results_metrics") or {}
    return json.loads(json.dumps({
        "epoch": epoch.get("current_epoch"), "loss": epoch.get("loss"), "is_best": bool(epoch.get("is_best")),
        "params": epoch.get("params_dict") or {}, "results": {key: metrics.get(key) for key in RESULT_KEYS},
    }, default=str))  # fmt: skip


def summary(directory: Path, epochs_total: int) -> dict[str, Any]:
    """Epochs done of the total, the best so far (the lowest loss), and every epoch lowest loss first,
    as freqtrade recorded them."""
    path = results_file(directory)
    epochs = read_epochs(path) if path is not None else []
    best = min(epochs, key=_loss, default=None)
    result: dict[str, Any] = {"epochs_done": len(epochs), "epochs_total": epochs_total, "best_result": None,
                              "epochs": [epoch_row(epoch) for epoch in sorted(epochs, key=_loss)]}  # fmt: skip
    if best is not None:
        metrics = best.get("results_metrics") or {}
        result["best_result"] = json.loads(json.dumps({
            "loss": best.get("loss"), "epoch": best.get("current_epoch"), "params": best.get("params_dict") or {},
            "params_details": best.get("params_details") or {},
            "params_not_optimized": best.get("params_not_optimized") or {},
            "results": {key: metrics.get(key) for key in RESULT_KEYS},
        }, default=str))  # fmt: skip
    return result


def write_parameter_file(best_result: dict[str, Any], *, strategy_name: str, path: Path) -> Path:
    """The best epoch's parameters in freqtrade's own parameter-file format (``<strategy>.json`` next to
    the strategy file is what freqtrade loads at start), written by freqtrade's own exporter."""
    from freqtrade.optimize.hyperopt_tools import HyperoptTools

    path.parent.mkdir(parents=True, exist_ok=True)
    HyperoptTools.export_params(best_result, strategy_name, path)
    return path

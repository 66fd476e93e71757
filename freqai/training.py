"""A FreqAI training's files: its freqtrade config (with the ``freqai`` section), its command, its artifacts
and the metrics read from freqtrade's own files. No Django here.

A training is freqtrade's ``backtesting --freqaimodel``: FreqAI slides its windows through the timerange
(each window's model trained on the ``train_period_days`` before it, then predicting the next
``backtest_period_days``), saving each window's model (``save_backtest_models``) and its predictions
under ``user_data/models/<identifier>``; the backtest of the strategy on those predictions gives the
profit factor and the trades.

Accuracy, computed from what FreqAI predicted against the labels that followed (the strategy's own
``set_freqai_targets`` on the window it predicted, saved beside FreqAI's prediction file by
freqai.training_entry): for a regressor, the share of predictions whose sign matched the label's; for
a classifier, the share of predictions equal to the label. Rows whose label is unknown (the last
``label_period_candles`` of a window, whose future is past its end) are not scored.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, TypedDict

from jobs import backtest

# freqtrade's FreqAI model classes, by the library each needs; offered only where that library imports.
MODEL_LIBRARIES = {
    "LightGBMRegressor": "lightgbm", "LightGBMClassifier": "lightgbm", "LightGBMRegressorMultiTarget": "lightgbm",
    "LightGBMClassifierMultiTarget": "lightgbm", "XGBoostRegressor": "xgboost", "XGBoostClassifier": "xgboost",
    "XGBoostRFRegressor": "xgboost", "XGBoostRFClassifier": "xgboost", "XGBoostRegressorMultiTarget": "xgboost",
    "CatboostRegressor": "catboost", "CatboostClassifier": "catboost", "SKLearnRandomForestClassifier": "sklearn",
    "PyTorchMLPRegressor": "torch", "PyTorchMLPClassifier": "torch", "PyTorchTransformerRegressor": "torch",
}  # fmt: skip
# The spot subclass of the strategy the training runs (see spot_wrapper).
SPOT_SUFFIX = "Spot"
_WINDOW_DIR = re.compile(r"^sub-train-(?P<coin>.+)_(?P<stamp>\d+)$")


def available_model_types() -> list[str]:
    """The model classes that can run here: freqtrade ships them and their library is installed."""
    return [name for name, library in MODEL_LIBRARIES.items()
            if importlib.util.find_spec(library) is not None
            and importlib.util.find_spec(f"freqtrade.freqai.prediction_models.{name}") is not None]  # fmt: skip


class TrainingParameters(backtest.BacktestParameters):
    model_id: int
    version: int
    identifier: str
    model_type: str
    include_timeframes: list[str]
    include_corr_pairlist: list[str]
    label_period_candles: int
    indicator_periods_candles: list[int]
    train_period_days: int
    backtest_period_days: float


def freqai_section(parameters: dict[str, Any]) -> dict[str, Any]:
    """freqtrade's ``freqai`` config of a training, from the model's feature and training parameters."""
    return {
        "enabled": True,
        "identifier": parameters["identifier"],
        "train_period_days": parameters["train_period_days"],
        "backtest_period_days": parameters["backtest_period_days"],
        "save_backtest_models": True,
        "purge_old_models": False,
        "live_retrain_hours": 0,
        "expiration_hours": 0,
        "feature_parameters": {
            "include_timeframes": list(parameters["include_timeframes"]),
            "include_corr_pairlist": list(parameters["include_corr_pairlist"]),
            "label_period_candles": parameters["label_period_candles"],
            "indicator_periods_candles": list(parameters["indicator_periods_candles"]),
            "include_shifted_candles": 1,
            "DI_threshold": 0.9,
            "weight_factor": 0.9,
            "principal_component_analysis": False,
            "use_SVM_to_remove_outliers": False,
        },
        "data_split_parameters": {"test_size": 0.33, "random_state": 1, "shuffle": False},
        # One thread: the worker runs one job per core already (CELERY_WORKER_CONCURRENCY), and LightGBM's
        # OpenMP threads spin when the cores are busy: a window of the default model (1334 rows, 86 features)
        # trained in 1.4-2 s on one thread against 14-25 s on two, on a loaded 2-core machine.
        "model_training_parameters": {"n_estimators": 100, "verbosity": -1, "n_jobs": 1}
        if parameters["model_type"].startswith("LightGBM") else {"n_estimators": 100},
    }  # fmt: skip


def render_config(parameters: dict[str, Any], *, exchange_section: dict[str, Any]) -> dict[str, Any]:
    config = backtest.render_config(parameters, exchange_section=exchange_section)  # type: ignore[arg-type]
    config["freqai"] = freqai_section(parameters)
    return config


def config_error(config: dict[str, Any]) -> tuple[str, str] | None:
    """(field, message) of the first thing freqtrade's own config schema refuses in ``config``; None if valid.
    The field is the key freqtrade names (``label_period_candles``, ``train_period_days``...)."""
    from freqtrade.config_schema.config_schema import CONF_SCHEMA
    from freqtrade.configuration.config_validation import FreqtradeValidator
    from jsonschema.exceptions import best_match

    error = best_match(FreqtradeValidator(CONF_SCHEMA).iter_errors(config))
    if error is None:
        return None
    keys = [key for key in error.absolute_path if isinstance(key, str)]
    return (
        keys[-1] if keys else "freqai"
    ), f"freqtrade refuses {'.'.join(map(str, error.absolute_path))}: {error.message}"


def spot_wrapper(strategy_name: str) -> str:
    """The strategy as the training runs it: freqtrade refuses a strategy that can short in spot markets
    (FreqAI's examples can), and asks for ``can_short = False``, its short signals then ignored. The
    replay market is spot; the uploaded code is left as it is and subclassed here."""
    return (f"from {strategy_name} import {strategy_name}\n\n\n"
            f"class {strategy_name}{SPOT_SUFFIX}({strategy_name}):\n    can_short = False\n")  # fmt: skip


def prepare(directory: Path, parameters: dict[str, Any], *, strategy_file: Path,
            exchange_section: dict[str, Any]) -> Path:  # fmt: skip
    config = backtest.prepare(directory, parameters, strategy_file=strategy_file,  # type: ignore[arg-type]
                              exchange_section=exchange_section)  # fmt: skip
    name = parameters["strategy_name"]
    (directory / "user_data" / "strategies" / f"{name}{SPOT_SUFFIX}.py").write_text(spot_wrapper(name))
    config.write_text(json.dumps(render_config(parameters, exchange_section=exchange_section), indent=2))
    return config


def models_dir(directory: Path, parameters: dict[str, Any]) -> Path:
    """Where FreqAI writes the training's models and predictions."""
    return directory / "user_data" / "models" / parameters["identifier"]


def command(directory: Path, parameters: dict[str, Any], *, datadir: Path, python: str = sys.executable) -> list[str]:
    args = backtest.cli_arguments(directory, {**parameters, "strategy_name": parameters["strategy_name"] + SPOT_SUFFIX,
                                              "timeframe_detail": "", "enable_protections": False},  # type: ignore[typeddict-item]
                                  datadir=datadir)  # fmt: skip
    args += ["--freqaimodel", parameters["model_type"]]
    return [python, "-m", "freqai.training_entry", "--results-json", str(backtest.results_json(directory)),
            "--models-dir", str(models_dir(directory, parameters)), *args]  # fmt: skip


# -- what freqtrade wrote ------------------------------------------------------------------------------
class Artifacts(TypedDict):
    files: list[dict[str, Any]]
    pairs: list[str]
    windows: list[dict[str, Any]]


def artifacts(models: Path, pairs: list[str]) -> Artifacts:
    """The files of FreqAI's model directory (path, size) and its windows: one ``sub-train-<COIN>_<end>``
    directory per pair and window, named by FreqAI for the end of the window's training data."""
    from datetime import UTC, datetime

    files = sorted(({"path": str(path.relative_to(models)), "size": path.stat().st_size}
                    for path in models.rglob("*") if path.is_file()), key=lambda item: item["path"])  # fmt: skip
    by_coin = {pair.split("/")[0].upper(): pair for pair in pairs}
    windows = []
    for entry in sorted(models.iterdir()) if models.is_dir() else []:
        found = _WINDOW_DIR.match(entry.name)
        if found and entry.is_dir() and any(entry.glob("*_model.*")):
            trained_until = datetime.fromtimestamp(int(found["stamp"]), UTC).isoformat()
            windows.append({"pair": by_coin.get(found["coin"].upper(), found["coin"]), "trained_until": trained_until})
    trained = sorted({window["pair"] for window in windows})
    return Artifacts(files=files, pairs=trained, windows=windows)


def is_complete(models: Path, pairs: list[str]) -> bool:
    """FreqAI's files of a finished training: its pair dictionary, and a model and predictions for every pair."""
    found = artifacts(models, pairs)
    predictions = list((models / "backtesting_predictions").glob("*_prediction.feather"))
    return (models / "pair_dictionary.json").is_file() and set(found["pairs"]) == set(pairs) and bool(predictions)


def labels_path(prediction_file: Path) -> Path:
    return prediction_file.with_name(prediction_file.name.replace("_prediction.feather", "_labels.feather"))


def prediction_accuracy(models: Path) -> dict[str, Any]:
    """The accuracy of FreqAI's predictions against the labels (see the module's docstring), over every window."""
    import numpy as np
    import pandas as pd

    scored = correct = predicted = 0
    kind = ""
    for prediction_file in sorted((models / "backtesting_predictions").glob("*_prediction.feather")):
        labels_file = labels_path(prediction_file)
        if not labels_file.exists():
            continue
        predictions, labels = pd.read_feather(prediction_file), pd.read_feather(labels_file)
        predicted += len(predictions)
        for column in [name for name in labels.columns if name.startswith("&") and name in predictions.columns]:
            truth, guess = labels[column].reset_index(drop=True), predictions[column].reset_index(drop=True)
            known = truth.notna() & guess.notna()
            if pd.api.types.is_numeric_dtype(truth):
                kind = kind or "regressor"
                hits = np.sign(guess[known].astype(float)) == np.sign(truth[known].astype(float))
            else:
                kind = kind or "classifier"
                hits = guess[known].astype(str) == truth[known].astype(str)
            scored += int(known.sum())
            correct += int(hits.sum())
    return {"accuracy": (correct / scored) if scored else None, "scored": scored, "correct": correct,
            "predictions": predicted, "method": {"regressor": "sign of prediction matches sign of label",
                                                 "classifier": "prediction equals label"}.get(kind, "")}  # fmt: skip


def metrics(results: dict[str, Any], accuracy: dict[str, Any]) -> dict[str, Any]:
    summary = results.get("summary") or {}
    return {"accuracy": accuracy["accuracy"], "profit_factor": summary.get("profit_factor"),
            "total_trades": summary.get("total_trades"), "profit_total": summary.get("profit_total"),
            "predictions_scored": accuracy["scored"], "accuracy_method": accuracy["method"]}  # fmt: skip


def move_into_place(source: Path, target: Path, manifest: dict[str, Any]) -> None:
    """``source`` becomes ``target`` whole or not at all: copied beside it under a temporary name with its
    manifest written last, then renamed (one rename within one directory)."""
    import shutil

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if target.exists():  # a re-run attempt of the same version: the new one replaces it
        shutil.rmtree(target)
    os.rename(staging, target)

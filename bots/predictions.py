"""What a FreqAI bot predicted on its latest candle, read from its own freqtrade API.

freqtrade's ``pair_candles`` returns every column of the analysed dataframe; FreqAI's are its targets
(``&``-prefixed, as the strategy's ``set_freqai_targets`` names them), ``do_predict`` (1: a prediction it
trusts; 0: an outlier; 2: no model) and ``DI_values`` (the dissimilarity index). The model the bot runs is
read from its own directory: the rendered ``freqai`` section and FreqAI's pair dictionary (which points at
the newest model it trained or was given).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from django.conf import settings

from bots import workspace
from bots.commands import BotStatus
from bots.ftclient import FreqtradeApiError, client_for
from bots.models import Bot
from bots.selectors import runs_here
from freqai.artifacts import ArtifactsError, confidence, pair_models
from freqai.training import SPOT_SUFFIX
from multibot.errors import ConflictError, InvalidInputError, UnavailableError

_IDENTIFIER = re.compile(r"^model-(?P<model>\d+)-v(?P<version>\d+)$")
TIMEOUT_SECONDS = 10.0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _home_relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path(settings.HOME)))
    except ValueError:
        return str(path)


def bot_prediction(*, bot: Bot, pair: str | None = None, timeframe: str | None = None,
                   strategy: str | None = None) -> dict[str, Any]:  # fmt: skip
    """The bot's latest prediction of ``pair`` (default its first pair). Refused: no model (409), a pair,
    timeframe or strategy not the bot's (422), not running (409), running on another host (503)."""
    if bot.freqai_model_id is None:
        raise ConflictError(f"Bot {bot.name} runs no FreqAI model; set its freqai_model_id.")
    pair = pair or (bot.pair_whitelist[0] if bot.pair_whitelist else "")
    if pair not in bot.pair_whitelist:
        raise InvalidInputError("pair", f"Bot {bot.name} trades {', '.join(bot.pair_whitelist)}, not {pair!r}.",
                                location="query")  # fmt: skip
    if timeframe and timeframe != bot.timeframe:
        raise InvalidInputError("timeframe", f"Bot {bot.name} trades {bot.timeframe} candles.", location="query")
    if strategy and strategy not in (bot.strategy_name, bot.strategy_name + SPOT_SUFFIX):
        raise InvalidInputError("strategy", f"Bot {bot.name} runs {bot.strategy_name}.", location="query")
    if bot.status != BotStatus.RUNNING:
        raise ConflictError(f"Bot {bot.name} is {bot.status}; its predictions are read while it runs.")
    if not runs_here(bot):
        raise UnavailableError(f"Bot {bot.name} runs on host {bot.host}: its API is reachable on that machine only.")
    space = workspace.workspace_for(bot.pk)
    try:
        section = json.loads(space.config.read_text())["freqai"]
    except (OSError, ValueError, KeyError):
        raise ConflictError(f"Bot {bot.name} runs without a FreqAI section; restart it to run its model.") from None
    try:
        with client_for(bot, timeout=TIMEOUT_SECONDS) as client:
            candles = client.pair_candles(pair, bot.timeframe)
    except FreqtradeApiError as exc:
        raise UnavailableError(f"Bot {bot.name} did not give its candles: {bot.mask_secrets(str(exc))}") from None
    columns, rows = candles.get("columns") or [], candles.get("data") or []
    if not rows:
        raise ConflictError(
            f"Bot {bot.name} has not analysed a {bot.timeframe} candle of {pair} yet; try again shortly."
        )
    latest = dict(zip(columns, rows[-1], strict=False))
    try:
        model = pair_models(space.models / section["identifier"])[pair]
        features, labels = model.features(), model.labels()
    except (ArtifactsError, KeyError, OSError, ValueError) as exc:
        raise ConflictError(f"Bot {bot.name} has no model of {pair} in place ({exc}).") from None
    targets = {label: _number(latest.get(label)) for label in labels}
    do_predict, dissimilarity = _number(latest.get("do_predict")), _number(latest.get("DI_values"))
    threshold = float(section.get("feature_parameters", {}).get("DI_threshold") or 0)
    model_file = next(iter(sorted(model.directory.glob(f"{model.model_filename}_model.*"))), model.metadata)
    running = _IDENTIFIER.match(section["identifier"])
    return {
        "status": "success", "bot_name": bot.name, "bot_id": bot.pk,
        "model_id": int(running["model"]) if running else bot.freqai_model_id,
        "model_version": int(running["version"]) if running else bot.freqai_version,
        "model_path": _home_relative(model_file), "trained_timestamp": model.trained_timestamp,
        "candle_date": latest.get("date"),
        "predictions": {
            "prediction": targets[labels[0]] if labels else None, "targets": targets,
            "confidence": confidence(do_predict, dissimilarity, threshold),
            "do_predict": do_predict, "DI_values": dissimilarity, "features_used": features,
        },
        "parameters": {"pair": pair, "timeframe": bot.timeframe, "strategy": bot.strategy_name},
    }  # fmt: skip

"""A bot's own directory, ``MULTIBOT_BOTS_DIR/<id>/`` (default ``MULTIBOT_HOME/bots/``): config, strategy copy,
trades database, logs.

Nothing here is shared between bots: two bots never share a database or trade each other's
positions. The config holds the bot's API credentials (and live keys), so the directory is 0700
and the config 0600.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from bots.ftconfig import DRY_RUN_WALLET, BotApi, BotPaths, BotSpec, live_exchange_section, render_config
from bots.logfile import tail_lines
from bots.models import Bot
from freqai.artifacts import PAIR_DICTIONARY, ArtifactsError, install_live
from freqai.training import SPOT_SUFFIX
from marketdata.replay_config import replay_exchange_section
from marketdata.selectors import replay_market_pairs
from marketdata.services import exchange_dir
from multibot.files import write_private
from multibot.manager_client import ManagerFetchError
from strategies.library import StrategyCode, copy_strategy, strategy_code, version_code_ensure


class WorkspaceError(Exception):
    """The bot cannot be prepared to run (missing strategy, unreadable keys)."""


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def user_data(self) -> Path:
        return self.root / "user_data"

    @property
    def strategies(self) -> Path:
        return self.user_data / "strategies"

    @property
    def strategy_version(self) -> Path:
        return self.root / "strategy_version"

    @property
    def database(self) -> Path:
        return self.root / "tradesv3.sqlite"

    @property
    def datadir(self) -> Path:
        """The bot's own candles: a FreqAI bot downloads its training history here at start (never into the
        stored candles other bots and jobs read)."""
        return self.root / "data"

    @property
    def models(self) -> Path:
        """FreqAI's models directory: ``<identifier>/`` holds the installed version and what the bot retrains."""
        return self.user_data / "models"

    @property
    def log(self) -> Path:
        return self.root / "logs" / "freqtrade.log"

    def command(self, python: str) -> list[str]:
        """The bot's command line; its config path (unique per bot) is the marker that finds it again."""
        # freqtrade logs to stderr; the supervisor sends it to ``log`` (one file for everything it says).
        return [python, "-m", "freqtrade", "trade", "--config", str(self.config)]


def workspace_for(bot_id: int) -> Workspace:
    return Workspace(Path(settings.BOTS["dir"]) / str(bot_id))


def _replay_pairs(bot: Bot) -> list[str]:
    """The bot's pairs; none listed means every replay market of its stake currency, as stored now."""
    if bot.pair_whitelist:
        return list(bot.pair_whitelist)
    pairs = replay_market_pairs(quote=bot.stake_currency)
    if not pairs:
        raise WorkspaceError(
            f"the bot lists no pairs and the replay exchange has no market quoted in {bot.stake_currency}: "
            "list pair_whitelist, or upload 1m candles of such a pair"
        )
    return pairs


def _exchange_section(bot: Bot) -> dict:
    if bot.exchange == "replay":
        return replay_exchange_section(_replay_pairs(bot))
    if not bot.dry_run and not (bot.exchange_key and bot.exchange_secret):
        raise WorkspaceError("live trading needs exchange keys, and they cannot be read (SECRET_KEY changed?)")
    return live_exchange_section(
        name=bot.exchange, key=bot.exchange_key or "", secret=bot.exchange_secret or "", pairs=bot.pair_whitelist
    )


def _copy_strategy(workspace: Workspace, code: StrategyCode) -> None:
    """The bot's own copy of the exact version it starts with: a later upload changes no running bot."""
    copy_strategy(code, workspace.strategies)
    write_private(workspace.strategy_version, code.sha256)


def running_strategy_version(bot_id: int) -> str:
    """The sha256 of the strategy version the bot's copy is, "" when unknown (never started, a placed file)."""
    try:
        return workspace_for(bot_id).strategy_version.read_text().strip()
    except OSError:
        return ""


def prepare(bot: Bot) -> Workspace:
    """Write the bot's directory for a start: its rendered config and a read-only copy of its strategy (a bot
    on a FreqAI model: the strategy version the model's version was trained with, whose features it has)."""
    code = (_trained_strategy_code(bot) if bot.freqai_model_id else None) or strategy_code(bot.strategy_name,
                                                                                          owner=bot.owner)  # fmt: skip
    if code is None:
        raise WorkspaceError(f"strategy {bot.strategy_name!r} is not in the strategy library")
    if code.sha256 and not code.source.exists():
        # A gateway on another machine than the manager's, where versions are stored: fetched, verified.
        try:
            version_code_ensure(code.sha256)
        except ManagerFetchError as exc:
            raise WorkspaceError(str(exc)) from exc
    workspace = workspace_for(bot.pk)
    for directory in (workspace.root, workspace.user_data, workspace.strategies, workspace.log.parent):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    workspace.root.chmod(0o700)
    _copy_strategy(workspace, code)
    exchange = _exchange_section(bot)
    freqai = _install_model(bot, workspace, exchange["pair_whitelist"]) if bot.freqai_model_id else None
    spec = BotSpec(
        bot_id=bot.pk, name=bot.name, exchange=exchange, stake_currency=bot.stake_currency, timeframe=bot.timeframe,
        strategy=bot.strategy_name + SPOT_SUFFIX if freqai else bot.strategy_name,
        stake_amount=None if bot.stake_amount is None else float(bot.stake_amount),
        max_open_trades=bot.max_open_trades, dry_run=bot.dry_run, dry_run_wallet=DRY_RUN_WALLET,
        freqaimodel=freqai["model_type"] if freqai else "", freqai=freqai["section"] if freqai else None,
    )  # fmt: skip
    api = BotApi(port=bot.api_port, username=bot.api_username, password=bot.api_password or "",
                 jwt_secret_key=bot.jwt_secret_key or "", ws_token=bot.ws_token or "")  # fmt: skip
    paths = BotPaths(user_data=str(workspace.user_data), strategies=str(workspace.strategies),
                     database=str(workspace.database),
                     datadir=str(workspace.datadir if freqai else exchange_dir("replay")))  # fmt: skip
    write_private(workspace.config, json.dumps(render_config(spec, api, paths), indent=2))
    return workspace


# -- a FreqAI bot --------------------------------------------------------------------------------------
def _trained_strategy_code(bot: Bot) -> StrategyCode | None:
    """The strategy version the bot's model version was trained with; None for a file an operator placed
    (no versions: the one in place)."""
    from freqai.models import FreqaiModelVersion
    from strategies.models import StrategyVersion

    version = FreqaiModelVersion.objects.select_related("job").filter(
        model_id=bot.freqai_model_id, version=bot.freqai_version).first()  # fmt: skip
    trained = (version.job.parameters if version is not None and version.job is not None else None) or {}
    if not trained.get("strategy_sha256"):
        return None
    found = StrategyVersion.objects.select_related("strategy").filter(pk=trained.get("strategy_version")).first()
    if found is None or found.sha256 != trained["strategy_sha256"]:
        raise WorkspaceError(f"the version of {bot.strategy_name!r} the FreqAI model was trained with is no longer "
                             "stored; train the model again")  # fmt: skip
    return StrategyCode.of_version(found)


# Kept per pair once the bot retrains: its newest models and the one before (freqai.purge_old_models).
PURGE_OLD_MODELS = 2


def model_identifier(model_id: int, version: int) -> str:
    """FreqAI's identifier of a bot running a model's version: its models directory's name."""
    return f"model-{model_id}-v{version}"


def replay_shift_seconds() -> int | None:
    """How far the replay exchange's clock runs ahead of the stored candles' (whole days), as this process
    can tell: from the replay's anchor (written by the replay exchange when it first served, under the
    same MULTIBOT_HOME) and the stored candles; None when neither is here (a gateway on another machine)."""
    from urllib.parse import urlparse

    from marketdata.market import replay_market
    from marketdata.replay_market import ReplayError

    local = urlparse(settings.REPLAY_EXCHANGE_URL).hostname in ("127.0.0.1", "localhost", "::1")
    if not local or not Path(settings.REPLAY["anchor_file"]).is_file():
        return None  # not this machine's replay: its anchor here would be another clock's
    market = replay_market()
    try:
        market.stored_now()  # loads the candles and the clock
    except ReplayError:
        return None
    assert market.clock is not None
    return market.clock.wall_shift(market.now_ms()) // 1000


def _on_wall_clock(target: Path, shift: int) -> None:
    """FreqAI live judges a model's age by the wall clock against its pair dictionary's ``trained_timestamp``;
    a training on stored candles stamps stored time. On the replay the market's now is stored time plus the
    replay's shift, so the stamp moves by that shift: a model trained up to the replay's present is fresh."""
    dictionary = target / PAIR_DICTIONARY
    recorded = json.loads(dictionary.read_text())
    for entry in recorded.values():
        entry["trained_timestamp"] = int(entry["trained_timestamp"]) + shift
    dictionary.write_text(json.dumps(recorded))


def _install_model(bot: Bot, workspace: Workspace, pairs: list[str]) -> dict[str, Any]:
    """The bot's version of its model installed as FreqAI's own (unless already there, with what the bot
    retrained since), the spot subclass of its strategy, and its ``freqai`` section: the training's
    parameters with the live ones (retrain period, purge, no expiry)."""
    from freqai import training
    from freqai.models import FreqaiModelVersion

    versions = FreqaiModelVersion.objects.select_related("model", "job").filter(ready_at__isnull=False)
    version = versions.filter(model_id=bot.freqai_model_id, version=bot.freqai_version).first()
    if version is None:
        raise WorkspaceError(f"version {bot.freqai_version} of the bot's FreqAI model is not ready; "
                             "reload the model (POST /bots/{bot}/reload-model)")  # fmt: skip
    model = version.model
    identifier = model_identifier(model.pk, version.version)
    target = workspace.models / identifier
    installed = _installed_pairs(target)
    if not set(pairs) <= installed:
        artifacts = Path(settings.HOME) / version.artifacts_dir
        try:
            install_live(artifacts, target, pairs=pairs)
        except (ArtifactsError, OSError, shutil.Error) as exc:  # shutil.Error: a copy that failed part-way
            raise WorkspaceError(f"the FreqAI model's version {version.version} cannot be installed: {exc}") from exc
        # The stamps move once, when installed: what the bot retrains later it stamps on its own clock.
        shift = replay_shift_seconds() if bot.exchange == "replay" else 0
        if shift:
            _on_wall_clock(target, shift)
    for stale in workspace.models.glob("model-*"):
        if stale.is_dir() and stale.name != identifier:
            shutil.rmtree(stale, ignore_errors=True)  # an earlier version's: never loaded again
    write_private(workspace.strategies / f"{bot.strategy_name}{training.SPOT_SUFFIX}.py",
                  training.spot_wrapper(bot.strategy_name))  # fmt: skip
    trained = (version.job.parameters if version.job else {}) or {}
    parameters = {field: trained.get(field, getattr(model, field)) for field in (
        "model_type", "train_period_days", "backtest_period_days", "include_timeframes", "include_corr_pairlist",
        "label_period_candles", "indicator_periods_candles")}  # fmt: skip
    section = training.freqai_section({**parameters, "identifier": identifier})
    section.update(live_retrain_hours=model.live_retrain_hours, expiration_hours=0, purge_old_models=PURGE_OLD_MODELS,
                   save_backtest_models=False)  # fmt: skip
    return {"model_type": parameters["model_type"], "section": section}


def _installed_pairs(target: Path) -> set[str]:
    try:
        return set(json.loads((target / PAIR_DICTIONARY).read_text()))
    except (OSError, ValueError):
        return set()


def remove(bot_id: int) -> None:
    shutil.rmtree(workspace_for(bot_id).root, ignore_errors=True)


def log_tail(bot_id: int, lines: int = 100) -> list[str]:
    return (tail_lines(workspace_for(bot_id).log) or [])[-lines:]

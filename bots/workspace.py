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

from django.conf import settings

from bots.ftconfig import DRY_RUN_WALLET, BotApi, BotPaths, BotSpec, live_exchange_section, render_config
from bots.logfile import tail_lines
from bots.models import Bot
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
    """Write the bot's directory for a start: its rendered config and a read-only copy of its strategy."""
    code = strategy_code(bot.strategy_name, owner=bot.owner)
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
    spec = BotSpec(
        bot_id=bot.pk, name=bot.name, strategy=bot.strategy_name, exchange=_exchange_section(bot),
        stake_currency=bot.stake_currency, timeframe=bot.timeframe,
        stake_amount=None if bot.stake_amount is None else float(bot.stake_amount),
        max_open_trades=bot.max_open_trades, dry_run=bot.dry_run, dry_run_wallet=DRY_RUN_WALLET,
    )  # fmt: skip
    api = BotApi(port=bot.api_port, username=bot.api_username, password=bot.api_password or "",
                 jwt_secret_key=bot.jwt_secret_key or "", ws_token=bot.ws_token or "")  # fmt: skip
    paths = BotPaths(user_data=str(workspace.user_data), strategies=str(workspace.strategies),
                     database=str(workspace.database), datadir=str(exchange_dir("replay")))  # fmt: skip
    write_private(workspace.config, json.dumps(render_config(spec, api, paths), indent=2))
    return workspace


def remove(bot_id: int) -> None:
    shutil.rmtree(workspace_for(bot_id).root, ignore_errors=True)


def log_tail(bot_id: int, lines: int = 100) -> list[str]:
    return (tail_lines(workspace_for(bot_id).log) or [])[-lines:]

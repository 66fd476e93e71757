"""Render a bot's freqtrade configuration (no Django: plain values in, a config dict out)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# freqtrade's word for a stake that is not fixed: each trade stakes an equal share of what the wallet allows.
UNLIMITED_STAKE = "unlimited"
# Every bot's dry-run wallet, in its stake currency, and the share of it freqtrade may trade with:
# freqtrade's own starting capital of a dry-run bot is their product.
DRY_RUN_WALLET = 1000.0
TRADABLE_BALANCE_RATIO = 0.99
# A bot on a real exchange that lists no pairs trades what freqtrade's own config template starts with:
# the 20 most traded pairs of its stake currency, refreshed every 30 minutes.
VOLUME_PAIRLIST = {
    "method": "VolumePairList", "number_assets": 20, "sort_key": "quoteVolume", "min_value": 0, "refresh_period": 1800,
}  # fmt: skip


@dataclass(frozen=True)
class BotSpec:
    bot_id: int
    name: str
    strategy: str
    exchange: dict[str, Any]  # freqtrade's "exchange" section (replay or a real ccxt exchange)
    stake_currency: str
    stake_amount: float | None  # None: UNLIMITED_STAKE
    timeframe: str
    max_open_trades: int
    dry_run: bool
    dry_run_wallet: float
    # A FreqAI bot: freqtrade's model class and its ``freqai`` section (None: no FreqAI).
    freqaimodel: str = ""
    freqai: dict[str, Any] | None = None


@dataclass(frozen=True)
class BotApi:
    """The bot's own REST API: on 127.0.0.1 only, with credentials only Multibot knows."""

    port: int
    username: str
    password: str
    jwt_secret_key: str
    ws_token: str


@dataclass(frozen=True)
class BotPaths:
    user_data: str
    strategies: str
    database: str
    datadir: str


def render_config(spec: BotSpec, api: BotApi, paths: BotPaths) -> dict[str, Any]:
    config = _render(spec, api, paths)
    if spec.freqai is not None:
        # FreqAI keeps its training history in memory and appends each new candle to it. With pandas 3, history
        # read from feather (or parquet) carries ZoneInfo("UTC") dates and live candles timezone.utc ones, and
        # their concatenation has object dates, on which the strategy's features fail at the next retraining;
        # json history reads back as the live candles do. Only this bot's own downloaded history is json.
        config.update(freqaimodel=spec.freqaimodel, freqai=spec.freqai, dataformat_ohlcv="json")
    return config


def _render(spec: BotSpec, api: BotApi, paths: BotPaths) -> dict[str, Any]:
    return {
        "bot_name": spec.name,
        "initial_state": "running",
        "strategy": spec.strategy,
        "strategy_path": paths.strategies,
        "user_data_dir": paths.user_data,
        "datadir": paths.datadir,
        "db_url": f"sqlite:///{paths.database}",
        "dataformat_ohlcv": "feather",
        "max_open_trades": spec.max_open_trades,
        "stake_currency": spec.stake_currency,
        "stake_amount": UNLIMITED_STAKE if spec.stake_amount is None else spec.stake_amount,
        "tradable_balance_ratio": TRADABLE_BALANCE_RATIO,
        "dry_run": spec.dry_run,
        "dry_run_wallet": spec.dry_run_wallet,
        "cancel_open_orders_on_exit": False,
        "timeframe": spec.timeframe,
        "trading_mode": "spot",
        "exchange": spec.exchange,
        "pairlists": [{"method": "StaticPairList"}] if spec.exchange.get("pair_whitelist") else [VOLUME_PAIRLIST],
        "entry_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
        "exit_pricing": {"price_side": "same", "use_order_book": True, "order_book_top": 1},
        "unfilledtimeout": {"entry": 10, "exit": 10, "exit_timeout_count": 0, "unit": "minutes"},
        "force_entry_enable": False,
        "internals": {"process_throttle_secs": 5, "heartbeat_interval": 60},
        "telegram": {"enabled": False, "token": "", "chat_id": ""},
        "api_server": {
            "enabled": True,
            "listen_ip_address": "127.0.0.1",  # never reachable from outside this host
            "listen_port": api.port,
            "verbosity": "error",
            "enable_openapi": False,
            "jwt_secret_key": api.jwt_secret_key,
            "ws_token": api.ws_token,
            "CORS_origins": [],
            "username": api.username,
            "password": api.password,
        },
    }


def live_exchange_section(*, name: str, key: str, secret: str, pairs: list[str]) -> dict[str, Any]:
    return {
        "name": name, "key": key, "secret": secret, "ccxt_config": {}, "ccxt_async_config": {},
        "pair_whitelist": list(pairs), "pair_blacklist": [],
    }  # fmt: skip

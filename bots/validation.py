"""Rules for a bot's trading configuration, as freqtrade would enforce them (no Django here)."""

from __future__ import annotations

import re
from decimal import Decimal

# freqtrade's timeframes (what its exchange classes accept for candles).
TIMEFRAMES = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")
REPLAY_EXCHANGE = "replay"

BOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
STRATEGY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
CURRENCY = re.compile(r"^[A-Z0-9]{2,16}$")
PAIR = re.compile(r"^(?P<base>[A-Z0-9]{2,20})/(?P<quote>[A-Z0-9]{2,16})(?::(?P<settle>[A-Z0-9]{2,16}))?$")
EXCHANGE_ID = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


class ConfigError(ValueError):
    """A configuration value freqtrade would refuse; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_bot_name(name: str) -> None:
    if not BOT_NAME.match(name) or name in (".", ".."):
        raise ConfigError(
            "name",
            "Use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit.",
        )


def check_strategy_name(name: str) -> None:
    if not STRATEGY_NAME.match(name):
        raise ConfigError("strategy_name", "A strategy name is its Python class name, like 'SampleStrategy'.")


def check_timeframe(timeframe: str) -> None:
    if timeframe not in TIMEFRAMES:
        raise ConfigError("timeframe", f"Unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}.")


def check_exchange(exchange: str, known: frozenset[str]) -> None:
    if exchange == REPLAY_EXCHANGE:
        return
    if not EXCHANGE_ID.match(exchange) or exchange not in known:
        raise ConfigError(
            "exchange", f"Unknown exchange {exchange!r}; use 'replay' or a ccxt exchange id like 'binance'."
        )


def check_stake_currency(currency: str) -> None:
    if not CURRENCY.match(currency):
        raise ConfigError("stake_currency", "A stake currency is an upper-case symbol like 'USDT'.")


def check_stake_amount(amount: Decimal) -> None:
    if amount <= 0:
        raise ConfigError("stake_amount", "ensure this value is greater than 0")


def check_max_open_trades(value: int) -> None:
    if value != -1 and not 1 <= value <= 1000:
        raise ConfigError("max_open_trades", "Use 1 to 1000 open trades, or -1 for no limit.")


def check_pairs(pairs: list[str], stake_currency: str) -> None:
    if len(pairs) > 500:
        raise ConfigError("pair_whitelist", "At most 500 pairs per bot.")
    seen: set[str] = set()
    for pair in pairs:
        match = PAIR.match(pair) if isinstance(pair, str) else None
        if match is None:
            raise ConfigError("pair_whitelist", f"{pair!r} is not a pair; write pairs like 'BTC/USDT'.")
        if match["quote"] != stake_currency:
            raise ConfigError(
                "pair_whitelist",
                f"{pair} is quoted in {match['quote']}, but the bot stakes {stake_currency}.",
            )
        if pair in seen:
            raise ConfigError("pair_whitelist", f"{pair} is listed twice.")
        seen.add(pair)


def check_trading_mode(*, exchange: str, dry_run: bool, has_keys: bool) -> None:
    if dry_run:
        return
    if exchange == REPLAY_EXCHANGE:
        raise ConfigError("dry_run", "The replay exchange only trades in dry-run; set dry_run to true.")
    if not has_keys:
        raise ConfigError("dry_run", "Live trading needs exchange_key and exchange_secret.")

"""Rules for a bot's trading configuration, as freqtrade would enforce them (no Django here).

``check_bot`` checks a bot as it would be after a create or an update; what needs the outside world
(ccxt's exchange list, the replay exchange's stored markets) is asked for lazily, only when a field
it depends on changed.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from decimal import Decimal

from marketdata.vocabulary import CURRENCY, REPLAY_TIMEFRAMES, TIMEFRAMES, parse_pair

REPLAY_EXCHANGE = "replay"
# The largest stake a bot may have: far above any real one, and stored and read back exactly everywhere
# (the column holds 16 integer digits; SQLite keeps 15 significant digits).
MAX_STAKE = Decimal(10**12)
STAKE_DIGITS = 15
MAX_OPEN_TRADES = 1000
MAX_PAIRS = 500

BOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
STRATEGY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
EXCHANGE_ID = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
# The fields whose change means the pairs must be checked against the market again.
_MARKET_FIELDS = frozenset({"exchange", "stake_currency", "pair_whitelist"})


class ConfigError(ValueError):
    """A configuration value freqtrade would refuse; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class BotConfig:
    """What a bot trades with; ``stake_amount`` None is freqtrade's "unlimited"."""

    name: str
    strategy_name: str
    exchange: str
    stake_currency: str
    stake_amount: Decimal | None
    timeframe: str
    pair_whitelist: tuple[str, ...]
    max_open_trades: int
    dry_run: bool
    has_keys: bool


def check_bot(
    config: BotConfig,
    *,
    changed: Iterable[str],
    known_exchanges: Callable[[], Collection[str]],
    replay_markets: Callable[[], Collection[str]],
) -> None:
    """Every rule, in the order a user would fix them; ConfigError names the first broken one."""
    changed = frozenset(changed)
    check_bot_name(config.name)
    check_strategy_name(config.strategy_name)
    check_stake_currency(config.stake_currency)
    check_stake_amount(config.stake_amount, max_open_trades=config.max_open_trades)
    check_timeframe(config.timeframe, exchange=config.exchange)
    check_max_open_trades(config.max_open_trades)
    check_pairs(list(config.pair_whitelist), config.stake_currency)
    if "exchange" in changed:
        check_exchange(config.exchange, known_exchanges() if config.exchange != REPLAY_EXCHANGE else frozenset())
    if config.exchange == REPLAY_EXCHANGE and changed & _MARKET_FIELDS:
        check_replay_pairs(list(config.pair_whitelist), markets=replay_markets())
    check_trading_mode(exchange=config.exchange, dry_run=config.dry_run, has_keys=config.has_keys)


def check_bot_name(name: str) -> None:
    if not BOT_NAME.match(name) or name in (".", ".."):
        raise ConfigError(
            "name",
            "Use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit.",
        )


def check_strategy_name(name: str) -> None:
    """A plain class name: freqtrade imports the strategy by it, so no keyword and no ``__dunder__``."""
    if not STRATEGY_NAME.match(name):
        raise ConfigError("strategy_name", "A strategy name is its Python class name, like 'SampleStrategy'.")
    if keyword.iskeyword(name) or (name.startswith("__") and name.endswith("__")):
        raise ConfigError(
            "strategy_name", f"{name!r} cannot be a strategy's class name; use a plain one, like 'SampleStrategy'."
        )


def check_timeframe(timeframe: str, *, exchange: str) -> None:
    if timeframe not in TIMEFRAMES:
        raise ConfigError("timeframe", f"Unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}.")
    if exchange == REPLAY_EXCHANGE and timeframe not in REPLAY_TIMEFRAMES:
        raise ConfigError(
            "timeframe",
            f"The replay exchange serves candles up to 1d; use one of {', '.join(REPLAY_TIMEFRAMES)}.",
        )


def check_exchange(exchange: str, known: Collection[str]) -> None:
    if exchange == REPLAY_EXCHANGE:
        return
    if not EXCHANGE_ID.match(exchange) or exchange not in known:
        raise ConfigError(
            "exchange", f"Unknown exchange {exchange!r}; use 'replay' or a ccxt exchange id like 'binance'."
        )


def check_stake_currency(currency: str) -> None:
    if not CURRENCY.match(currency):
        raise ConfigError("stake_currency", "A stake currency is an upper-case symbol like 'USDT'.")


def check_stake_amount(amount: Decimal | None, *, max_open_trades: int) -> None:
    if amount is None:
        if max_open_trades == -1:
            raise ConfigError("stake_amount", "max_open_trades and stake_amount cannot both be unlimited.")
        return
    if amount <= 0:
        raise ConfigError("stake_amount", "ensure this value is greater than 0")
    if amount > MAX_STAKE:
        raise ConfigError("stake_amount", f"Use a stake of at most {MAX_STAKE} (10^12), or 'unlimited'.")
    if len(amount.normalize().as_tuple().digits) > STAKE_DIGITS:
        raise ConfigError("stake_amount", f"Write the stake with at most {STAKE_DIGITS} significant digits.")


def check_max_open_trades(value: int) -> None:
    if value != -1 and not 1 <= value <= MAX_OPEN_TRADES:
        raise ConfigError("max_open_trades", f"Use 1 to {MAX_OPEN_TRADES} open trades, or -1 for no limit.")


def check_pairs(pairs: list[str], stake_currency: str) -> None:
    """Spot pairs quoted in the stake currency, each once. None is allowed: a bot then trades a default
    (the replay's stored markets, or a real exchange's most traded pairs; see bots.workspace)."""
    if len(pairs) > MAX_PAIRS:
        raise ConfigError("pair_whitelist", f"At most {MAX_PAIRS} pairs per bot.")
    seen: set[str] = set()
    for pair in pairs:
        parsed = parse_pair(pair)
        if parsed is None:
            raise ConfigError("pair_whitelist", f"{pair!r} is not a pair; write pairs like 'BTC/USDT'.")
        if not parsed.is_spot:
            raise ConfigError(
                "pair_whitelist",
                f"{pair} is a futures pair; bots trade spot markets: write it {parsed.base}/{parsed.quote}.",
            )
        if parsed.quote != stake_currency:
            raise ConfigError(
                "pair_whitelist",
                f"{pair} is quoted in {parsed.quote}, but the bot stakes {stake_currency}.",
            )
        if pair in seen:
            raise ConfigError("pair_whitelist", f"{pair} is listed twice.")
        seen.add(pair)


def check_replay_pairs(pairs: list[str], *, markets: Collection[str]) -> None:
    """Every pair must be a market of the replay exchange: a pair whose 1m candles are stored."""
    for pair in pairs:
        if pair not in markets:
            listing = ", ".join(sorted(markets)[:20]) or "none yet"
            raise ConfigError(
                "pair_whitelist",
                f"The replay exchange has no {pair} market (its markets: {listing}); upload its 1m candles first.",
            )


def check_trading_mode(*, exchange: str, dry_run: bool, has_keys: bool) -> None:
    if dry_run:
        return
    if exchange == REPLAY_EXCHANGE:
        raise ConfigError("dry_run", "The replay exchange only trades in dry-run; set dry_run to true.")
    if not has_keys:
        raise ConfigError("dry_run", "Live trading needs exchange_key and exchange_secret.")

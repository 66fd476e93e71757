"""Timeframes and pairs as freqtrade writes them: one definition for bots, candle storage and the replay exchange.

No Django here. A timeframe is freqtrade's name for a candle length (``5m``, ``1h``); a pair is
``BASE/QUOTE`` for spot or ``BASE/QUOTE:SETTLE`` for futures, upper-case symbols. Users may also
write a spot pair ``BASE_QUOTE`` where a slash is awkward (a URL); candle files are named that way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DAY_SECONDS = 86_400

# Every timeframe of a fixed length, in seconds: what candle files are stored, resampled and gap-checked in.
TIMEFRAME_SECONDS: dict[str, int] = {
    "1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200, "4h": 14400,
    "6h": 21600, "8h": 28800, "12h": 43200, "1d": DAY_SECONDS, "3d": 3 * DAY_SECONDS, "1w": 7 * DAY_SECONDS,
}  # fmt: skip
# What a bot may trade on: freqtrade's timeframes, the fixed ones and the calendar month.
TIMEFRAMES: tuple[str, ...] = (*TIMEFRAME_SECONDS, "1M")
# The replay shifts stored time by whole days, so only a candle that divides a day stays aligned in it.
REPLAY_TIMEFRAMES: tuple[str, ...] = tuple(tf for tf, sec in TIMEFRAME_SECONDS.items() if DAY_SECONDS % sec == 0)
# The replay's markets are the pairs stored in this timeframe; every other one is built from it.
REPLAY_BASE_TIMEFRAME = "1m"

CURRENCY = re.compile(r"^[A-Z0-9]{2,16}$")
PAIR = re.compile(r"^(?P<base>[A-Z0-9]{2,20})/(?P<quote>[A-Z0-9]{2,16})(?::(?P<settle>[A-Z0-9]{2,16}))?$")


def timeframe_ms(timeframe: str) -> int:
    """Milliseconds of a fixed-length timeframe; KeyError for any other (``1M`` has no fixed length)."""
    return TIMEFRAME_SECONDS[timeframe] * 1000


@dataclass(frozen=True)
class Pair:
    base: str
    quote: str
    settle: str = ""  # futures only: the currency the contract settles in

    @property
    def is_spot(self) -> bool:
        return not self.settle

    @property
    def file_stem(self) -> str:
        """freqtrade's file-name form of a spot pair: ``BTC/USDT`` -> ``BTC_USDT``."""
        return f"{self.base}_{self.quote}"

    def __str__(self) -> str:
        return f"{self.base}/{self.quote}" + (f":{self.settle}" if self.settle else "")


def parse_pair(text: object) -> Pair | None:
    """The pair ``text`` names (``BTC/USDT``, ``BTC/USDT:USDT``), or None when it is not one."""
    match = PAIR.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    return Pair(match["base"], match["quote"], match["settle"] or "")


def pair_from_input(raw: str) -> str:
    """``BTC_USDT`` -> ``BTC/USDT``; anything else is returned as given (stripped).

    Base and quote never contain ``_`` (see ``PAIR``), so one underscore is the separator.
    """
    raw = raw.strip()
    if "/" not in raw and raw.count("_") == 1:
        return raw.replace("_", "/")
    return raw


def pair_from_file_stem(stem: str) -> str:
    """``BTC_USDT`` (a candle file's name before ``-<timeframe>``) -> ``BTC/USDT``."""
    base, _, quote = stem.partition("_")
    return f"{base}/{quote}"


def is_spot_pair(pair: str) -> bool:
    """``BTC/USDT`` yes; ``BTC/USDT:USDT`` (a futures pair, stored under another name by freqtrade) no."""
    parsed = parse_pair(pair)
    return parsed is not None and parsed.is_spot

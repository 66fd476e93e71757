"""Pair names as users write them (``BTC/USDT``, or ``BTC_USDT`` where a slash is awkward, as in a URL)."""

from __future__ import annotations

from bots.validation import PAIR


def pair_from_input(raw: str) -> str:
    """``BTC_USDT`` -> ``BTC/USDT``; anything else is returned as given (stripped).

    Base and quote never contain ``_`` (see ``bots.validation.PAIR``), so one underscore is the separator.
    """
    raw = raw.strip()
    if "/" not in raw and raw.count("_") == 1:
        return raw.replace("_", "/")
    return raw


def is_spot_pair(pair: str) -> bool:
    """``BTC/USDT`` yes; ``BTC/USDT:USDT`` (a futures pair, stored under another name by freqtrade) no."""
    match = PAIR.match(pair)
    return match is not None and not match["settle"]

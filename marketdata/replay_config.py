"""The freqtrade ``exchange`` section that points a bot or a backtest at the replay exchange.

freqtrade talks to it as Binance (spot): ccxt's Binance API URLs are replaced by the replay
exchange's, only spot markets are loaded, and websockets are off (the replay is REST only).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

# Every API family ccxt's Binance class knows, so nothing can reach the real exchange by accident.
_API_PATHS = {
    "public": "/api/v3", "private": "/api/v3", "v1": "/api/v1",
    "sapi": "/sapi/v1", "sapiV2": "/sapi/v2", "sapiV3": "/sapi/v3", "sapiV4": "/sapi/v4",
    "fapiPublic": "/fapi/v1", "fapiPublicV2": "/fapi/v2", "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1", "fapiPrivateV2": "/fapi/v2", "fapiPrivateV3": "/fapi/v3", "fapiData": "/futures/data",
    "dapiPublic": "/dapi/v1", "dapiPrivate": "/dapi/v1", "dapiPrivateV2": "/dapi/v2", "dapiData": "/futures/data",
    "eapiPublic": "/eapi/v1", "eapiPrivate": "/eapi/v1", "papi": "/papi/v1", "papiV2": "/papi/v2",
}  # fmt: skip


def ccxt_settings(url: str | None = None) -> dict[str, Any]:
    base = (url or settings.REPLAY_EXCHANGE_URL).rstrip("/")
    return {
        "urls": {"api": {name: base + path for name, path in _API_PATHS.items()}},
        "options": {"fetchMarkets": {"types": ["spot"]}, "defaultType": "spot", "fetchCurrencies": False},
        "enableRateLimit": False,
    }


def replay_exchange_section(pairs: list[str], url: str | None = None) -> dict[str, Any]:
    """freqtrade's ``exchange`` config for the replay exchange, with the given pair whitelist."""
    ccxt = ccxt_settings(url)
    return {
        "name": "binance",
        "key": "",
        "secret": "",
        "ccxt_config": ccxt,
        "ccxt_async_config": ccxt,
        "enable_ws": False,
        # Candle history only through ccxt, from the replay: freqtrade's Binance class otherwise downloads
        # 1m-5m history from Binance's public archive (a FreqAI bot's start does), which is the real market.
        "only_from_ccxt": True,
        "pair_whitelist": list(pairs),
        "pair_blacklist": [],
    }

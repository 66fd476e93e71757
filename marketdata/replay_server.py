"""The replay exchange's HTTP face: the Binance spot REST endpoints ccxt and freqtrade use, in Binance's formats.

Served: ping, time, exchangeInfo, klines (and uiKlines), ticker/24hr, ticker/price, ticker/bookTicker,
depth, avgPrice. Anything else answers like Binance does for what it does not know. Private
endpoints are refused: the replay exchange only serves dry-run bots.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from marketdata.replay_market import ReplayError, ReplayMarket, _num

logger = logging.getLogger(__name__)

DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)
SPREAD = 0.0002  # relative distance between best bid and best ask


def tick_size(price: float) -> float:
    """About six significant digits of price, like Binance's spot filters."""
    return 10.0 ** min(-2, max(-8, math.floor(math.log10(max(price, 1e-8))) - 5))


def step_size(price: float) -> float:
    """A lot step worth roughly a cent to a dime."""
    return 10.0 ** min(0, max(-8, math.floor(math.log10(0.1 / max(price, 1e-8)))))


def _round_to(value: float, step: float) -> float:
    return round(round(value / step) * step, 10)


def _symbol_info(market: ReplayMarket, symbol: str, base: str, quote: str) -> dict[str, Any]:
    price = market.reference_price(symbol)
    tick, step = tick_size(price), step_size(price)
    return {
        "symbol": symbol, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
        "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True, "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True, "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": _num(tick), "maxPrice": _num(price * 1000),
             "tickSize": _num(tick)},
            {"filterType": "LOT_SIZE", "minQty": _num(step), "maxQty": "9000000.00000000", "stepSize": _num(step)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "9000000.00000000",
             "stepSize": "0.00000000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ],
        "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }  # fmt: skip


def _error(code: int, msg: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg}, status_code=status)


def _int_param(request: Request, name: str, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ReplayError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        ) from None


def _symbol(request: Request, required: bool = True) -> str | None:
    symbol = request.query_params.get("symbol")
    if not symbol and required:
        raise ReplayError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    return symbol.upper() if symbol else None


def _symbols(request: Request, market: ReplayMarket) -> list[str]:
    """One symbol, a JSON list in ``symbols``, or all."""
    one = _symbol(request, required=False)
    if one:
        return [one]
    many = request.query_params.get("symbols")
    if many:
        try:
            listed = json.loads(many)
        except ValueError:
            raise ReplayError(-1100, "Illegal characters found in parameter 'symbols'.") from None
        return [str(symbol).upper() for symbol in listed]
    return [candles.symbol for candles in market.symbols()]


def build_app(market: ReplayMarket) -> Starlette:
    def endpoint(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def run(request: Request) -> JSONResponse:
            try:
                return JSONResponse(handler(request))
            except ReplayError as exc:
                return _error(exc.code, exc.msg, exc.status)
            except Exception:
                logger.exception("replay exchange failed on %s", request.url.path)
                return _error(-1000, "An unknown error occurred while processing the request.", 500)

        return run

    def ping(request: Request) -> dict:
        return {}

    def server_time(request: Request) -> dict:
        return {"serverTime": market.now_ms()}

    def exchange_info(request: Request) -> dict:
        wanted = set(_symbols(request, market))
        symbols = []
        for candles in market.symbols():
            if candles.symbol in wanted:
                base, quote = candles.pair.split("/")
                symbols.append(_symbol_info(market, candles.symbol, base, quote))
        if not symbols and (request.query_params.get("symbol") or request.query_params.get("symbols")):
            raise ReplayError(-1121, "Invalid symbol.")
        return {
            "timezone": "UTC", "serverTime": market.now_ms(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [], "symbols": symbols,
        }  # fmt: skip

    def klines(request: Request) -> list:
        symbol = _symbol(request)
        interval = request.query_params.get("interval")
        if not interval:
            raise ReplayError(-1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.")
        limit = _int_param(request, "limit", 500)
        if not 1 <= limit <= 1000:
            raise ReplayError(-1100, "Illegal characters found in parameter 'limit'; legal range is '1000'.")
        return market.klines(
            symbol, interval, start=_int_param(request, "startTime"), end=_int_param(request, "endTime"), limit=limit
        )

    def ticker_24h(request: Request) -> Any:
        tickers = [_ticker_24h(market, symbol) for symbol in _symbols(request, market)]
        return tickers[0] if request.query_params.get("symbol") else tickers

    def ticker_price(request: Request) -> Any:
        prices = [{"symbol": s, "price": _num(market.last_price(s))} for s in _symbols(request, market)]
        return prices[0] if request.query_params.get("symbol") else prices

    def book_ticker(request: Request) -> Any:
        books = [_book_ticker(market, symbol) for symbol in _symbols(request, market)]
        return books[0] if request.query_params.get("symbol") else books

    def avg_price(request: Request) -> dict:
        return {"mins": 5, "price": _num(market.last_price(_symbol(request))), "closeTime": market.now_ms()}

    def depth(request: Request) -> dict:
        symbol = _symbol(request)
        limit = _int_param(request, "limit", 100)
        if limit not in DEPTH_LIMITS:
            limit = min((value for value in DEPTH_LIMITS if value >= limit), default=5000)
        bids, asks = order_book(market.last_price(symbol), limit)
        return {"lastUpdateId": market.now_ms(), "bids": bids, "asks": asks}

    def private(request: Request) -> JSONResponse:
        return _error(
            -2015, "Invalid API-key, IP, or permissions for action: the replay exchange is dry-run only.", 401
        )

    async def unknown(request: Request) -> JSONResponse:
        return _error(-1000, f"Unknown endpoint {request.url.path}", 404)

    routes = [
        Route("/api/v3/ping", endpoint(ping)),
        Route("/api/v3/time", endpoint(server_time)),
        Route("/api/v3/exchangeInfo", endpoint(exchange_info)),
        Route("/api/v3/klines", endpoint(klines)),
        Route("/api/v3/uiKlines", endpoint(klines)),
        Route("/api/v3/ticker/24hr", endpoint(ticker_24h)),
        Route("/api/v3/ticker/price", endpoint(ticker_price)),
        Route("/api/v3/ticker/bookTicker", endpoint(book_ticker)),
        Route("/api/v3/avgPrice", endpoint(avg_price)),
        Route("/api/v3/depth", endpoint(depth)),
        Route("/api/v3/{path:path}", private, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/sapi/{path:path}", private, methods=["GET", "POST", "PUT", "DELETE"]),
    ]
    app = Starlette(routes=routes)
    app.add_route("/{path:path}", unknown, methods=["GET", "POST", "PUT", "DELETE"])
    return app


def order_book(price: float, limit: int) -> tuple[list[list[str]], list[list[str]]]:
    """A deterministic book around the last price: tight at the top, deeper further out."""
    tick = tick_size(price)
    step = step_size(price)
    best_bid = _round_to(price * (1 - SPREAD / 2), tick)
    best_ask = max(_round_to(price * (1 + SPREAD / 2), tick), best_bid + tick)
    base_qty = max(step, _round_to(500 / price, step))  # ~500 quote at the top level
    bids, asks = [], []
    for level in range(limit):
        gap = level * max(tick, _round_to(price * 0.00005, tick))
        qty = _num(_round_to(base_qty * (1 + level * 0.25), step))
        bids.append([_num(best_bid - gap), qty])
        asks.append([_num(best_ask + gap), qty])
    return bids, asks


def _book_ticker(market: ReplayMarket, symbol: str) -> dict[str, str]:
    bids, asks = order_book(market.last_price(symbol), 1)
    return {
        "symbol": symbol,
        "bidPrice": bids[0][0],
        "bidQty": bids[0][1],
        "askPrice": asks[0][0],
        "askQty": asks[0][1],
    }


def _ticker_24h(market: ReplayMarket, symbol: str) -> dict[str, Any]:
    stats = market.ticker_24h(symbol)
    book = _book_ticker(market, symbol)
    return {
        "symbol": symbol, "priceChange": _num(stats["change"]), "priceChangePercent": f"{stats['change_percent']:.3f}",
        "weightedAvgPrice": _num(stats["weighted_avg"]), "prevClosePrice": _num(stats["open"]),
        "lastPrice": _num(stats["last"]), "lastQty": "0.00100000",
        "bidPrice": book["bidPrice"], "bidQty": book["bidQty"], "askPrice": book["askPrice"], "askQty": book["askQty"],
        "openPrice": _num(stats["open"]), "highPrice": _num(stats["high"]), "lowPrice": _num(stats["low"]),
        "volume": _num(stats["volume"]), "quoteVolume": _num(stats["quote_volume"]),
        "openTime": stats["open_time"], "closeTime": stats["close_time"],
        "firstId": 1, "lastId": int(stats["count"]), "count": int(stats["count"]),
    }  # fmt: skip

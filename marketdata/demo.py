"""Deterministic synthetic 1m candles for the demo pairs: the same seed gives the same market, byte for byte.

The model, per pair (all parameters below, in this module):

* **Log-price.** The log-price is a random walk plus a mean-reverting wiggle. Time runs from
  ``EPOCH`` (2017-01-01 UTC); every random stream starts there, so a candle depends only on
  (pair, minute, seed) and never on the range asked for.
* **Trend regimes** (up / down / sideways) form a semi-Markov chain on whole hours: a regime lasts a
  Weibull-distributed time (shape 1.5; about 2.5 days for a trend, 1.5 days sideways, at least
  4 hours) and then moves to another regime (``TREND_NEXT``). A trend's drift is drawn per episode,
  0.5 to 1.5 of the pair's daily standard deviation per day, up or down; sideways has none.
* **Volatility regimes** (calm x0.5, normal x1, stormy x2.2) form an hourly Markov chain
  (``VOLATILITY_TRANSITIONS``): calm lasts about 33 hours, normal 20, stormy 8.
* **Seasonality.** Volatility and volume follow the clock: x0.7 at 03:00 UTC up to x1.3 at
  15:00 UTC (a cosine), and x0.75 on Saturdays and Sundays.
* **Minute volatility** = the pair's annual volatility (``DEMO_PAIRS``, that of the normal regime)
  per sqrt(minute) x regime x seasonality.
* **Days first, then minutes.** Each UTC day's total log-return is drawn first,
  ``r_d ~ N(sum of the day's drifts - kappa * (a_d - log(price)), day variance)``, where ``a_d`` is
  the log-price at 00:00 and kappa pulls the price back to the pair's typical price with a
  half-life of 30 days (BTC stays within about half to twice 60000, whatever the year). The day's
  minute increments are then drawn *given that sum*: independent normals with the minute drifts
  and variances, corrected by ``v_i / sum(v) * (r_d - sum)``, which is exactly the Gaussian
  conditional law. The day's walk therefore starts at ``a_d`` and ends at ``a_(d+1)``.
* **Oscillations.** On top of the walk an Ornstein-Uhlenbeck term (half-life 30 minutes, innovations
  0.8 of the walk's, so a few minute-sigmas wide) makes the price swing around its path at the
  5m scale, which is what RSI / Bollinger strategies trade. It is pinned to zero at 00:00 UTC
  (a linear correction over the day), so a day ends exactly where the next begins.
* **Candles.** open = the path at the minute's start, close = at its end (so open = previous close,
  across days too). High and low are drawn from the exact law of a Brownian bridge's maximum and
  minimum between open and close with the candle's variance:
  ``high = (o + c + sqrt((c - o)^2 - 2 v ln U)) / 2``; hence high >= max(open, close) and
  low <= min(open, close). Prices are rounded to the pair's tick, volumes to its lot.
* **Volume** = the pair's typical minute volume x regime x seasonality x (0.4 + 0.6 |move| / sigma)
  x lognormal noise (sigma 0.5): it rises with volatility and with the size of the candle.

Determinism. Random numbers come from ``numpy.random.default_rng`` seeded with
``[seed, pair_key, stream, ...]``, where ``pair_key`` is the CRC-32 of the pair's name (not its place
in a list). The regime chains draw from one uniform stream each, in fixed chunks, from ``EPOCH``
onwards; the daily shocks come in blocks of 256 days; each day's minutes, wicks and volume come
from their own generator ``[seed, pair_key, 3, day]``. Generating a longer range therefore yields
the very same candles on the overlap, forwards and backwards: stored demo data extends by simply
generating the missing days. The sequential parts (regime chains, the day-to-day recursion) run in
Python floats; the vectorised parts always work on whole days of 1440 minutes, so no value
depends on the length of an array.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

EPOCH = datetime(2017, 1, 1, tzinfo=UTC)  # day 0 of every random stream; a Sunday
DEFAULT_SEED = 20170101
MINUTES_PER_DAY = 1440
HOURS_PER_DAY = 24


@dataclass(frozen=True)
class DemoPair:
    price: float  # typical price in USDT: where the price starts in 2017 and what it returns to
    volatility: float  # annualised, in the normal volatility regime
    volume: float  # typical volume per minute, in the base asset
    price_decimals: int  # the tick: 2 -> 0.01 USDT
    volume_decimals: int  # the lot


DEMO_PAIRS: dict[str, DemoPair] = {
    "BTC/USDT": DemoPair(price=60_000.0, volatility=0.55, volume=15.0, price_decimals=2, volume_decimals=5),
    "ETH/USDT": DemoPair(price=3_000.0, volatility=0.70, volume=250.0, price_decimals=2, volume_decimals=4),
    "SOL/USDT": DemoPair(price=150.0, volatility=0.90, volume=3_000.0, price_decimals=2, volume_decimals=3),
    "BNB/USDT": DemoPair(price=600.0, volatility=0.60, volume=150.0, price_decimals=2, volume_decimals=3),
}

# Trend regimes: drift sign, mean episode length in hours, where to go next (with probabilities).
TRENDS = {"up": 1.0, "down": -1.0, "sideways": 0.0}
TREND_MEAN_HOURS = {"up": 60.0, "down": 60.0, "sideways": 36.0}
TREND_NEXT = {
    "up": (("sideways", 0.55), ("down", 0.45)),
    "down": (("sideways", 0.55), ("up", 0.45)),
    "sideways": (("up", 0.5), ("down", 0.5)),
}
TREND_SHAPE = 1.5  # Weibull shape: few very short episodes
TREND_MIN_HOURS = 4
TREND_STRENGTH = (0.5, 1.5)  # drift per day, in daily standard deviations

# Volatility regimes: multiplier, and the hourly transition matrix (rows sum to 1).
VOLATILITY = {"calm": 0.5, "normal": 1.0, "stormy": 2.2}
VOLATILITY_TRANSITIONS = {
    "calm": {"calm": 0.97, "normal": 0.03, "stormy": 0.0},
    "normal": {"calm": 0.03, "normal": 0.95, "stormy": 0.02},
    "stormy": {"calm": 0.02, "normal": 0.10, "stormy": 0.88},
}

REVERSION_HALF_LIFE_DAYS = 30.0
_KAPPA = math.log(2.0) / REVERSION_HALF_LIFE_DAYS  # the daily pull towards the typical price
WIGGLE_HALF_LIFE_MINUTES = 30.0
WIGGLE_SHARE = 0.8  # the Ornstein-Uhlenbeck innovations relative to the walk's
SEASON_AMPLITUDE = 0.3
SEASON_PEAK_HOUR = 15.0
WEEKEND_FACTOR = 0.75
VOLUME_NOISE = 0.5

_STREAM_TRENDS, _STREAM_VOLATILITY, _STREAM_DAYS, _STREAM_MINUTES = 0, 1, 2, 3
_UNIFORM_CHUNK = 1024
_SHOCK_BLOCK = 256

# Seasonality of one day, minute by minute (the minute's middle), and its square summed per hour.
_MINUTE_OF_DAY = np.arange(MINUTES_PER_DAY, dtype=np.float64)
SEASON = 1.0 + SEASON_AMPLITUDE * np.cos(2 * np.pi * ((_MINUTE_OF_DAY + 0.5) / 60.0 - SEASON_PEAK_HOUR) / 24.0)
_SEASON_SQ_PER_HOUR = [math.fsum(row) for row in (SEASON**2).reshape(HOURS_PER_DAY, 60).tolist()]
_PATH_FRACTION = np.arange(MINUTES_PER_DAY + 1, dtype=np.float64) / MINUTES_PER_DAY


def pair_key(pair: str) -> int:
    return zlib.crc32(pair.encode())


def generate(pair: str, start: datetime, end: datetime, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """1m candles of ``pair`` whose open time is in [start, end); naive datetimes are taken as UTC."""
    profile = DEMO_PAIRS.get(pair)
    if profile is None:
        raise ValueError(f"no demo model for {pair!r}; known: {', '.join(DEMO_PAIRS)}")
    if seed < 0:
        raise ValueError("the seed must be a non-negative integer")
    start, end = _utc(start), _utc(end)
    if start < EPOCH:
        raise ValueError(f"demo candles start at {EPOCH:%Y-%m-%d}")
    if end <= start:
        return _frame(np.empty(0, dtype=np.int64), *(np.empty(0) for _ in range(5)))
    first_day = (start - EPOCH) // timedelta(days=1)
    last_day = (end - timedelta(microseconds=1) - EPOCH) // timedelta(days=1)
    market = _Market(profile, seed, pair_key(pair), last_day)
    days = [market.day(day) for day in range(first_day, last_day + 1)]
    frame = _frame(*(np.concatenate(column) for column in zip(*days, strict=True)))
    keep = (frame["date"] >= start) & (frame["date"] < end)
    return frame.loc[keep].reset_index(drop=True)


class _Market:
    """One pair's hourly regimes and 00:00 log-prices from EPOCH to a last day, and its days of candles."""

    def __init__(self, profile: DemoPair, seed: int, key: int, last_day: int) -> None:
        self.profile, self.seed, self.key = profile, seed, key
        self.minute_sigma = profile.volatility / math.sqrt(365.0 * MINUTES_PER_DAY)
        self.daily_sigma = profile.volatility / math.sqrt(365.0)
        self.level = math.log(profile.price)
        hours = (last_day + 1) * HOURS_PER_DAY
        self.drift = self._trend_drifts(hours)  # per minute, hour by hour
        self.regime = self._volatility_multipliers(hours)  # hour by hour
        self.anchors = self._day_anchors(last_day + 1)  # log-price at 00:00 of days 0 .. last_day + 1

    def _uniforms(self, stream: int) -> Callable[[], float]:
        """Uniforms in (0, 1] from one generator, drawn in fixed chunks: the same sequence however many are used."""
        rng = np.random.default_rng([self.seed, self.key, stream])
        buffer: list[float] = []

        def draw() -> float:
            if not buffer:
                buffer.extend(reversed((1.0 - rng.random(_UNIFORM_CHUNK)).tolist()))
            return buffer.pop()

        return draw

    def _trend_drifts(self, hours: int) -> np.ndarray:
        uniform = self._uniforms(_STREAM_TRENDS)
        shape_scale = math.gamma(1.0 + 1.0 / TREND_SHAPE)  # Weibull scale for a given mean
        episodes: list[tuple[int, float]] = []
        state, covered = "sideways", 0
        while covered < hours:
            scale = TREND_MEAN_HOURS[state] / shape_scale
            length = max(TREND_MIN_HOURS, round(scale * (-math.log(uniform())) ** (1.0 / TREND_SHAPE)))
            low, high = TREND_STRENGTH
            strength = low + (high - low) * uniform()
            episodes.append((length, TRENDS[state] * strength * self.daily_sigma / MINUTES_PER_DAY))
            covered += length
            state = _choose(TREND_NEXT[state], uniform())
        lengths, drifts = zip(*episodes, strict=True)
        return np.repeat(np.array(drifts), lengths)[:hours]

    def _volatility_multipliers(self, hours: int) -> np.ndarray:
        uniform = self._uniforms(_STREAM_VOLATILITY)
        episodes: list[tuple[int, float]] = []
        state, covered = "normal", 0
        while covered < hours:
            stay = VOLATILITY_TRANSITIONS[state][state]
            # A Markov chain's stay in one state is geometric: 1 + floor(ln U / ln p_stay) hours.
            length = 1 + int(math.log(uniform()) / math.log(stay))
            episodes.append((length, VOLATILITY[state]))
            covered += length
            moves = [(other, p) for other, p in VOLATILITY_TRANSITIONS[state].items() if other != state]
            state = _choose(tuple((other, p / (1.0 - stay)) for other, p in moves), uniform())
        lengths, multipliers = zip(*episodes, strict=True)
        return np.repeat(np.array(multipliers), lengths)[:hours]

    def _weekend(self, day: int) -> float:
        return WEEKEND_FACTOR if (EPOCH.weekday() + day) % 7 >= 5 else 1.0

    def _day_anchors(self, days: int) -> list[float]:
        drift = self.drift.reshape(days, HOURS_PER_DAY).tolist()
        regime = self.regime.reshape(days, HOURS_PER_DAY).tolist()
        anchors = [self.level]
        shocks: list[float] = []
        for day in range(days):
            if day % _SHOCK_BLOCK == 0:
                block = np.random.default_rng([self.seed, self.key, _STREAM_DAYS, day // _SHOCK_BLOCK])
                shocks = block.standard_normal(_SHOCK_BLOCK).tolist()
            mean = math.fsum(60.0 * d for d in drift[day]) - _KAPPA * (anchors[-1] - self.level)
            variance = (self.minute_sigma * self._weekend(day)) ** 2 * math.fsum(
                m * m * s for m, s in zip(regime[day], _SEASON_SQ_PER_HOUR, strict=True)
            )
            anchors.append(anchors[-1] + mean + math.sqrt(variance) * shocks[day % _SHOCK_BLOCK])
        return anchors

    def day(self, day: int) -> tuple[np.ndarray, ...]:
        """One UTC day of candles: minute open times (ns), open, high, low, close, volume."""
        profile = self.profile
        rng = np.random.default_rng([self.seed, self.key, _STREAM_MINUTES, day])
        walk_noise, wiggle_noise, volume_noise = rng.standard_normal((3, MINUTES_PER_DAY))
        high_u, low_u = 1.0 - rng.random((2, MINUTES_PER_DAY))
        hours = slice(day * HOURS_PER_DAY, (day + 1) * HOURS_PER_DAY)
        multiplier = np.repeat(self.regime[hours], 60) * SEASON * self._weekend(day)
        sigma = self.minute_sigma * multiplier
        start, finish = self.anchors[day], self.anchors[day + 1]

        # The walk: minute increments drawn given the day's total move start -> finish.
        drift = np.repeat(self.drift[hours], 60) - _KAPPA * (start - self.level) / MINUTES_PER_DAY
        steps = drift + sigma * walk_noise
        variance = sigma**2
        steps += variance / variance.sum() * ((finish - start) - steps.sum())
        walk = np.concatenate(([0.0], np.cumsum(steps))) + start
        walk[0], walk[-1] = start, finish

        # The wiggle: an AR(1) (discrete Ornstein-Uhlenbeck) pinned to zero at both midnights.
        phi = math.exp(-math.log(2.0) / WIGGLE_HALF_LIFE_MINUTES)
        wiggle = np.concatenate(([0.0], _ar1(WIGGLE_SHARE * sigma * wiggle_noise, phi)))
        wiggle -= _PATH_FRACTION * wiggle[-1]
        path = walk + wiggle
        path[0], path[-1] = start, finish

        log_open, log_close = path[:-1], path[1:]
        candle_variance = variance * (1.0 + WIGGLE_SHARE**2)
        move = log_close - log_open
        log_high = (log_open + log_close + np.sqrt(move**2 - 2.0 * candle_variance * np.log(high_u))) / 2.0
        log_low = (log_open + log_close - np.sqrt(move**2 - 2.0 * candle_variance * np.log(low_u))) / 2.0

        decimals = profile.price_decimals
        prices = np.round(np.exp(path), decimals)
        # The midnight prices from one scalar formula: day d's last close is day d+1's first open, exactly.
        prices[0], prices[-1] = _price(start, decimals), _price(finish, decimals)
        open_, close = prices[:-1], prices[1:]
        high = np.maximum(np.round(np.exp(log_high), decimals), np.maximum(open_, close))
        low = np.minimum(np.round(np.exp(log_low), decimals), np.minimum(open_, close))

        activity = np.abs(move) / np.sqrt(candle_variance)
        noise = np.exp(VOLUME_NOISE * volume_noise - VOLUME_NOISE**2 / 2.0)
        volume = profile.volume * multiplier * (0.4 + 0.6 * activity) * noise
        lot = 10.0**-profile.volume_decimals
        volume = np.maximum(np.round(volume, profile.volume_decimals), lot)

        minutes = (day * MINUTES_PER_DAY + np.arange(MINUTES_PER_DAY, dtype=np.int64)) * 60_000_000_000
        return minutes + _EPOCH_NS, open_, high, low, close, volume


_EPOCH_NS = int(pd.Timestamp(EPOCH).value)


def _ar1(innovations: np.ndarray, phi: float) -> np.ndarray:
    """y_i = phi * y_(i-1) + x_i from y_(-1) = 0, as a doubling scan: elementwise numpy, no Python loop per minute."""
    result = innovations.copy()
    shift = 1
    while shift < len(result):
        shifted = result[:-shift] * phi**shift
        result[shift:] += shifted
        shift *= 2
    return result


def _price(log_price: float, decimals: int) -> float:
    return float(np.round(np.float64(math.exp(log_price)), decimals))


def _choose(options: tuple[tuple[str, float], ...], u: float) -> str:
    total = 0.0
    for name, probability in options:
        total += probability
        if u <= total:
            return name
    return options[-1][0]


def _utc(moment: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _frame(dates: np.ndarray, *values: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(dict(zip(("open", "high", "low", "close", "volume"), values, strict=True)))
    frame.insert(0, "date", pd.to_datetime(dates, unit="ns", utc=True))
    return frame

"""What an audit row is about, written ``<kind>:<key>`` (``bot:7``) by one helper."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    BOT = "bot"
    BOTS = "bots"  # the fleet: an emergency stop of many bots, strays killed by a gateway
    USER = "user"
    STREAM = "stream"
    DATA = "data"
    STRATEGY = "strategy"
    JOB = "job"
    FREQAI_MODEL = "freqai_model"


def resource(kind: str, *keys: object) -> str:
    """``resource("bot", 7)`` is ``bot:7``; with no key, the bare kind (a refused create, the fleet)."""
    return ":".join([str(kind), *(str(key) for key in keys)])


def bot_resource(bot_id: int) -> str:
    return resource(Kind.BOT, bot_id)


def user_resource(user_id: int) -> str:
    return resource(Kind.USER, user_id)


def stream_resource(name: str) -> str:
    return resource(Kind.STREAM, name)


def job_resource(job_id: int) -> str:
    return resource(Kind.JOB, job_id)


def freqai_model_resource(model_id: int) -> str:
    return resource(Kind.FREQAI_MODEL, model_id)


def data_resource(*, exchange: str, pair: str, timeframe: str) -> str:
    return resource(Kind.DATA, exchange, pair, timeframe)


def strategy_resource(name: str) -> str:
    return resource(Kind.STRATEGY, name)


FLEET = resource(Kind.BOTS)

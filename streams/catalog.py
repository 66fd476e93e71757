"""The twelve streams of the bus and their configuration, held in this one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from django.conf import settings

LISTENERS = "mgmt_listeners"


class UnknownStream(LookupError):  # noqa: N818 - reads as the condition
    """A stream name that is not in the catalog."""


@dataclass(frozen=True)
class StreamConfig:
    name: str
    maxlen: int
    approximate: bool
    consumer_groups: tuple[str, ...]
    description: str

    @property
    def dead_letter(self) -> str:
        return f"{self.name}:dead"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "consumer_groups": list(self.consumer_groups)}


_STREAMS = [
    StreamConfig("mgmt:trading:commands", 10_000, False, ("trading_consumers",),
                 "Management server commands to trading gateway"),
    StreamConfig("trading:mgmt:status", 50_000, True, (LISTENERS,),
                 "Trading gateway bot state changes and heartbeats to the management server"),
    StreamConfig("mgmt:backtesting:commands", 10_000, False, ("backtesting_consumers",),
                 "Backtest jobs for the workers"),
    StreamConfig("backtesting:mgmt:results", 10_000, True, (LISTENERS,),
                 "Backtest progress and results from the workers"),
    StreamConfig("mgmt:hyperopt:commands", 10_000, False, ("hyperopt_consumers",),
                 "Hyperopt jobs for the workers"),
    StreamConfig("hyperopt:mgmt:results", 10_000, True, (LISTENERS,),
                 "Hyperopt progress and results from the workers"),
    StreamConfig("mgmt:freqai:commands", 10_000, False, ("freqai_consumers",),
                 "FreqAI training jobs for the workers"),
    StreamConfig("freqai:mgmt:status", 10_000, True, (LISTENERS,),
                 "FreqAI training progress and model status from the workers"),
    StreamConfig("mgmt:data:commands", 10_000, False, ("data_consumers",),
                 "Market data imports for the workers"),
    StreamConfig("data:mgmt:status", 10_000, True, (LISTENERS,),
                 "Market data import progress from the workers"),
    StreamConfig("system:events", 100_000, True, (LISTENERS,),
                 "Events of every service: starts, stops, lost entries, alerts"),
    StreamConfig("audit:events", 100_000, True, (LISTENERS,),
                 "Every audit row as it is written, for archiving and live views"),
]  # fmt: skip
CATALOG: dict[str, StreamConfig] = {stream.name: stream for stream in _STREAMS}
DEAD_LETTER_MAXLEN = 10_000


def stream_names() -> list[str]:
    return list(CATALOG)


def stream_config(name: str) -> StreamConfig:
    """The configuration of a stream, with any ``STREAMS["maxlen"]`` override from settings."""
    try:
        config = CATALOG[name]
    except KeyError:
        raise UnknownStream(name) from None
    override = settings.STREAMS.get("maxlen", {}).get(name)
    return replace(config, maxlen=override) if override else config


def streams_of_group(group: str) -> list[str]:
    return [stream.name for stream in _STREAMS if group in stream.consumer_groups]

"""The twelve streams of the bus and their configuration, held in this one place."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings

# The stream names: import these, never retype them.
TRADING_COMMANDS = "mgmt:trading:commands"
TRADING_STATUS = "trading:mgmt:status"
BACKTESTING_COMMANDS = "mgmt:backtesting:commands"
BACKTESTING_RESULTS = "backtesting:mgmt:results"
HYPEROPT_COMMANDS = "mgmt:hyperopt:commands"
HYPEROPT_RESULTS = "hyperopt:mgmt:results"
FREQAI_COMMANDS = "mgmt:freqai:commands"
FREQAI_STATUS = "freqai:mgmt:status"
DATA_COMMANDS = "mgmt:data:commands"
DATA_STATUS = "data:mgmt:status"
SYSTEM_EVENTS = "system:events"
AUDIT_EVENTS = "audit:events"

LISTENERS = "mgmt_listeners"
# Trading commands are routed per host: each gateway reads them in its own consumer group,
# "trading_consumers@<host>", so a command waits for its host and no other host acknowledges it.
TRADING_CONSUMERS = "trading_consumers"
HOST_GROUP_SEPARATOR = "@"


class UnknownStream(LookupError):  # noqa: N818 - reads as the condition
    """A stream name that is not in the catalog."""


@dataclass(frozen=True)
class StreamConfig:
    name: str
    maxlen: int
    approximate: bool
    consumer_groups: tuple[str, ...]
    description: str
    # The prefix of the groups this stream has one of per host ("<prefix>@<host>"), created by each
    # host's consumer when it first starts; "" for a stream whose groups are all in consumer_groups.
    host_groups: str = ""

    @property
    def dead_letter(self) -> str:
        return f"{self.name}:dead"

    @property
    def routing(self) -> str:
        return "per_host" if self.host_groups else "shared"

    def has_group(self, group: str) -> bool:
        return group in self.consumer_groups or bool(self.host_groups and host_of_group(self, group))

    def as_dict(self) -> dict[str, Any]:
        described = [*self.consumer_groups, *([host_group(self.host_groups, "<host>")] if self.host_groups else [])]
        return {"name": self.name, "maxlen": self.maxlen, "approximate": self.approximate,
                "consumer_groups": described, "routing": self.routing, "description": self.description}  # fmt: skip


def host_group(prefix: str, host: str) -> str:
    """The consumer group of one host on a stream routed per host: ``trading_consumers@alpha``."""
    return f"{prefix}{HOST_GROUP_SEPARATOR}{host}"


def host_of_group(config: StreamConfig, group: str) -> str:
    """The host a per-host group belongs to, "" when ``group`` is not one of ``config``'s."""
    prefix = config.host_groups + HOST_GROUP_SEPARATOR
    return group[len(prefix) :] if config.host_groups and group.startswith(prefix) and len(group) > len(prefix) else ""


def trading_group(host: str) -> str:
    """The consumer group in which the gateway of ``host`` reads the trading commands."""
    return host_group(TRADING_CONSUMERS, host)


_STREAMS = [
    StreamConfig(TRADING_COMMANDS, 10_000, False, (),
                 "Management server commands to the trading gateways, each read by its host's own group",
                 host_groups=TRADING_CONSUMERS),
    StreamConfig(TRADING_STATUS, 50_000, True, (LISTENERS,),
                 "Trading gateway bot state changes and heartbeats to the management server"),
    StreamConfig(BACKTESTING_COMMANDS, 10_000, False, ("backtesting_consumers",),
                 "Backtest jobs for the workers"),
    StreamConfig(BACKTESTING_RESULTS, 10_000, True, (LISTENERS,),
                 "Backtest progress and results from the workers"),
    StreamConfig(HYPEROPT_COMMANDS, 10_000, False, ("hyperopt_consumers",),
                 "Hyperopt jobs for the workers"),
    StreamConfig(HYPEROPT_RESULTS, 10_000, True, (LISTENERS,),
                 "Hyperopt progress and results from the workers"),
    StreamConfig(FREQAI_COMMANDS, 10_000, False, ("freqai_consumers",),
                 "FreqAI training jobs for the workers"),
    StreamConfig(FREQAI_STATUS, 10_000, True, (LISTENERS,),
                 "FreqAI training progress and model status from the workers"),
    StreamConfig(DATA_COMMANDS, 10_000, False, ("data_consumers",),
                 "Market data imports for the workers"),
    StreamConfig(DATA_STATUS, 10_000, True, (LISTENERS,),
                 "Market data import progress from the workers"),
    StreamConfig(SYSTEM_EVENTS, 100_000, True, (LISTENERS,),
                 "Events of every service: starts, stops, lost entries, alerts"),
    StreamConfig(AUDIT_EVENTS, 100_000, True, (LISTENERS,),
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
    return [stream.name for stream in _STREAMS if stream.has_group(group)]

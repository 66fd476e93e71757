"""Management-side handlers of ``TRADING_STATUS``: the gateway's reports become database state."""

from __future__ import annotations

from django.conf import settings

from bots import services
from bots.commands import Report, read_bot_status, read_gateway_heartbeat
from streams.bus import Envelope
from streams.catalog import TRADING_STATUS
from streams.worker import HandlerRegistry

registry = HandlerRegistry()
TIME_LIMIT = settings.STREAMS["listener_time_limit"]


@registry.handles(TRADING_STATUS, Report.BOT_STATUS, time_limit=TIME_LIMIT)
def handle_bot_status(envelope: Envelope) -> None:
    services.bot_status_apply(report=read_bot_status(envelope.payload))


@registry.handles(TRADING_STATUS, Report.GATEWAY_HEARTBEAT, atomic=False, time_limit=TIME_LIMIT)
def handle_gateway_heartbeat(envelope: Envelope) -> None:
    beat = read_gateway_heartbeat(envelope.payload)
    services.bot_heartbeats_apply(bot_ids=[bot["bot_id"] for bot in beat["bots"]], at=beat["at"])

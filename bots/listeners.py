"""Management-side handlers of ``trading:mgmt:status``: the gateway's reports become database state."""

from __future__ import annotations

from bots import services
from streams.bus import Envelope
from streams.worker import HandlerRegistry

registry = HandlerRegistry()


@registry.handles("trading:mgmt:status", "bot_status")
def handle_bot_status(envelope: Envelope) -> None:
    services.bot_status_apply(report=envelope.payload)


@registry.handles("trading:mgmt:status", "gateway_heartbeat", atomic=False)
def handle_gateway_heartbeat(envelope: Envelope) -> None:
    services.bot_heartbeats_apply(bot_ids=[int(bot_id) for bot_id in envelope.payload.get("bots", {})],
                                  at=envelope.payload.get("at"))  # fmt: skip

"""Management-side handler of the gateway's ``trade_update`` reports on ``trading:mgmt:status``."""

from __future__ import annotations

from analytics import services
from streams.bus import Envelope
from streams.worker import HandlerRegistry

registry = HandlerRegistry()


@registry.handles("trading:mgmt:status", "trade_update")
def handle_trade_update(envelope: Envelope) -> None:
    services.trades_apply(bot_id=int(envelope.payload["bot_id"]), trades=envelope.payload.get("trades") or [],
                          observed_at=envelope.payload.get("at"))  # fmt: skip

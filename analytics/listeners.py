"""Management-side handler of the gateway's trade updates (trades and balance) on ``TRADING_STATUS``."""

from __future__ import annotations

from django.conf import settings

from analytics import services
from bots.commands import Report, read_trade_update
from streams.bus import Envelope
from streams.catalog import TRADING_STATUS
from streams.worker import HandlerRegistry

registry = HandlerRegistry()
TIME_LIMIT = settings.STREAMS["listener_time_limit"]


@registry.handles(TRADING_STATUS, Report.TRADE_UPDATE, time_limit=TIME_LIMIT)
def handle_trade_update(envelope: Envelope) -> None:
    update = read_trade_update(envelope.payload)
    if update["trades"] or "balance" not in update:  # a round where only the balance moved has no trades
        services.trades_apply(bot_id=update["bot_id"], trades=update["trades"], observed_at=update["at"])
    # After the trades: the balance's open-trade marks are read against the trades it names.
    if "balance" in update:
        services.bot_balance_record(bot_id=update["bot_id"], balance=update["balance"], observed_at=update["at"])

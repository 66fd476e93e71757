"""``trade_notification``: a bot's trade was entered, filled, cancelled or exited. Every one goes out here.

It is announced on ``SYSTEM_EVENTS`` after commit; the listeners relay it to the owner's sockets as
the WebSocket ``trade_notification`` event (streams/listeners.py), without ``owner_id``.

The events follow freqtrade's own notifications: ``entry`` (the trade appeared: its entry order is
placed, and maybe filled already: see ``filled``), ``entry_fill`` (a waiting entry order filled),
``entry_cancel`` (it never filled and freqtrade removed the trade) and ``exit`` (the trade closed).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from django.db import transaction

from streams.bus import announce
from streams.catalog import SYSTEM_EVENTS

if TYPE_CHECKING:
    from analytics.models import Trade

Event = Literal["entry", "entry_fill", "entry_cancel", "exit"]


def trade_notification(*, trade: Trade, event: Event) -> dict[str, Any]:
    """Announce the event once the current transaction commits; returns the payload."""
    exit_ = event == "exit"
    # An entry that has not filled yet (or never will) announces what was asked for.
    amount = trade.amount if trade.is_filled else trade.raw.get("amount_requested") or trade.amount
    if exit_:
        at = trade.close_date.timestamp() if trade.close_date else time.time()
    else:
        at = trade.open_date.timestamp() if event == "entry" else time.time()
    payload = {
        "bot_id": trade.bot_id,
        "bot_name": trade.bot_name,
        # Whom it concerns: a user receives events of their own bots only.
        "owner_id": trade.owner_id,
        "trade_id": trade.trade_id,
        "event": event,
        "pair": trade.pair,
        "side": trade.exit_side if exit_ else trade.entry_side,
        "is_short": trade.is_short,
        "amount": amount,
        "price": trade.close_rate if exit_ else trade.open_rate,
        "filled": trade.is_filled,
        "profit_abs": trade.profit_abs if exit_ else None,
        "profit_ratio": trade.profit_ratio if exit_ else None,
        "exit_reason": trade.exit_reason if exit_ else "",
        "stake_currency": trade.stake_currency,
        "dry_run": trade.dry_run,
        "at": at,
    }
    # The trade itself is committed: only this announcement is lost with Redis.
    transaction.on_commit(lambda: announce(SYSTEM_EVENTS, type="trade_notification", payload=payload,
                                           producer="analytics"))  # fmt: skip
    return payload

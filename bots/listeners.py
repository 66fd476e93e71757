"""Management-side handlers of ``TRADING_STATUS``: the gateway's reports become database state, and live news.

A status report that changed the bot goes to its owner's sockets as ``bot_status_update``; each
heartbeat (the gateway's snapshot) first corrects the records it contradicts (each correction a
``bot_status_update`` too), then goes out as one ``bot_metrics`` per owner. Both after commit: a socket never hears of a
state the database does not hold.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from bots import selectors, services
from bots.commands import Report, read_bot_status, read_gateway_heartbeat
from realtime import broadcast
from realtime.protocol import Event
from streams.bus import Envelope
from streams.catalog import TRADING_STATUS
from streams.worker import HandlerRegistry

registry = HandlerRegistry()
TIME_LIMIT = settings.STREAMS["listener_time_limit"]


@registry.handles(TRADING_STATUS, Report.BOT_STATUS, time_limit=TIME_LIMIT)
def handle_bot_status(envelope: Envelope) -> None:
    report = read_bot_status(envelope.payload)
    if services.bot_status_apply(report=report):
        # Read inside the transaction (the row as applied), sent once it commits.
        found = selectors.bot_live_status(bot_id=report["bot_id"])
        if found is not None:
            owner_id, data = found
            transaction.on_commit(lambda: broadcast(Event.BOT_STATUS_UPDATE, data, owner_id=owner_id))


@registry.handles(TRADING_STATUS, Report.GATEWAY_HEARTBEAT, atomic=False, time_limit=TIME_LIMIT)
def handle_gateway_heartbeat(envelope: Envelope) -> None:
    """The gateway's snapshot corrects what lost or stale reports left wrong; then the live metrics."""
    beat = read_gateway_heartbeat(envelope.payload)
    if "capacity" in beat and beat["host"]:
        services.host_heartbeat_apply(host=beat["host"], at=beat["at"], capacity=beat["capacity"])
    # Each correction committed on its own (bot_status_apply): it goes to its owner's sockets now. After
    # one send that Redis did not take, the rest of this beat's are skipped rather than each waiting out
    # its own timeout (the handler's limit): the records are right, and the next beat's metrics resample.
    for bot_id in services.bot_snapshot_apply(snapshot=beat):
        found = selectors.bot_live_status(bot_id=bot_id)
        if found is not None and not broadcast(Event.BOT_STATUS_UPDATE, found[1], owner_id=found[0]):
            return
    bot_ids = [bot["bot_id"] for bot in beat["bots"]]
    sampled = {bot["bot_id"]: bot for bot in beat["bots"]}
    for owner_id, bots in selectors.bot_live_figures(bot_ids=bot_ids).items():
        data = [{"bot_id": bot_id, "cpu_percent": sampled[bot_id].get("cpu_percent"),
                 "memory_mb": sampled[bot_id].get("memory_mb"), **figures}
                for bot_id, figures in sorted(bots.items())]  # fmt: skip
        if not broadcast(Event.BOT_METRICS, {"bots": data}, owner_id=owner_id):
            break

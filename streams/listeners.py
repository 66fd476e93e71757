"""Management-side handlers of the result/status streams, ``system:events`` and ``audit:events``.

Later features register their own handlers here (job results, bot status); each updates the
database through a service.
"""

from __future__ import annotations

import logging

import analytics.listeners  # noqa: F401 - registers the trade_update handler
import bots.listeners  # noqa: F401 - registers the trading status handlers
from streams.bus import Envelope
from streams.worker import handles

logger = logging.getLogger(__name__)


@handles("audit:events", atomic=False)
def handle_audit_entry(envelope: Envelope) -> None:
    # The row is already in the database (it was published after commit); live views join later.
    logger.debug("audit %s %s by %s", envelope.payload.get("action"), envelope.payload.get("status"),
                 envelope.payload.get("user"))  # fmt: skip


@handles("system:events", atomic=False)
def handle_system_event(envelope: Envelope) -> None:
    level = logging.WARNING if envelope.type in {"stream_entries_lost"} else logging.INFO
    logger.log(level, "system event %s from %s: %s", envelope.type, envelope.producer, envelope.payload)

"""Management-side handlers of ``SYSTEM_EVENTS`` and ``AUDIT_EVENTS``.

Each app keeps the handlers of its own streams in its ``listeners.py`` (``bots``: bot status,
``analytics``: trade updates); ``run_listeners`` gathers them with ``streams.worker.discover``.
"""

from __future__ import annotations

import logging

from streams.bus import Envelope
from streams.catalog import AUDIT_EVENTS, SYSTEM_EVENTS
from streams.worker import HandlerRegistry

logger = logging.getLogger(__name__)
registry = HandlerRegistry()


@registry.handles(AUDIT_EVENTS, atomic=False)
def handle_audit_entry(envelope: Envelope) -> None:
    # The row is already in the database (it was published after commit); live views join later.
    logger.debug("audit %s %s by %s", envelope.payload.get("action"), envelope.payload.get("status"),
                 envelope.payload.get("user"))  # fmt: skip


@registry.handles(SYSTEM_EVENTS, atomic=False)
def handle_system_event(envelope: Envelope) -> None:
    level = logging.WARNING if envelope.type in {"stream_entries_lost"} else logging.INFO
    logger.log(level, "system event %s from %s: %s", envelope.type, envelope.producer, envelope.payload)

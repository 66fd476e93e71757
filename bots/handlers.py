"""The trading gateway's stream handlers: one per command kind, each a call to one Gateway method.

The registry is built for the running gateway and bound to it (``run_gateway`` builds both), so no
module holds a "current gateway". Every handler is ``atomic=False``: its effects are processes, not
rows, and each is idempotent (the bot's desired state decides, and a second stop finds nothing).
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from bots.commands import Command, read_bot_command, read_emergency_stop
from streams.bus import Envelope
from streams.catalog import TRADING_COMMANDS
from streams.worker import HandlerRegistry

if TYPE_CHECKING:
    from bots.gateway.service import Gateway

logger = logging.getLogger(__name__)


class RecentRequests:
    """The request ids of the commands handled lately: the outbox delivers at least once, a restart or
    an emergency stop is carried out once. Remembered only once handled (a failed one is retried)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._ids

    def add(self, request_id: str) -> None:
        self._ids[request_id] = None
        while len(self._ids) > self.limit:
            self._ids.popitem(last=False)


def once(recent: RecentRequests, handler: Callable[[Envelope], None]) -> Callable[[Envelope], None]:
    @functools.wraps(handler)
    def handle(envelope: Envelope) -> None:
        if envelope.request_id in recent:
            logger.info("%s %s handled already: skipped", envelope.type, envelope.request_id)
            return
        handler(envelope)
        recent.add(envelope.request_id)

    return handle


def gateway_registry(gateway: Gateway) -> HandlerRegistry:
    """The trading commands ``gateway`` handles, each once per request id; every command kind has its
    handler, or this fails."""
    registry = HandlerRegistry()
    recent = RecentRequests()

    def handles(kind: Command) -> Callable[[Callable[[Envelope], None]], Callable[[Envelope], None]]:
        return lambda handler: registry.handles(TRADING_COMMANDS, kind, atomic=False)(once(recent, handler))

    @handles(Command.START)
    def handle_start(envelope: Envelope) -> None:
        gateway.bot_start(read_bot_command(envelope.payload))

    @handles(Command.STOP)
    def handle_stop(envelope: Envelope) -> None:
        gateway.bot_stop(read_bot_command(envelope.payload))

    @handles(Command.RESTART)
    def handle_restart(envelope: Envelope) -> None:
        gateway.bot_restart(read_bot_command(envelope.payload))

    @handles(Command.KILL)
    def handle_kill(envelope: Envelope) -> None:
        gateway.bot_kill(read_bot_command(envelope.payload))

    @handles(Command.EMERGENCY_STOP)
    def handle_emergency_stop(envelope: Envelope) -> None:
        gateway.emergency_stop(read_emergency_stop(envelope.payload))

    missing = set(Command) - {registration.type for registration in registry}
    if missing:
        raise LookupError(f"the gateway handles no {sorted(missing)}")
    return registry

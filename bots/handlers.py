"""The trading gateway's stream handlers: one per command kind, each a call to one Gateway method.

The registry is built for the running gateway and bound to it (``run_gateway`` builds both), so no
module holds a "current gateway". Every handler is ``atomic=False``: its effects are processes, not
rows, and each is idempotent (the bot's desired state decides, and a second stop finds nothing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bots.commands import Command, read_bot_command, read_emergency_stop
from streams.bus import Envelope
from streams.catalog import TRADING_COMMANDS
from streams.worker import HandlerRegistry

if TYPE_CHECKING:
    from bots.gateway.service import Gateway


def gateway_registry(gateway: Gateway) -> HandlerRegistry:
    """The trading commands ``gateway`` handles; every command kind has its handler, or this fails."""
    registry = HandlerRegistry()

    @registry.handles(TRADING_COMMANDS, Command.START, atomic=False)
    def handle_start(envelope: Envelope) -> None:
        gateway.bot_start(read_bot_command(envelope.payload))

    @registry.handles(TRADING_COMMANDS, Command.STOP, atomic=False)
    def handle_stop(envelope: Envelope) -> None:
        gateway.bot_stop(read_bot_command(envelope.payload))

    @registry.handles(TRADING_COMMANDS, Command.RESTART, atomic=False)
    def handle_restart(envelope: Envelope) -> None:
        gateway.bot_restart(read_bot_command(envelope.payload))

    @registry.handles(TRADING_COMMANDS, Command.KILL, atomic=False)
    def handle_kill(envelope: Envelope) -> None:
        gateway.bot_kill(read_bot_command(envelope.payload))

    @registry.handles(TRADING_COMMANDS, Command.EMERGENCY_STOP, atomic=False)
    def handle_emergency_stop(envelope: Envelope) -> None:
        gateway.emergency_stop(read_emergency_stop(envelope.payload))

    missing = set(Command) - {registration.type for registration in registry}
    if missing:
        raise LookupError(f"the gateway handles no {sorted(missing)}")
    return registry

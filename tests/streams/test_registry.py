"""Handler registries: one handler per (stream, type), gathered from each app's listeners module."""

from __future__ import annotations

import pytest

from bots.commands import Report
from streams.bus import Envelope
from streams.catalog import AUDIT_EVENTS, DATA_COMMANDS, SYSTEM_EVENTS, TRADING_STATUS, UnknownStream
from streams.worker import DuplicateHandlerError, HandlerRegistry, discover


def first(envelope: Envelope) -> None: ...


def second(envelope: Envelope) -> None: ...


def test_a_second_handler_for_the_same_stream_and_type_is_refused_when_registered():
    registry = HandlerRegistry()
    registry.handles(DATA_COMMANDS, "work")(first)

    with pytest.raises(DuplicateHandlerError, match=r"first and .*second"):
        registry.handles(DATA_COMMANDS, "work")(second)


def test_including_a_registry_that_claims_the_same_type_is_refused():
    one, other = HandlerRegistry(), HandlerRegistry()
    one.handles(DATA_COMMANDS, "work")(first)
    other.handles(DATA_COMMANDS, "work")(second)

    with pytest.raises(DuplicateHandlerError):
        one.include(other)


def test_a_type_without_its_own_handler_falls_back_to_the_streams_catch_all():
    registry = HandlerRegistry()
    registry.handles(SYSTEM_EVENTS)(first)
    registry.handles(SYSTEM_EVENTS, "special")(second)

    assert registry.handler_for(SYSTEM_EVENTS, "anything").func is first
    assert registry.handler_for(SYSTEM_EVENTS, "special").func is second
    assert registry.handler_for(AUDIT_EVENTS, "anything") is None


def test_an_unknown_stream_is_refused():
    with pytest.raises(UnknownStream):
        HandlerRegistry().handles("no:such:stream")


def test_the_listeners_of_every_app_are_discovered():
    registry = discover("listeners")

    handled = {(registration.stream, registration.type) for registration in registry}
    assert (TRADING_STATUS, Report.BOT_STATUS) in handled  # bots
    assert (TRADING_STATUS, Report.TRADE_UPDATE) in handled  # analytics
    assert (AUDIT_EVENTS, "*") in handled  # streams


def test_every_listener_has_a_time_limit_so_a_hung_one_is_told_from_a_slow_one():
    registry = discover("listeners")

    unbounded = [f"{item.stream} {item.type}" for item in registry if item.type != "*" and item.time_limit is None]
    assert unbounded == []

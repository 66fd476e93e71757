"""Handler registries: one handler per (stream, type), gathered from each app's listeners module."""

from __future__ import annotations

import pytest

from streams.bus import Envelope
from streams.catalog import UnknownStream
from streams.worker import DuplicateHandlerError, HandlerRegistry, discover


def first(envelope: Envelope) -> None: ...


def second(envelope: Envelope) -> None: ...


def test_a_second_handler_for_the_same_stream_and_type_is_refused_when_registered():
    registry = HandlerRegistry()
    registry.handles("mgmt:data:commands", "work")(first)

    with pytest.raises(DuplicateHandlerError, match=r"first and .*second"):
        registry.handles("mgmt:data:commands", "work")(second)


def test_including_a_registry_that_claims_the_same_type_is_refused():
    one, other = HandlerRegistry(), HandlerRegistry()
    one.handles("mgmt:data:commands", "work")(first)
    other.handles("mgmt:data:commands", "work")(second)

    with pytest.raises(DuplicateHandlerError):
        one.include(other)


def test_a_type_without_its_own_handler_falls_back_to_the_streams_catch_all():
    registry = HandlerRegistry()
    registry.handles("system:events")(first)
    registry.handles("system:events", "special")(second)

    assert registry.handler_for("system:events", "anything").func is first
    assert registry.handler_for("system:events", "special").func is second
    assert registry.handler_for("audit:events", "anything") is None


def test_an_unknown_stream_is_refused():
    with pytest.raises(UnknownStream):
        HandlerRegistry().handles("no:such:stream")


def test_the_listeners_of_every_app_are_discovered():
    registry = discover("listeners")

    handled = {(registration.stream, registration.type) for registration in registry}
    assert ("trading:mgmt:status", "bot_status") in handled  # bots
    assert ("trading:mgmt:status", "trade_update") in handled  # analytics
    assert ("audit:events", "*") in handled  # streams

"""The /ws protocol on the real ASGI application: handshake, welcome, subscribe, ping, errors."""

from __future__ import annotations

import asyncio

from django.conf import settings
from django.test import override_settings

from realtime import broadcast
from realtime.protocol import Event
from tests import factories
from tests.realtime.conftest import Socket, bearer, run

EVENT_TYPES = [str(event) for event in Event]


def test_a_socket_with_a_bearer_subprotocol_is_accepted_with_multibot_and_welcomed(user):
    token = factories.access_token_for(user)

    async def scenario():
        socket = await Socket(*bearer(token)).open()
        welcome = await socket.read()
        await socket.close()
        return socket, welcome

    socket, welcome = run(scenario)

    assert socket.accepted and socket.detail == "multibot"
    assert welcome["type"] == "welcome" and isinstance(welcome["at"], float)
    assert welcome["data"] == {
        "user": {"id": user.pk, "username": user.username, "is_superuser": False},
        "types": EVENT_TYPES, "subscribed": EVENT_TYPES, "ping_interval": 20,
    }  # fmt: skip


def test_an_event_broadcast_from_sync_code_reaches_the_socket(user):
    token = factories.access_token_for(user)

    async def scenario():
        socket = await Socket(*bearer(token)).open()
        await socket.read_type("welcome")
        sent = await asyncio.to_thread(broadcast, "system_metrics", {"cpu_usage": 1.5})
        message = await socket.read()
        await socket.close()
        return sent, message

    sent, message = run(scenario)

    assert sent is True
    assert message["type"] == "system_metrics" and message["data"] == {"cpu_usage": 1.5}


def test_a_client_ping_is_answered_with_a_pong(user):
    token = factories.access_token_for(user)

    async def scenario():
        socket = await Socket(*bearer(token)).open()
        await socket.read_type("welcome")
        await socket.send({"type": "ping"})
        reply = await socket.read()
        await socket.close()
        return reply

    assert run(scenario)["type"] == "pong"


@override_settings(REALTIME={**settings.REALTIME, "ping_seconds": 1})
def test_the_server_pings_every_ping_interval(user):
    token = factories.access_token_for(user)

    async def scenario():
        socket = await Socket(*bearer(token)).open()
        welcome = await socket.read_type("welcome")
        ping = await socket.read(timeout=3)
        await socket.close()
        return welcome, ping

    welcome, ping = run(scenario)

    assert welcome["data"]["ping_interval"] == 1
    assert ping["type"] == "ping"


def test_subscribe_narrows_what_the_socket_receives(user):
    token = factories.access_token_for(user)

    async def scenario():
        socket = await Socket(*bearer(token)).open()
        await socket.read_type("welcome")
        await socket.send({"type": "subscribe", "data": ["stream_health", "system_metrics"]})
        answer = await socket.read()
        await asyncio.to_thread(broadcast, "job_progress", {"job_id": 1})
        await asyncio.to_thread(broadcast, "stream_health", {"overall_status": "healthy"})
        received = await socket.read()
        quiet = await socket.nothing_arrives()
        await socket.close()
        return answer, received, quiet

    answer, received, quiet = run(scenario)

    assert answer["type"] == "subscribed" and answer["data"] == ["system_metrics", "stream_health"]
    assert received["type"] == "stream_health"
    assert quiet


def test_subscribing_to_an_unknown_type_is_an_error_and_changes_nothing(user):
    token = factories.access_token_for(user)

    async def scenario():
        socket = await Socket(*bearer(token)).open()
        await socket.read_type("welcome")
        await socket.send({"type": "subscribe", "data": ["job_progress", "gossip"]})
        error = await socket.read()
        await asyncio.to_thread(broadcast, "bot_metrics", {"bots": []})
        still = await socket.read()
        await socket.close()
        return error, still

    error, still = run(scenario)

    assert error["type"] == "error" and "gossip" in error["data"]["detail"]
    assert still["type"] == "bot_metrics"


def test_an_unknown_message_type_and_non_json_are_errors(user):
    token = factories.access_token_for(user)

    async def scenario():
        socket = await Socket(*bearer(token)).open()
        await socket.read_type("welcome")
        await socket.send({"type": "launch"})
        unknown = await socket.read()
        await socket.send("{not json")
        garbled = await socket.read()
        await socket.close()
        return unknown, garbled

    unknown, garbled = run(scenario)

    assert unknown["type"] == "error" and "launch" in unknown["data"]["detail"]
    assert garbled["type"] == "error"


def test_an_unknown_path_is_refused():
    async def scenario():
        return await Socket(path="/elsewhere").open()

    assert run(scenario).accepted is False

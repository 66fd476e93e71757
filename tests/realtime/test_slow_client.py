"""A client that stops reading is closed with 4008 once its bounded queue overflows; nothing piles up for it."""

from __future__ import annotations

import asyncio
import json

from django.conf import settings
from django.test import override_settings

from multibot.asgi import application
from realtime import broadcast
from tests import factories
from tests.realtime.conftest import Socket, bearer, run

QUEUE = 5


def stalled_after_welcome(app):
    """The application, with a client that reads its welcome and nothing after: every later send waits forever,
    as a write to a socket whose peer does not read does once the kernel's buffers are full."""
    sends: list[dict] = []

    async def wrapped(scope, receive, send):
        async def stalling_send(message):
            if message["type"] == "websocket.send":
                sends.append(message)
                if len(sends) > 1:
                    await asyncio.Event().wait()
            await send(message)

        await app(scope, receive, stalling_send)

    wrapped.sends = sends
    return wrapped


@override_settings(REALTIME={**settings.REALTIME, "queue_size": QUEUE})
def test_a_client_that_falls_behind_is_closed_with_4008(user):
    token = factories.access_token_for(user)
    app = stalled_after_welcome(application)

    async def scenario():
        socket = await Socket(*bearer(token), app=app).open()
        welcome = await socket.read()
        # One send in flight (stuck), QUEUE waiting, and the one more that overflows.
        for seq in range(QUEUE + 2 + 20):
            await asyncio.to_thread(broadcast, "system_metrics", {"seq": seq})
        outputs = []
        while True:
            output = await socket.communicator.receive_output(timeout=5)
            outputs.append(output)
            if output["type"] == "websocket.close":
                return welcome, outputs

    welcome, outputs = run(scenario)

    assert welcome["type"] == "welcome"
    assert outputs == [{"type": "websocket.close", "code": 4008}]
    # The server tried to write the welcome and one event; the rest waited in the queue, then were dropped.
    assert [json.loads(sent["text"])["type"] for sent in app.sends] == ["welcome", "system_metrics"]


@override_settings(REALTIME={**settings.REALTIME, "queue_size": QUEUE})
def test_a_client_that_keeps_up_is_not_closed_however_many_events_pass(user):
    token = factories.access_token_for(user)

    async def scenario():
        socket = await Socket(*bearer(token)).open()
        await socket.read_type("welcome")
        received = []
        for seq in range(4 * QUEUE):
            await asyncio.to_thread(broadcast, "system_metrics", {"seq": seq})
            received.append((await socket.read())["data"]["seq"])
        await socket.close()
        return received

    assert run(scenario) == list(range(4 * QUEUE))

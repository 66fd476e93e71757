"""The outbox: a command committed with its state is published, at once or later, and never lost."""

from __future__ import annotations

import json
import os
import signal

import pytest
from django.db import transaction

from bots.commands import Command
from bots.handlers import RecentRequests, once
from streams.bus import Envelope, stream_key
from streams.catalog import TRADING_COMMANDS
from streams.models import OutboxEntry
from streams.outbox import outbox_pending, outbox_put, outbox_relay
from tests.factories import make_bot

pytestmark = pytest.mark.usefixtures("committed_db")


def _stream() -> list[tuple[str, dict, str]]:
    from multibot.redis_client import redis_client

    entries = redis_client().xrange(stream_key(TRADING_COMMANDS))
    return [(f["type"], json.loads(f["payload"]), f["request_id"]) for _, f in entries]


def test_an_entry_belongs_in_a_transaction():
    with pytest.raises(RuntimeError, match="transaction"):
        outbox_put(TRADING_COMMANDS, type=Command.START, payload={"bot_id": 1})
    assert OutboxEntry.objects.count() == 0


def test_a_command_is_published_once_its_transaction_commits_and_not_when_it_rolls_back():
    # when: one transaction commits, another rolls back
    with transaction.atomic():
        entry = outbox_put(TRADING_COMMANDS, type=Command.START, payload={"bot_id": 1})
        assert _stream() == []  # not before the commit

    def fails_after_writing_its_command() -> None:
        with transaction.atomic():
            outbox_put(TRADING_COMMANDS, type=Command.STOP, payload={"bot_id": 2})
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fails_after_writing_its_command()
    # then: only the committed one, published at once, with the entry's request id; marked sent
    assert _stream() == [("bot_start", {"bot_id": 1}, entry.request_id)]
    assert [sent_at is not None for sent_at in OutboxEntry.objects.values_list("sent_at", flat=True)] == [True]


def test_commands_committed_while_redis_is_frozen_are_published_by_the_relay_in_order(redis_server, settings):
    # given: Redis frozen (its socket timeout short here), commands committed meanwhile
    settings.REDIS_URL = redis_server.url + "?socket_timeout=0.2"
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        for bot_id in (1, 2, 3):
            with transaction.atomic():
                outbox_put(TRADING_COMMANDS, type=Command.STOP, payload={"bot_id": bot_id})
        waiting = outbox_pending()
        assert outbox_relay() == 0  # the bus still refuses
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    settings.REDIS_URL = redis_server.url

    # when: the relay's next round
    sent = outbox_relay()

    # then: each once, in the order committed; none left waiting
    assert waiting["waiting"] == 3 and waiting["oldest"] is not None
    assert sent == 3 and [payload["bot_id"] for _, payload, _ in _stream()] == [1, 2, 3]
    assert outbox_pending()["waiting"] == 0 and outbox_relay() == 0
    # Each was tried once after its commit; the failed round stopped at the oldest (order); then all went.
    assert list(OutboxEntry.objects.values_list("attempts", flat=True)) == [3, 2, 2]


def test_a_bot_command_and_its_desired_state_commit_together(user_api, user):
    from strategies.library import install_builtin_strategies

    install_builtin_strategies()
    bot = make_bot(owner=user)
    response = user_api.post(f"/api/v1/bots/{bot.pk}/start")
    assert response.status_code == 202
    (entry,) = OutboxEntry.objects.all()
    assert (entry.type, entry.payload["bot_id"], entry.sent_at is not None) == ("bot_start", bot.pk, True)
    bot.refresh_from_db()
    assert bot.desired_state == "running"


def test_the_gateway_handles_a_request_id_once_and_retries_one_that_failed():
    # given: a handler that fails the first time it sees a command
    recent, calls = RecentRequests(limit=2), []

    def handler(envelope: Envelope) -> None:
        calls.append(envelope.request_id)
        if len(calls) == 1:
            raise RuntimeError("the database blinked")

    handle = once(recent, handler)
    restart = Envelope(type="bot_restart", payload={"bot_id": 1}, request_id="outbox-a")
    # when: delivered (fails), redelivered (done), delivered again by a relay that died before marking it
    with pytest.raises(RuntimeError):
        handle(restart)
    handle(restart)
    handle(restart)
    # then: carried out once; the memory is bounded
    assert calls == ["outbox-a", "outbox-a"]
    for request_id in ("b", "c"):
        handle(Envelope(type="bot_restart", payload={"bot_id": 1}, request_id=request_id))
    assert "outbox-a" not in recent and "c" in recent

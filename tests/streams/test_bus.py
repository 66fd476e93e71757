"""streams.bus: envelopes checked at the producer, publishing one or many, maxlen, groups, audit news."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.conf import settings as django_settings

from multibot.redis_client import redis_client
from streams import bus
from streams.bus import (
    BusError,
    Envelope,
    EnvelopeError,
    ensure_groups,
    ensure_host_group,
    envelope,
    publish,
    publish_many,
    stream_key,
)
from streams.catalog import AUDIT_EVENTS, CATALOG, DATA_COMMANDS, SYSTEM_EVENTS, TRADING_COMMANDS, trading_group

STREAM = SYSTEM_EVENTS
BOT_BODY = {"name": "AuditedBot", "strategy_name": "SampleStrategy", "exchange": "replay", "stake_amount": 100.0}


def entries(name: str) -> list[tuple[str, dict[str, str]]]:
    return redis_client().xrange(stream_key(name))


# -- publish -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_publish_returns_the_entry_id_and_writes_the_envelope_fields():
    # given
    before = time.time()

    # when
    entry_id = publish(STREAM, type="bot.started", payload={"bot_id": 7, "pairs": ["BTC/USDT"]}, request_id="req-1")

    # then
    written = entries(STREAM)
    assert [message_id for message_id, _ in written] == [entry_id]
    fields = written[0][1]
    assert set(fields) == {"type", "payload", "request_id", "producer", "produced_at"}
    assert fields["type"] == "bot.started"
    assert json.loads(fields["payload"]) == {"bot_id": 7, "pairs": ["BTC/USDT"]}
    assert fields["request_id"] == "req-1"
    assert fields["producer"] == django_settings.STREAMS["service_name"]
    assert before <= float(fields["produced_at"]) <= time.time()


@pytest.mark.django_db
def test_publish_gives_each_envelope_its_own_request_id_and_takes_a_producer():
    first = publish(STREAM, type="tick", payload={}, producer="trading_gateway")
    second = publish(STREAM, type="tick", payload={})

    written = dict(entries(STREAM))
    assert written[first]["producer"] == "trading_gateway"
    assert len(written[first]["request_id"]) == 32
    assert written[first]["request_id"] != written[second]["request_id"]


@pytest.mark.django_db
def test_the_stream_key_carries_the_redis_prefix(settings):
    # given: the configured prefix
    prefix = settings.REDIS_KEY_PREFIX
    assert prefix
    publish(STREAM, type="tick", payload={})
    client = redis_client()
    assert stream_key(STREAM) == prefix + STREAM
    assert client.exists(prefix + STREAM) == 1
    assert client.exists(STREAM) == 0

    # when: another deployment shares the Redis under its own prefix
    settings.REDIS_KEY_PREFIX = "elsewhere:"
    publish(STREAM, type="tick", payload={})

    # then: its entry is in its own key
    assert stream_key(STREAM) == "elsewhere:" + STREAM
    assert client.xlen("elsewhere:" + STREAM) == 1
    assert client.xlen(prefix + STREAM) == 1


@pytest.mark.django_db
def test_publish_many_writes_a_thousand_envelopes_in_order_in_one_call():
    # given
    items = [envelope(type="candle", payload={"n": n}) for n in range(1000)]

    # when
    ids = publish_many(STREAM, items)

    # then
    assert len(ids) == 1000
    written = entries(STREAM)
    assert ids == [message_id for message_id, _ in written]
    assert [json.loads(fields["payload"])["n"] for _, fields in written] == list(range(1000))
    assert [fields["request_id"] for _, fields in written] == [item.request_id for item in items]


@pytest.mark.django_db
def test_publish_many_keeps_non_ascii_fields_intact():
    item = envelope(type="note", payload={"text": "café ☕", "pair": "ÄÖÜ/USDT"}, request_id="réq-✓", producer="späti")

    [entry_id] = publish_many(STREAM, [item])

    [(message_id, fields)] = entries(STREAM)
    assert message_id == entry_id
    assert fields["request_id"] == "réq-✓"
    assert fields["producer"] == "späti"
    assert json.loads(fields["payload"]) == {"text": "café ☕", "pair": "ÄÖÜ/USDT"}


@pytest.mark.django_db
def test_publish_many_of_nothing_writes_nothing():
    assert publish_many(STREAM, []) == []
    assert redis_client().dbsize() == 0


@pytest.mark.django_db
def test_a_batch_refused_by_redis_raises_bus_error_and_leaves_the_connection_usable():
    # given: the stream's key holds something that is not a stream
    client = redis_client()
    client.set(stream_key(STREAM), "not a stream")

    # when
    with pytest.raises(BusError, match="WRONGTYPE"):
        publish_many(STREAM, [envelope(type="tick", payload={"n": n}) for n in range(100)])

    # then: no unread error reply is left for the next command to misread
    assert client.get(stream_key(STREAM)) == "not a stream"
    client.delete(stream_key(STREAM))
    ids = publish_many(STREAM, [envelope(type="tick", payload={"n": n}) for n in range(3)])
    assert [message_id for message_id, _ in entries(STREAM)] == ids
    assert client.ping() is True


# -- refused at the producer -------------------------------------------------------------------


class Unserializable:
    pass


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("stream", "fields"),
    [
        pytest.param("no:such:stream", {"type": "tick", "payload": {}}, id="unknown stream"),
        pytest.param("mgmt:trading:commands:dead", {"type": "tick", "payload": {}}, id="a dead-letter stream"),
        pytest.param(STREAM, {"type": "Bad Type", "payload": {}}, id="type with capitals and a space"),
        pytest.param(STREAM, {"type": "", "payload": {}}, id="empty type"),
        pytest.param(STREAM, {"type": "tick\n", "payload": {}}, id="type with a trailing newline"),
        pytest.param(STREAM, {"type": "9lives", "payload": {}}, id="type starting with a digit"),
        pytest.param(STREAM, {"type": "t" * 65, "payload": {}}, id="type too long"),
        pytest.param(STREAM, {"type": None, "payload": {}}, id="type not a string"),
        pytest.param(STREAM, {"type": "tick", "payload": ["a", "list"]}, id="payload a list"),
        pytest.param(STREAM, {"type": "tick", "payload": "text"}, id="payload a string"),
        pytest.param(STREAM, {"type": "tick", "payload": None}, id="payload None"),
        pytest.param(STREAM, {"type": "tick", "payload": {"pairs": {"BTC/USDT"}}}, id="payload with a set"),
        pytest.param(STREAM, {"type": "tick", "payload": {"obj": Unserializable()}}, id="payload with an object"),
        pytest.param(STREAM, {"type": "tick", "payload": {"blob": "x" * (512 * 1024)}}, id="oversized payload"),
        pytest.param(STREAM, {"type": "tick", "payload": {}, "request_id": ""}, id="empty request_id"),
        pytest.param(STREAM, {"type": "tick", "payload": {}, "request_id": "r" * 129}, id="request_id too long"),
        pytest.param(STREAM, {"type": "tick", "payload": {}, "request_id": 42}, id="request_id not a string"),
    ],
)
def test_publish_refuses_a_bad_envelope_and_writes_nothing(stream: str, fields: dict[str, Any]):
    with pytest.raises(EnvelopeError):
        publish(stream, **fields)

    assert redis_client().dbsize() == 0


@pytest.mark.django_db
def test_a_payload_just_under_the_size_limit_is_accepted():
    blob = "x" * (bus.MAX_PAYLOAD_BYTES - len('{"blob":""}'))

    publish(STREAM, type="tick", payload={"blob": blob})

    assert len(entries(STREAM)) == 1


@pytest.mark.django_db
def test_publish_many_refuses_an_item_that_is_not_an_envelope_and_writes_nothing():
    items = [envelope(type="tick", payload={"n": 1}), {"type": "tick", "payload": {"n": 2}}]

    with pytest.raises(EnvelopeError, match="dict"):
        publish_many(STREAM, items)

    assert redis_client().dbsize() == 0


@pytest.mark.django_db
def test_publish_many_refuses_an_unknown_stream_and_writes_nothing():
    with pytest.raises(EnvelopeError, match="unknown stream"):
        publish_many("no:such:stream", [envelope(type="tick", payload={})])

    assert redis_client().dbsize() == 0


# -- maxlen ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_approximate_stream_is_trimmed_near_its_maxlen_from_settings(settings):
    # given
    settings.STREAMS = {**settings.STREAMS, "maxlen": {SYSTEM_EVENTS: 50}}

    # when
    publish_many(STREAM, [envelope(type="tick", payload={"n": n}) for n in range(1000)])
    publish(STREAM, type="tick", payload={"n": 1000})

    # then: whole nodes are dropped, so at least 50 and far fewer than 1001 remain
    written = entries(STREAM)
    assert 50 <= len(written) <= 200
    assert json.loads(written[-1][1]["payload"]) == {"n": 1000}


@pytest.mark.django_db
def test_an_exact_stream_keeps_exactly_its_maxlen_newest_entries(settings):
    # given
    name = TRADING_COMMANDS
    assert CATALOG[name].approximate is False
    settings.STREAMS = {**settings.STREAMS, "maxlen": {name: 50}}

    # when
    ids = publish_many(name, [envelope(type="bot_start", payload={"n": n}) for n in range(120)])
    ids.append(publish(name, type="bot_start", payload={"n": 120}))

    # then
    written = entries(name)
    assert len(written) == 50
    assert [message_id for message_id, _ in written] == ids[-50:]


@pytest.mark.django_db
def test_without_an_override_the_catalog_maxlen_applies():
    name = TRADING_COMMANDS
    assert CATALOG[name].maxlen == 10_000

    publish_many(name, [envelope(type="bot_start", payload={"n": n}) for n in range(200)])

    assert redis_client().xlen(stream_key(name)) == 200


# -- consumer groups ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_ensure_groups_creates_every_group_of_the_catalog_once():
    # given
    expected = {(config.name, group) for config in CATALOG.values() for group in config.consumer_groups}
    assert len(expected) == 11  # the twelfth stream, the trading commands, has a group per host

    # when
    created = ensure_groups()
    again = ensure_groups()

    # then
    assert len(created) == len(expected)
    assert set(created) == expected
    assert again == []
    client = redis_client()
    for name, group in expected:
        groups = {info["name"]: info for info in client.xinfo_groups(stream_key(name))}
        assert set(groups) == {group}
        assert groups[group]["last-delivered-id"] == "0-0"


@pytest.mark.django_db
def test_a_host_group_starts_at_the_end_and_reads_only_what_comes_after_it():
    # given: a command published before host alpha's gateway ever started
    publish(TRADING_COMMANDS, type="bot_start", payload={"bot_id": 1})
    client = redis_client()

    # when
    created, again = (ensure_host_group(TRADING_COMMANDS, trading_group("alpha")) for _ in range(2))
    later = publish(TRADING_COMMANDS, type="bot_start", payload={"bot_id": 2})

    # then: the earlier one is the database's to tell (the gateway reconciles); the later one is delivered
    assert (created, again) == (True, False)
    reply = client.xreadgroup("trading_consumers@alpha", "g1", {stream_key(TRADING_COMMANDS): ">"}, count=10)
    assert [message_id for message_id, _ in reply[0][1]] == [later]


@pytest.mark.django_db
def test_each_host_group_reads_every_command_and_one_host_reading_leaves_the_others_waiting():
    # given
    for host in ("alpha", "beta"):
        ensure_host_group(TRADING_COMMANDS, trading_group(host))
    sent = publish(TRADING_COMMANDS, type="bot_stop", payload={"bot_id": 1})
    client, key = redis_client(), stream_key(TRADING_COMMANDS)

    # when: alpha reads and acknowledges
    reply = client.xreadgroup("trading_consumers@alpha", "g1", {key: ">"}, count=10)
    client.xack(key, "trading_consumers@alpha", sent)

    # then: beta's copy still waits for beta
    assert [message_id for message_id, _ in reply[0][1]] == [sent]
    groups = {info["name"]: info for info in client.xinfo_groups(key)}
    assert groups["trading_consumers@alpha"]["lag"] == 0
    assert groups["trading_consumers@beta"]["lag"] == 1


@pytest.mark.django_db
def test_the_single_group_of_an_older_version_is_removed_when_a_host_group_is_made():
    client, key = redis_client(), stream_key(TRADING_COMMANDS)
    client.xgroup_create(key, "trading_consumers", id="0", mkstream=True)

    ensure_host_group(TRADING_COMMANDS, trading_group("alpha"))

    assert [info["name"] for info in client.xinfo_groups(key)] == ["trading_consumers@alpha"]


@pytest.mark.parametrize(("stream", "group"), [
    (TRADING_COMMANDS, "trading_consumers"), (TRADING_COMMANDS, "trading_consumers@"),
    (DATA_COMMANDS, "data_consumers@alpha"),
])  # fmt: skip
def test_only_a_per_host_stream_has_host_groups(stream, group):
    with pytest.raises(bus.UnknownStream):
        ensure_host_group(stream, group)


@pytest.mark.django_db
def test_a_group_created_after_publishing_still_delivers_the_earlier_entries():
    # given
    first = publish(DATA_COMMANDS, type="import", payload={"pair": "BTC/USDT"})

    # when
    assert ensure_groups([DATA_COMMANDS]) == [(DATA_COMMANDS, "data_consumers")]

    # then
    reply = redis_client().xreadgroup("data_consumers", "c1", {stream_key(DATA_COMMANDS): ">"}, count=10)
    assert [message_id for message_id, _ in reply[0][1]] == [first]


# -- envelopes read back -----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_entry_reads_back_as_the_envelope_that_was_published():
    item = envelope(type="bot_start", payload={"bot_id": 3}, request_id="req-9", producer="web")
    [entry_id] = publish_many(TRADING_COMMANDS, [item])

    [(message_id, fields)] = entries(TRADING_COMMANDS)
    read = Envelope.from_entry(TRADING_COMMANDS, message_id, fields)

    assert message_id == entry_id
    assert (read.type, read.payload, read.request_id, read.producer) == ("bot_start", {"bot_id": 3}, "req-9", "web")
    assert read.produced_at == item.produced_at
    assert (read.stream, read.message_id, read.deliveries) == (TRADING_COMMANDS, entry_id, 1)


# -- audit news --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_audit_row_is_published_on_audit_events_after_its_commit(user_api, django_capture_on_commit_callbacks):
    # when: a bot is created through the API
    with django_capture_on_commit_callbacks(execute=True):
        response = user_api.post("/api/v1/bots/", BOT_BODY, format="json")
        assert response.status_code == 201, response.content
        # then: nothing is announced before the transaction commits
        assert entries(AUDIT_EVENTS) == []

    # then: after the commit the row is on audit:events
    written = [fields for _, fields in entries(AUDIT_EVENTS)]
    creates = [fields for fields in written if json.loads(fields["payload"])["action"] == "bot_create"]
    assert len(creates) == 1
    fields = creates[0]
    assert fields["type"] == "audit_entry"
    payload = json.loads(fields["payload"])
    assert payload["status"] == "success"
    assert payload["resource"] == f"bot:{response.json()['id']}"
    assert fields["request_id"] == f"audit-{payload['id']}"


def test_publish_many_checks_an_envelope_built_directly_like_any_other():
    unchecked = Envelope(type="Not Lower", payload={"ok": 1})
    unserializable = Envelope(type="tick", payload={"when": object()})

    with pytest.raises(EnvelopeError, match="type must be"):
        publish_many(SYSTEM_EVENTS, [unchecked])
    with pytest.raises(EnvelopeError, match="not JSON-serializable"):
        publish_many(SYSTEM_EVENTS, [unserializable])
    assert redis_client().exists(stream_key(SYSTEM_EVENTS)) == 0


def test_a_directly_built_envelope_keeps_its_request_id_and_time():
    item = Envelope(type="tick", payload={"n": 1}, request_id="req-direct", produced_at=1234.5)

    [entry_id] = publish_many(SYSTEM_EVENTS, [item])

    fields = redis_client().xrange(stream_key(SYSTEM_EVENTS))[0][1]
    assert fields["request_id"] == "req-direct"
    assert fields["produced_at"] == "1234.5"
    assert entry_id


@pytest.mark.django_db
def test_a_host_consumer_hears_when_its_group_missed_commands_for_good():
    from streams.worker import HandlerRegistry, StreamWorker

    group, key, client = trading_group("alpha"), stream_key(TRADING_COMMANDS), redis_client()
    missed: list[str] = []

    def worker() -> StreamWorker:
        return StreamWorker(registry=HandlerRegistry(), group=group, consumer="g1", block_ms=0, on_missed=missed.append)

    # given: the group exists and has read everything: nothing missed
    ensure_host_group(TRADING_COMMANDS, group)
    publish(TRADING_COMMANDS, type="bot_start", payload={"bot_id": 1})
    first = worker()
    first.prepare()
    first.step()
    first.close()
    assert missed == []

    # when: Redis lost the group (its data), then: made again at the end, and said
    client.xgroup_destroy(key, group)
    again = worker()
    again.prepare()
    again.close()
    assert missed == [TRADING_COMMANDS]

    # when: commands it never read were trimmed while it was away, then: said as well
    publish_many(TRADING_COMMANDS, [envelope(type="bot_stop", payload={"bot_id": n}) for n in range(5)])
    client.xtrim(key, maxlen=2, approximate=False)
    trimmed = worker()
    trimmed.prepare()
    trimmed.close()
    assert missed == [TRADING_COMMANDS, TRADING_COMMANDS]

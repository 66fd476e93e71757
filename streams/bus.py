"""Publishing on the Redis Streams bus: envelopes, one or a batch, and consumer groups.

An entry's fields are the envelope: ``type``, ``payload`` (JSON), ``request_id``, ``producer``,
``produced_at``. Stream keys live under the project's Redis prefix, so a shared Redis is safe.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import redis
from django.conf import settings

from multibot.redis_client import redis_client, request_redis
from streams.catalog import CATALOG, UnknownStream, stream_config

logger = logging.getLogger(__name__)

TYPE = re.compile(r"[a-z][a-z0-9_.]{0,63}")
MAX_PAYLOAD_BYTES = 512 * 1024
ENVELOPE_FIELDS = ("type", "payload", "request_id", "producer", "produced_at")

_encode_json = json.JSONEncoder(separators=(",", ":")).encode  # one encoder, not one per call


class BusError(Exception):
    """Anything that went wrong talking to the bus (Redis unreachable, a refused envelope)."""


class EnvelopeError(BusError, ValueError):
    """An envelope that cannot be published or parsed; the message says which field and why."""


def stream_key(name: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}{name}"


def stream_name(key: str) -> str:
    return key[len(settings.REDIS_KEY_PREFIX) :]


def new_request_id() -> str:
    return os.urandom(16).hex()


@dataclass(slots=True)
class Envelope:
    type: str
    payload: dict[str, Any]
    request_id: str = field(default_factory=new_request_id)
    producer: str = ""
    produced_at: float = field(default_factory=time.time)
    # Set on entries read from a stream:
    stream: str = ""
    message_id: str = ""
    deliveries: int = 0
    # The payload as encoded once by envelope(), so publishing does not encode it twice.
    payload_json: str = field(default="", repr=False, compare=False)

    def fields(self) -> dict[str, str]:
        return {
            "type": self.type,
            "payload": self.payload_json or _encode_json(self.payload),
            "request_id": self.request_id,
            "producer": self.producer,
            "produced_at": repr(self.produced_at),
        }

    @classmethod
    def from_entry(cls, stream: str, message_id: str, fields: Mapping[str, str], deliveries: int = 1) -> Envelope:
        try:
            payload = json.loads(fields["payload"])
            produced_at = float(fields["produced_at"])
            kind, request_id = fields["type"], fields["request_id"]
        except (KeyError, TypeError, ValueError) as exc:
            raise EnvelopeError(f"malformed entry {message_id} on {stream}: {type(exc).__name__}") from exc
        if not isinstance(payload, dict):
            raise EnvelopeError(f"malformed entry {message_id} on {stream}: payload is not an object")
        return cls(
            type=kind, payload=payload, request_id=request_id, producer=fields.get("producer", ""),
            produced_at=produced_at, stream=stream, message_id=message_id, deliveries=deliveries,
        )  # fmt: skip


def envelope(
    *, type: str, payload: Mapping[str, Any], request_id: str | None = None, producer: str | None = None
) -> Envelope:
    """A checked envelope: refused here, at the producer, rather than dead-lettered later."""
    if not isinstance(type, str) or not TYPE.fullmatch(type):
        raise EnvelopeError(f"type must be lower_snake (dots allowed), 1-64 characters; got {type!r}")
    if payload.__class__ is not dict and not isinstance(payload, Mapping):
        raise EnvelopeError(f"payload must be a JSON object, not {payload.__class__.__name__}")
    try:
        encoded = _encode_json(payload)
    except (TypeError, ValueError) as exc:
        raise EnvelopeError(f"payload is not JSON-serializable: {exc}") from exc
    if len(encoded) > MAX_PAYLOAD_BYTES:
        raise EnvelopeError(f"payload is {len(encoded)} bytes; the bus takes at most {MAX_PAYLOAD_BYTES}")
    if request_id is not None and (not isinstance(request_id, str) or not 1 <= len(request_id) <= 128):
        raise EnvelopeError("request_id must be a string of 1-128 characters")
    return Envelope(
        type=type,
        payload=payload if payload.__class__ is dict else dict(payload),
        request_id=request_id or new_request_id(),
        producer=producer or settings.STREAMS["service_name"],
        payload_json=encoded,
    )


def _checked_stream(stream: str) -> str:
    if stream not in CATALOG:
        raise EnvelopeError(f"unknown stream {stream!r}")
    return stream


def publish(
    stream: str,
    *,
    type: str,
    payload: Mapping[str, Any],
    request_id: str | None = None,
    producer: str | None = None,
    fast: bool = False,
) -> str:
    """Append one envelope; returns the entry id.

    ``fast``: through the short-timeout client that skips a Redis that just failed (request_redis), for
    a request that must not wait: what it publishes is also kept elsewhere (an outbox row, an audit row).
    """
    item = envelope(type=type, payload=payload, request_id=request_id, producer=producer)
    config = stream_config(_checked_stream(stream))
    key, fields = stream_key(stream), item.fields()
    try:
        if fast:
            with request_redis() as client:
                entry_id = client.xadd(key, fields, maxlen=config.maxlen, approximate=config.approximate)
        else:
            entry_id = redis_client().xadd(key, fields, maxlen=config.maxlen, approximate=config.approximate)
    except redis.RedisError as exc:
        raise BusError(f"could not publish to {stream}: {exc}") from exc
    return str(entry_id)


def announce(
    stream: str,
    *,
    type: str,
    payload: Mapping[str, Any],
    request_id: str | None = None,
    producer: str | None = None,
    fast: bool = False,
) -> str | None:
    """Publish news whose loss is tolerable (the database holds the record, or the next report repeats it).

    Best effort: when the bus refuses or is away, one warning line and None instead of an exception.
    """
    try:
        return publish(stream, type=type, payload=payload, request_id=request_id, producer=producer, fast=fast)
    except BusError as exc:
        logger.warning("%s not published on %s: %s", type, stream, exc)
        return None


def _bulk(value: str) -> bytes:
    data = value.encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


# The five fields in the Redis protocol (RESP): names fixed, values filled in by one % per entry.
_FIELDS_TEMPLATE = b"".join(_bulk(name) + b"$%d\r\n%b\r\n" for name in ENVELOPE_FIELDS)


def _xadd_command(head: bytes, item: Envelope) -> bytes:
    """One XADD in RESP; ``head`` holds the array header and the fixed arguments."""
    if not item.payload_json:
        # Built directly rather than by envelope(): check it like any other envelope.
        checked = envelope(type=item.type, payload=item.payload, request_id=item.request_id, producer=item.producer)
        item = replace(checked, produced_at=item.produced_at)
    values = [value.encode() for value in item.fields().values()]
    return head + _FIELDS_TEMPLATE % tuple(part for value in values for part in (len(value), value))


def publish_many(stream: str, items: Iterable[Envelope]) -> list[str]:
    """Append many envelopes in one round trip; returns their entry ids in order.

    The batch is encoded here in one pass and written on one connection: redis-py's pipeline
    spends most of its time packing arguments, which caps a batch well below what Redis takes.
    """
    config = stream_config(_checked_stream(stream))
    fixed = ["XADD", stream_key(stream), "MAXLEN", *(["~"] if config.approximate else []), str(config.maxlen), "*"]
    head = b"*%d\r\n" % (len(fixed) + 2 * len(ENVELOPE_FIELDS)) + b"".join(_bulk(arg) for arg in fixed)
    commands = []
    for item in items:
        if not isinstance(item, Envelope):
            raise EnvelopeError(f"publish_many takes envelopes, not {item.__class__.__name__}")
        commands.append(_xadd_command(head, item))
    if not commands:
        return []
    pool = redis_client().connection_pool
    connection = pool.get_connection()
    try:
        connection.send_packed_command([b"".join(commands)])
        replies = [connection.read_response() for _ in commands]
    except redis.RedisError as exc:
        # Replies may be left unread on the socket: this connection must not be reused.
        connection.disconnect()
        raise BusError(f"could not publish to {stream}: {exc}") from exc
    finally:
        pool.release(connection)
    return [reply.decode() if isinstance(reply, bytes) else str(reply) for reply in replies]


def ensure_groups(streams: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """Create every consumer group of the catalog that does not exist yet; returns those created."""
    created = []
    client = redis_client()
    for name in streams or CATALOG:
        config = stream_config(name)
        for group in config.consumer_groups:
            try:
                # "0": a group created after entries were published still delivers them.
                client.xgroup_create(stream_key(name), group, id="0", mkstream=True)
                created.append((name, group))
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
    return created


def ensure_host_group(name: str, group: str, *, after: str = "$") -> bool:
    """Create a host's own group on a stream routed per host, if it has none yet; True if created.

    Made for the first time, at the stream's end ("$"): the entries before it are not this host's to
    read (what they asked for is in the database, which the host's consumer reconciles with when it
    starts, after this). Made again by a consumer that finds it gone (a Redis that lost its data), at
    ``after``, the last entry it read: what was published since is delivered, what it had read is not.
    A group of the stream's prefix alone, left by a version that read every host's commands in one
    group, is removed: nobody reads it any more and its lag would only grow.
    """
    config = stream_config(name)
    if not config.has_group(group) or group in config.consumer_groups:
        raise UnknownStream(f"{name} has no per-host consumer group {group!r}")
    client, key = redis_client(), stream_key(name)
    try:
        client.xgroup_create(key, group, id=after, mkstream=True)
        created = True
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
        created = False
    if any(info["name"] == config.host_groups for info in client.xinfo_groups(key)):
        client.xgroup_destroy(key, config.host_groups)
    return created


__all__ = [
    "BusError", "Envelope", "EnvelopeError", "UnknownStream", "announce", "ensure_groups", "ensure_host_group",
    "envelope",
    "publish", "publish_many", "stream_key", "stream_name",
]  # fmt: skip

"""Publishing on the Redis Streams bus: envelopes, one or a pipelined batch, and consumer groups.

An entry's fields are the envelope: ``type``, ``payload`` (JSON), ``request_id``, ``producer``,
``produced_at``. Stream keys live under the project's Redis prefix, so a shared Redis is safe.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings

from multibot.redis_client import redis_client
from streams.catalog import CATALOG, UnknownStream, stream_config

TYPE = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
MAX_PAYLOAD_BYTES = 512 * 1024
ENVELOPE_FIELDS = ("type", "payload", "request_id", "producer", "produced_at")


class BusError(Exception):
    """Anything that went wrong talking to the bus (Redis unreachable, a refused envelope)."""


class EnvelopeError(BusError, ValueError):
    """An envelope that cannot be published or parsed; the message says which field and why."""


def stream_key(name: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}{name}"


def stream_name(key: str) -> str:
    return key[len(settings.REDIS_KEY_PREFIX) :]


@dataclass(frozen=True)
class Envelope:
    type: str
    payload: dict[str, Any]
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    producer: str = ""
    produced_at: float = field(default_factory=time.time)
    # Set on entries read from a stream:
    stream: str = ""
    message_id: str = ""
    deliveries: int = 0

    def fields(self) -> dict[str, str]:
        return {
            "type": self.type,
            "payload": json.dumps(self.payload, separators=(",", ":")),
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
    if not isinstance(type, str) or not TYPE.match(type):
        raise EnvelopeError(f"type must be lower_snake (dots allowed), 1-64 characters; got {type!r}")
    if not isinstance(payload, Mapping):
        raise EnvelopeError(f"payload must be a JSON object, not {payload.__class__.__name__}")
    try:
        size = len(json.dumps(payload, separators=(",", ":")))
    except (TypeError, ValueError) as exc:
        raise EnvelopeError(f"payload is not JSON-serializable: {exc}") from exc
    if size > MAX_PAYLOAD_BYTES:
        raise EnvelopeError(f"payload is {size} bytes; the bus takes at most {MAX_PAYLOAD_BYTES}")
    if request_id is not None and (not isinstance(request_id, str) or not 1 <= len(request_id) <= 128):
        raise EnvelopeError("request_id must be a string of 1-128 characters")
    return Envelope(
        type=type,
        payload=dict(payload),
        request_id=request_id or uuid.uuid4().hex,
        producer=producer or settings.STREAMS["service_name"],
    )


def _checked_stream(stream: str) -> str:
    if stream not in CATALOG:
        raise EnvelopeError(f"unknown stream {stream!r}")
    return stream


def _xadd_args(stream: str) -> dict[str, Any]:
    config = stream_config(stream)
    return {"maxlen": config.maxlen, "approximate": config.approximate}


def publish(
    stream: str, *, type: str, payload: Mapping[str, Any], request_id: str | None = None, producer: str | None = None
) -> str:
    """Append one envelope; returns the entry id."""
    item = envelope(type=type, payload=payload, request_id=request_id, producer=producer)
    try:
        return str(redis_client().xadd(stream_key(_checked_stream(stream)), item.fields(), **_xadd_args(stream)))
    except redis.RedisError as exc:
        raise BusError(f"could not publish to {stream}: {exc}") from exc


def publish_many(stream: str, items: Iterable[Envelope]) -> list[str]:
    """Append many envelopes in one pipelined round trip; returns their entry ids in order."""
    key, args = stream_key(_checked_stream(stream)), _xadd_args(stream)
    pipe = redis_client().pipeline(transaction=False)
    for item in items:
        if not isinstance(item, Envelope):
            raise EnvelopeError(f"publish_many takes envelopes, not {item.__class__.__name__}")
        pipe.xadd(key, item.fields(), **args)
    try:
        return [str(entry_id) for entry_id in pipe.execute()]
    except redis.RedisError as exc:
        raise BusError(f"could not publish to {stream}: {exc}") from exc


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


__all__ = [
    "BusError", "Envelope", "EnvelopeError", "UnknownStream", "ensure_groups", "envelope",
    "publish", "publish_many", "stream_key", "stream_name",
]  # fmt: skip

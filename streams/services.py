"""Operator actions on dead letters: replay them onto their original stream, or purge them. Audited."""

from __future__ import annotations

from typing import Any

import redis

from audit.services import Actor, audit_record
from multibot.redis_client import redis_client
from streams.bus import ENVELOPE_FIELDS, Envelope, EnvelopeError, stream_key
from streams.catalog import stream_config


def _not_entry_ids(exc: redis.ResponseError) -> Exception:
    from rest_framework.exceptions import ValidationError

    return ValidationError({"message_ids": [f"Not stream entry ids: {exc}"]})


def _dead_entries(name: str, message_ids: list[str] | None, limit: int) -> list[tuple[str, dict[str, str]]]:
    client, key = redis_client(), stream_key(stream_config(name).dead_letter)
    if message_ids:
        entries = []
        try:
            for message_id in dict.fromkeys(message_ids):  # an id given twice is replayed once
                entries.extend(client.xrange(key, min=message_id, max=message_id, count=1))
        except redis.ResponseError as exc:  # well-formed but not an id Redis can read (out of range)
            raise _not_entry_ids(exc) from exc
        return entries
    return client.xrange(key, count=limit)


def dead_letter_replay(
    *, actor: Actor, stream: str, message_ids: list[str] | None = None, limit: int = 100
) -> dict[str, Any]:
    """Re-publish dead letters with their original envelope (same request_id) and remove them from the DLQ."""
    config = stream_config(stream)
    client = redis_client()
    replayed: list[dict[str, str]] = []
    not_replayable: list[str] = []
    for dead_id, fields in _dead_entries(stream, message_ids, limit):
        original = {name: fields[name] for name in ENVELOPE_FIELDS if name in fields}
        try:
            Envelope.from_entry(stream, dead_id, original)
        except EnvelopeError:
            not_replayable.append(dead_id)  # not an envelope: it would come straight back; left in the DLQ
            continue
        pipe = client.pipeline(transaction=True)  # MULTI: never both in the DLQ and back on the stream
        pipe.xadd(stream_key(stream), original, maxlen=config.maxlen, approximate=config.approximate)
        pipe.xdel(stream_key(config.dead_letter), dead_id)
        new_id, _ = pipe.execute()
        replayed.append({"dead_letter_id": dead_id, "message_id": str(new_id)})
    found = {item["dead_letter_id"] for item in replayed} | set(not_replayable)
    missing = sorted(set(message_ids or []) - found)
    audit_record(actor=actor, action="dead_letter_replay", resource=f"stream:{stream}",
                 details={"replayed": replayed, "not_found": missing, "not_replayable": not_replayable})  # fmt: skip
    return {
        "stream": stream, "replayed": len(replayed), "messages": replayed,
        "not_found": missing, "not_replayable": not_replayable,
    }  # fmt: skip


def dead_letter_purge(*, actor: Actor, stream: str, message_ids: list[str] | None = None) -> dict[str, Any]:
    """Delete the given dead letters, or all of them."""
    key = stream_key(stream_config(stream).dead_letter)
    client = redis_client()
    try:
        if message_ids:
            purged = int(client.xdel(key, *message_ids))
        else:
            purged = int(client.xlen(key))
            client.delete(key)
    except redis.ResponseError as exc:
        raise _not_entry_ids(exc) from exc
    audit_record(actor=actor, action="dead_letter_purge", resource=f"stream:{stream}",
                 details={"purged": purged, "message_ids": message_ids or "all"})  # fmt: skip
    return {"stream": stream, "purged": purged}

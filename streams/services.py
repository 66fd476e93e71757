"""Operator actions on dead letters: replay them onto their original stream, or purge them. Audited."""

from __future__ import annotations

from typing import Any

import redis

from audit import events
from audit.services import Actor
from multibot.errors import InvalidInputError
from multibot.redis_client import redis_client
from streams.bus import ENVELOPE_FIELDS, Envelope, EnvelopeError, stream_key
from streams.catalog import stream_config


def _not_entry_ids(exc: redis.ResponseError) -> InvalidInputError:
    return InvalidInputError("message_ids", f"Not stream entry ids: {exc}")


# Delete the dead letter and re-add its envelope in one step, only if the delete happened: two
# concurrent replays of one dead letter put it back once.
_MOVE_BACK = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return false end
local command = {'XADD', KEYS[2], 'MAXLEN'}
if ARGV[3] == '1' then table.insert(command, '~') end
table.insert(command, ARGV[2])
table.insert(command, '*')
for i = 4, #ARGV do table.insert(command, ARGV[i]) end
return redis.call(unpack(command))
"""


def _move_back(*, keys: list[str], args: list[Any]) -> Any:
    return redis_client().register_script(_MOVE_BACK)(keys=keys, args=args)


def _flat(fields: dict[str, str]) -> list[str]:
    return [part for pair in fields.items() for part in pair]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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
    replayed: list[dict[str, str]] = []
    not_replayable: list[str] = []
    for dead_id, fields in _dead_entries(stream, message_ids, limit):
        original = {name: fields[name] for name in ENVELOPE_FIELDS if name in fields}
        try:
            Envelope.from_entry(stream, dead_id, original)
        except EnvelopeError:
            not_replayable.append(dead_id)  # not an envelope: it would come straight back; left in the DLQ
            continue
        new_id = _move_back(keys=[stream_key(config.dead_letter), stream_key(stream)],
                            args=[dead_id, config.maxlen, int(config.approximate), *_flat(original)])  # fmt: skip
        if new_id is None:
            continue  # another replay or a purge took it first: not replayed twice
        replayed.append({"dead_letter_id": dead_id, "message_id": _text(new_id)})
    found = {item["dead_letter_id"] for item in replayed} | set(not_replayable)
    missing = sorted(set(message_ids or []) - found)
    events.dead_letters_replayed_event(actor=actor, stream=stream, replayed=replayed, not_found=missing,
                                       not_replayable=not_replayable)  # fmt: skip
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
            pipe = client.pipeline(transaction=True)  # MULTI: the count is of exactly what is deleted
            pipe.xlen(key)
            pipe.delete(key)
            purged = int(pipe.execute()[0])
    except redis.ResponseError as exc:
        raise _not_entry_ids(exc) from exc
    events.dead_letters_purged_event(actor=actor, stream=stream, purged=purged, message_ids=message_ids)
    return {"stream": stream, "purged": purged}

"""Reading dead letters as Redis holds them (the operator actions on them are in streams.services)."""

from __future__ import annotations

from typing import Any

from multibot.redis_client import redis_client
from streams.bus import stream_key
from streams.catalog import stream_config
from streams.worker import describe_entry


def dead_letter_list(*, stream: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` dead letters of ``stream``, newest first, with their payloads decoded."""
    entries = redis_client().xrevrange(stream_key(stream_config(stream).dead_letter), count=limit)
    return [
        {"id": entry_id, "data": describe_entry(fields), "timestamp": fields.get("failed_at", "")}
        for entry_id, fields in entries
    ]

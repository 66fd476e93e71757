"""Health and metrics of the bus, read from Redis: lengths, groups, lag, pending, dead letters, throughput.

Throughput comes from sampled counters: each sample records a stream's ``entries-added`` (kept by
Redis itself); the rate is the difference between now and a sample about a minute old. The
listeners take a sample every few seconds, and every metrics request takes one too.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import redis

from multibot.heartbeats import heartbeat_list
from multibot.redis_client import RedisSkipped, redis_client, redis_key, request_redis
from streams.bus import stream_key
from streams.catalog import CATALOG, SYSTEM_EVENTS, stream_config

SAMPLE_KEEP_SECONDS = 900
RATE_WINDOW_SECONDS = 60
LAG_DEGRADED = 1000


def _samples_key(name: str) -> str:
    return redis_key("streams", "samples", name)


def _id_tuple(entry_id: str | None) -> tuple[int, int]:
    if not entry_id:
        return (0, 0)
    ms, _, seq = entry_id.partition("-")
    return (int(ms), int(seq or 0))


def _stream_info(client: redis.Redis, name: str) -> dict[str, Any] | None:
    try:
        return client.xinfo_stream(stream_key(name))
    except redis.ResponseError:
        return None  # no such key yet


def sample_throughput(names: list[str] | None = None) -> None:
    """Record ``entries-added`` of each stream now (one sorted-set member per sample)."""
    client, now = redis_client(), time.time()
    infos = {name: _stream_info(client, name) for name in names or CATALOG}
    pipe = client.pipeline(transaction=False)
    for name, info in infos.items():
        if info is None:
            continue
        pipe.zadd(_samples_key(name), {f"{now:.3f}:{info.get('entries-added', 0)}": now})
        pipe.zremrangebyscore(_samples_key(name), 0, now - SAMPLE_KEEP_SECONDS)
    pipe.execute()


def messages_per_minute(name: str) -> float:
    client, now = redis_client(), time.time()
    members = client.zrangebyscore(_samples_key(name), now - SAMPLE_KEEP_SECONDS, now)
    samples = [(float(ts), int(added)) for ts, added in (member.split(":") for member in members)]
    if len(samples) < 2:
        return 0.0
    latest = samples[-1]
    # The newest sample at least a minute older than the latest, else the oldest we have.
    older = [sample for sample in samples if sample[0] <= latest[0] - RATE_WINDOW_SECONDS]
    base = older[-1] if older else samples[0]
    elapsed = latest[0] - base[0]
    if elapsed < 1:
        return 0.0
    return round((latest[1] - base[1]) / elapsed * 60, 2)


def _lost_counts(client: redis.Redis, kind: str = "lost") -> dict[str, int]:
    return {field: int(value) for field, value in (client.hgetall(redis_key("streams", kind)) or {}).items()}


def dead_letter_stats(name: str, *, with_types: bool = True) -> dict[str, Any]:
    client = redis_client()
    key = stream_key(stream_config(name).dead_letter)
    total = int(client.xlen(key))
    error_types: Counter[str] = Counter()
    if with_types and total:
        cursor = "-"
        while True:
            batch = client.xrange(key, min=cursor, count=1000)
            error_types.update(fields.get("dead_letter_reason", "unknown") for _, fields in batch)
            if len(batch) < 1000:
                break
            cursor = "(" + batch[-1][0]
    return {"total_messages": total, "error_types": dict(error_types)}


def record_unread_losses() -> int:
    """Count entries trimmed before a group read them, once each, and announce them on system:events.

    Redis shows them only while the group lags (its lag still counts them); this turns that passing
    view into a lasting counter (``streams:lost-unread``) and an event.
    """
    from streams.bus import announce

    client, recorded = redis_client(), 0
    for name in CATALOG:
        info = _stream_info(client, name)
        first_id = (info.get("first-entry") or [None])[0] if info else None
        if not first_id:
            continue
        for group in client.xinfo_groups(stream_key(name)):
            last, lag = group.get("last-delivered-id"), group.get("lag")
            if lag is None or _id_tuple(last) >= _id_tuple(first_id):
                continue
            unread_trimmed = max(0, int(lag) - int(info["length"]))
            seen_key = redis_key("streams", "unread-seen", name, group["name"])
            seen_last, _, seen_count = (client.get(seen_key) or "|0").partition("|")
            delta = unread_trimmed - (int(seen_count) if seen_last == last else 0)
            if delta <= 0:
                continue
            client.hincrby(redis_key("streams", "lost-unread"), f"{name}|{group['name']}", delta)
            client.set(seen_key, f"{last}|{unread_trimmed}", ex=SAMPLE_KEEP_SECONDS * 4)
            recorded += delta
            announce(SYSTEM_EVENTS, type="stream_entries_lost", payload={
                "stream": name, "group": group["name"], "count": delta, "kind": "unread",
            })  # fmt: skip
    return recorded


def stream_health(name: str, *, detailed: bool = True) -> dict[str, Any]:
    """One stream's figures, as Redis reports them now."""
    config, client = stream_config(name), redis_client()
    info = _stream_info(client, name)
    lost, lost_unread = _lost_counts(client), _lost_counts(client, "lost-unread")
    groups: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    if info is not None:
        first_id = (info.get("first-entry") or [None])[0]
        for group in client.xinfo_groups(stream_key(name)):
            lag = group.get("lag")
            last = group.get("last-delivered-id")
            figures = {
                "consumers": int(group["consumers"]),
                "pending": int(group["pending"]),
                "lag": int(lag) if lag is not None else None,
                "last_delivered_id": last,
                "entries_read": group.get("entries-read"),
                "lost_pending": lost.get(f"{name}|{group['name']}", 0),
            }
            # Entries trimmed before this group read them: counted so far, or still visible in the lag.
            unread_trimmed = lost_unread.get(f"{name}|{group['name']}", 0)
            if lag is not None and first_id and _id_tuple(last) < _id_tuple(first_id):
                unread_trimmed = max(unread_trimmed, int(lag) - int(info["length"]))
            figures["lost_unread"] = unread_trimmed
            groups[group["name"]] = figures
            if figures["lost_pending"] or unread_trimmed:
                errors[group["name"]] = {
                    "lost_entries": figures["lost_pending"] + unread_trimmed,
                    "reason": "trimmed by maxlen before being handled",
                }
    dead = dead_letter_stats(name, with_types=detailed)
    return {
        "name": name,
        "exists": info is not None,
        "length": int(info["length"]) if info else 0,
        "maxlen": config.maxlen,
        "groups_count": len(groups),
        "total_lag": sum(g["lag"] or 0 for g in groups.values()),
        "total_pending": sum(g["pending"] for g in groups.values()),
        "groups": groups,
        "dlq": dead,
        "throughput": {"messages_per_minute": messages_per_minute(name)},
        "errors": errors,
        "last_updated": time.time(),
    }


def active_listeners() -> int:
    try:
        return len(heartbeat_list(component="listeners"))
    except redis.RedisError:
        return 0


def bus_health(*, sample: bool = True) -> dict[str, Any]:
    """Every stream's figures, a system verdict and the issues behind it.

    ``sample`` takes a throughput sample first; the public health check passes False, so that a
    load balancer's polling reads the bus without writing to it.
    """
    try:
        with request_redis() as client:  # a frozen Redis costs the check 0.1 s, then nothing for a while
            client.ping()
        if sample:
            sample_throughput()
        streams = {name: stream_health(name, detailed=False) for name in CATALOG}
    except redis.RedisError as exc:
        error = exc.error if isinstance(exc, RedisSkipped) else type(exc).__name__
        return {
            "redis_connected": False,
            "active_listeners": 0,
            "streams": {},
            "system_health": {"overall_status": "unhealthy", "issues": [f"redis unavailable: {error}"],
                              "total_streams": len(CATALOG), "total_groups": 0, "total_lag": 0,
                              "total_dlq_messages": 0},
        }  # fmt: skip
    listeners = active_listeners()
    issues = []
    total_lag = sum(s["total_lag"] for s in streams.values())
    total_dead = sum(s["dlq"]["total_messages"] for s in streams.values())
    for name, figures in streams.items():
        for group, error in figures["errors"].items():
            issues.append(f"{name} ({group}): {error['lost_entries']} entries lost, {error['reason']}")
        if figures["total_lag"] > LAG_DEGRADED:
            issues.append(f"{name}: lag {figures['total_lag']}")
        if figures["dlq"]["total_messages"]:
            issues.append(f"{name}: {figures['dlq']['total_messages']} dead letters")
    if not listeners:
        issues.append("no listeners running")
    degrading = [issue for issue in issues if "dead letters" not in issue]
    return {
        "redis_connected": True,
        "active_listeners": listeners,
        "streams": streams,
        "system_health": {
            "overall_status": "degraded" if degrading else "healthy",
            "issues": issues,
            "total_streams": len(CATALOG),
            "total_groups": len({g for s in streams.values() for g in s["groups"]}),
            "total_lag": total_lag,
            "total_dlq_messages": total_dead,
        },
    }

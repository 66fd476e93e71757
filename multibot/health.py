"""Component health as measured now: database, Redis, and each component's heartbeat.

Only the database is essential: without Redis the API still reads, audits, and records the kill
switch (its stop signals wait for Redis), so Redis down makes the system ``degraded``, not
``unhealthy``, and /monitoring/health keeps its 200 (a load balancer must not take the web out because
Redis blinked). Redis is asked through request_redis(): a frozen Redis costs a check a tenth of a
second, and after a failure it is skipped for a few seconds, so health answers at once.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

import psutil
import redis
from django.conf import settings
from django.db import DatabaseError, connection

from multibot.heartbeats import heartbeat_list
from multibot.redis_client import RedisSkipped, request_redis

# The process's own start, not this module's import (which waits for the first request).
STARTED_AT = psutil.Process().create_time()
HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
# Without these nothing works; any other component down (Redis included) only degrades the system.
ESSENTIAL = frozenset({"database"})

psutil.cpu_percent(interval=None)  # the first reading is meaningless; take it at import


def _component(name: str, status: str, **details: Any) -> dict[str, Any]:
    return {"name": name, "status": status, "details": details}


def _timed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def check_server() -> dict[str, Any]:
    return _component(
        "Management Server", HEALTHY, port=settings.PORT, pid=os.getpid(),
        uptime_seconds=round(time.time() - STARTED_AT, 1),
    )  # fmt: skip


def check_database() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return _component("database", UNHEALTHY, vendor=connection.vendor, error=type(exc).__name__)
    return _component("database", HEALTHY, vendor=connection.vendor, latency_ms=_timed_ms(started))


def check_redis() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with request_redis() as client:
            client.ping()
            latency = _timed_ms(started)
            version = client.info("server").get("redis_version")
    except RedisSkipped as exc:
        return _component("redis", UNHEALTHY, embedded=settings.REDIS_EMBEDDED, reason=str(exc), error=exc.error)
    except (redis.RedisError, OSError) as exc:
        return _component("redis", UNHEALTHY, embedded=settings.REDIS_EMBEDDED, error=type(exc).__name__)
    return _component("redis", HEALTHY, embedded=settings.REDIS_EMBEDDED, latency_ms=latency, version=version)


def check_heartbeats(redis_ok: bool) -> list[dict[str, Any]]:
    results = []
    for name in settings.MONITORING["components"]:
        if not redis_ok:
            results.append(_component(name, UNHEALTHY, reason="redis unavailable: heartbeat unknown"))
            continue
        beats = heartbeat_list(component=name)
        if beats:
            results.append(_component(name, HEALTHY, instances=len(beats), last_seen=max(b["at"] for b in beats)))
        else:
            results.append(_component(name, UNHEALTHY, reason="no heartbeat", instances=0))
    return results


def check_streams() -> dict[str, Any]:
    from streams.health import bus_health

    bus = bus_health(sample=False)
    system = bus["system_health"]
    # Missing listeners are reported by their own heartbeat component; here: lag, losses, dead letters.
    issues = [issue for issue in system["issues"] if issue != "no listeners running"]
    status = DEGRADED if any("dead letters" not in issue for issue in issues) else HEALTHY
    return _component(
        "streams", status, active_listeners=bus["active_listeners"], total_lag=system["total_lag"],
        dead_letters=system["total_dlq_messages"], issues=issues,
    )  # fmt: skip


def check_bots() -> dict[str, Any]:
    """How many bots are up, by status (counts only: the public health names no bot). One whose own API
    stopped answering the gateway's probes degrades the system until it answers or is restarted."""
    from django.db.models import Count

    from bots.commands import ACTIVE_STATUSES, BotStatus
    from bots.models import Bot

    try:
        found = dict(Bot.objects.filter(status__in=ACTIVE_STATUSES).values_list("status").annotate(n=Count("id"))
                     .order_by())  # fmt: skip
    except DatabaseError as exc:
        return _component("bots", UNHEALTHY, error=type(exc).__name__)
    counts = {str(status): found.get(status, 0) for status in ACTIVE_STATUSES}
    return _component("bots", DEGRADED if counts[BotStatus.UNRESPONSIVE] else HEALTHY, **counts)


def check_hosts() -> dict[str, Any]:
    """Each bot host by name, live or down (its gateway's heartbeat), with how many bots it holds; a
    down host that holds bots degrades the system (their commands wait for it)."""
    from bots.selectors import host_list

    try:
        hosts = host_list()
    except DatabaseError as exc:
        return _component("hosts", UNHEALTHY, error=type(exc).__name__)
    each = {host["name"]: {"status": host["status"], "bots": len(host["bots"]),
                           "free_slots": host["capacity"]["free_slots"]} for host in hosts}  # fmt: skip
    down_with_bots = [name for name, host in each.items() if host["status"] == "down" and host["bots"]]
    return _component("hosts", DEGRADED if down_with_bots else HEALTHY, hosts=each)


# Commands waiting in the outbox longer than this mean the relay cannot reach the bus (or is not running).
OUTBOX_LATE_SECONDS = 10.0


def check_outbox() -> dict[str, Any]:
    """Commands committed but not yet on the bus (streams/outbox.py): a few for a moment is normal, any
    waiting past OUTBOX_LATE_SECONDS degrades the system (counts only, as public health must)."""
    from streams.outbox import outbox_pending

    try:
        pending = outbox_pending()
    except DatabaseError as exc:
        return _component("outbox", UNHEALTHY, error=type(exc).__name__)
    oldest = pending["oldest"]
    waited = round((datetime.now(UTC) - oldest).total_seconds(), 1) if oldest else 0.0
    status = DEGRADED if waited > OUTBOX_LATE_SECONDS else HEALTHY
    return _component("outbox", status, waiting=pending["waiting"], oldest_waiting_seconds=waited)


def overall(components: list[dict[str, Any]]) -> str:
    down = {item["name"] for item in components if item["status"] != HEALTHY}
    if down & ESSENTIAL:
        return UNHEALTHY
    return DEGRADED if down else HEALTHY


def health_report() -> dict[str, Any]:
    redis_state = check_redis()
    components = [check_server(), check_database(), redis_state]
    redis_ok = redis_state["status"] == HEALTHY
    components += check_heartbeats(redis_ok)
    if redis_ok:
        components.append(check_streams())
    components += [check_bots(), check_hosts(), check_outbox()]
    return {
        "timestamp": datetime.now(UTC).isoformat(),
        "overall_status": overall(components),
        "component_health": components,
    }


def _gb(value: float) -> float:
    return round(value / 1024**3, 2)


def system_metrics() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(settings.HOME))
    return {
        "cpu": {
            "usage_percent": psutil.cpu_percent(interval=None),
            "cores": psutil.cpu_count(logical=False) or psutil.cpu_count(),
            "cores_logical": psutil.cpu_count(),
        },
        "memory": {
            "total_gb": _gb(memory.total), "used_gb": _gb(memory.used),
            "free_gb": _gb(memory.available), "usage_percent": memory.percent,
        },
        "disk": {
            "total_gb": _gb(disk.total), "used_gb": _gb(disk.used),
            "free_gb": _gb(disk.free), "usage_percent": disk.percent,
        },
    }  # fmt: skip

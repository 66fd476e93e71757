"""Heartbeats of long-running components (gateway, listeners, workers), kept in Redis with a TTL."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable
from typing import Any

import psutil
from django.conf import settings

from multibot.redis_client import redis_client, redis_key


def heartbeat_publish(*, component: str, details: dict[str, Any] | None = None) -> None:
    instance = f"{socket.gethostname()}:{os.getpid()}"
    payload = {"instance": instance, "at": time.time(), **(details or {})}
    redis_client().set(
        redis_key("heartbeat", component, instance),
        json.dumps(payload),
        ex=settings.MONITORING["heartbeat_ttl_seconds"],
    )


def heartbeat_list(*, component: str) -> list[dict[str, Any]]:
    client = redis_client()
    keys = sorted(client.scan_iter(match=redis_key("heartbeat", component, "*"), count=100))
    values = client.mget(keys) if keys else []
    return [json.loads(value) for value in values if value]


def heartbeat_local_processes(*, components: Iterable[str] = ("*",)) -> list[psutil.Process]:
    """The live processes of this machine (this one aside) that publish a heartbeat of ``components``.

    Read from the heartbeats themselves, so a process that died is not waited for, and a pid reused
    since its beat (a process started after that beat) is not mistaken for it.
    """
    client = redis_client()
    keys = sorted({key for component in components
                   for key in client.scan_iter(match=redis_key("heartbeat", component, "*"), count=100)})  # fmt: skip
    host, processes = socket.gethostname(), []
    for value in client.mget(keys) if keys else []:
        beat = json.loads(value) if value else {}
        name, _, pid = str(beat.get("instance", "")).rpartition(":")
        if name != host or not (pid.isascii() and pid.isdigit()) or int(pid) == os.getpid():
            continue
        try:
            process = psutil.Process(int(pid))
            if process.create_time() <= float(beat.get("at", 0)) + 1:
                processes.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return processes


def wait_until_gone(processes: list[psutil.Process], *, timeout: float) -> list[psutil.Process]:
    """Wait, up to ``timeout``, until every one of ``processes`` has exited; returns those still running.

    An exited process its parent has not reaped yet (a zombie: its shell died first) counts as gone.
    """
    deadline = time.monotonic() + timeout
    running = list(processes)
    while running:
        running = [process for process in running if _running(process)]
        if not running or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return running


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False

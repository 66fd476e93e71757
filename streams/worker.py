"""The consumer-group worker, written once for every service: read, dispatch, ack, retry, reclaim, dead-letter.

Guarantees (DESIGN.md section 4):
- at-least-once: an entry is acknowledged only after its handler returned;
- on start a consumer first finishes its own pending entries (same consumer name), then reads new ones;
- entries idle past ``claim_idle_ms`` (their consumer died) are reclaimed with XAUTOCLAIM, following
  the cursor to the end; an entry whose handler is still running is kept alive (XCLAIM JUSTID), so a
  slow but healthy job is never stolen;
- a failing entry is retried; on its ``max_deliveries``-th failed delivery it moves to
  ``<stream>:dead`` with its metadata, in the same MULTI as its ACK;
- handlers registered ``atomic`` run in one database transaction with a ProcessedEnvelope row keyed
  by (group, request_id): a redelivered entry whose effect was committed is skipped (exactly-once effect);
- pending entries trimmed away by MAXLEN before they were acknowledged are counted as lost and
  reported (log, ``streams:lost`` counters, a ``stream_entries_lost`` event on ``system:events``).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from django.db import IntegrityError, transaction

from multibot.redis_client import redis_client, redis_key
from streams.bus import BusError, Envelope, EnvelopeError, publish, stream_key
from streams.catalog import (
    CATALOG,
    DEAD_LETTER_MAXLEN,
    SYSTEM_EVENTS,
    UnknownStream,
    stream_config,
    streams_of_group,
)
from streams.models import ProcessedEnvelope

logger = logging.getLogger(__name__)

Handler = Callable[[Envelope], None]


class DuplicateHandlerError(ValueError):
    """Two handlers for the same (stream, type): a wiring mistake, refused when it is made."""


@dataclass(frozen=True)
class Registration:
    stream: str
    type: str
    func: Handler
    atomic: bool
    # Seconds a delivery may take before it counts as hung (failed); None: no bound.
    time_limit: float | None = None


class HandlerRegistry:
    """The handlers one worker runs, by (stream, type); each app's ``listeners.py`` or ``handlers.py``
    defines one and ``discover`` gathers them. Registering a (stream, type) twice is an error."""

    def __init__(self) -> None:
        self._registrations: dict[tuple[str, str], Registration] = {}

    def handles(
        self, stream: str, type: str = "*", *, atomic: bool = True, time_limit: float | None = None
    ) -> Callable[[Handler], Handler]:
        """Register a handler for entries of ``type`` on ``stream`` ("*": every type without its own).

        ``atomic`` handlers run in one database transaction together with the record that their
        envelope was processed, so a redelivery never repeats their database effect. Handlers with
        effects outside the database pass ``atomic=False`` and must be idempotent by ``request_id``.
        """
        if stream not in CATALOG:
            raise UnknownStream(stream)

        def register(func: Handler) -> Handler:
            self.add(Registration(stream=stream, type=str(type), func=func, atomic=atomic, time_limit=time_limit))
            return func

        return register

    def add(self, registration: Registration) -> None:
        key = (registration.stream, registration.type)
        existing = self._registrations.get(key)
        if existing is not None:
            raise DuplicateHandlerError(
                f"{registration.stream} {registration.type!r} is handled by both "
                f"{_qualname(existing.func)} and {_qualname(registration.func)}"
            )
        self._registrations[key] = registration

    def include(self, other: HandlerRegistry) -> HandlerRegistry:
        for registration in other:
            self.add(registration)
        return self

    def handler_for(self, stream: str, type: str) -> Registration | None:
        return self._registrations.get((stream, type)) or self._registrations.get((stream, "*"))

    def __iter__(self) -> Iterator[Registration]:
        return iter(list(self._registrations.values()))

    def __len__(self) -> int:
        return len(self._registrations)


def _qualname(func: Handler) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def discover(module: str) -> HandlerRegistry:
    """Every installed app's ``<app>.<module>.registry`` (``listeners`` or ``handlers``), in one registry.

    Explicit: an app takes part by defining that module with a ``registry``; nothing registers by
    being imported somewhere else. A (stream, type) claimed by two apps fails here, at start.
    """
    from django.apps import apps

    merged = HandlerRegistry()
    for app in apps.get_app_configs():
        name = f"{app.name}.{module}"
        if importlib.util.find_spec(name) is None:
            continue
        registry = getattr(importlib.import_module(name), "registry", None)
        if not isinstance(registry, HandlerRegistry):
            raise TypeError(f"{name} must define `registry = HandlerRegistry()`")
        merged.include(registry)
    return merged


def _reason(exc: BaseException) -> str:
    """``ConnectionTimeout`` -> ``connection_timeout``: the dead letter's error type."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


@dataclass
class StepResult:
    read: int = 0
    processed: int = 0
    failed: int = 0
    dead: int = 0
    reclaimed: int = 0
    lost: int = 0
    skipped: int = 0

    def add(self, other: StepResult) -> StepResult:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


@dataclass
class _InFlight:
    """Entry ids being handled now, per stream key; the keepalive thread refreshes their idle time."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: dict[str, list[str]] = field(default_factory=dict)

    def set(self, key: str, ids: list[str]) -> None:
        with self.lock:
            self.ids[key] = ids

    def clear(self, key: str) -> None:
        with self.lock:
            self.ids.pop(key, None)

    def snapshot(self) -> dict[str, list[str]]:
        with self.lock:
            return {key: list(ids) for key, ids in self.ids.items()}


class StreamWorker:
    def __init__(
        self,
        *,
        registry: HandlerRegistry,
        group: str,
        consumer: str,
        streams: list[str] | None = None,
        service_name: str | None = None,
        batch_size: int | None = None,
        block_ms: int | None = None,
        claim_idle_ms: int | None = None,
        retry_delay_ms: int | None = None,
        max_deliveries: int | None = None,
    ) -> None:
        conf = settings.STREAMS
        self.registry = registry
        self.group, self.consumer = group, consumer
        self.streams = streams or streams_of_group(group)
        for name in self.streams:
            if group not in stream_config(name).consumer_groups:
                raise UnknownStream(f"{name} has no consumer group {group!r}")
        self.service_name = service_name or conf["service_name"]
        self.batch_size = batch_size or conf["batch_size"]
        self.block_ms = conf["block_ms"] if block_ms is None else block_ms
        self.claim_idle_ms = claim_idle_ms or conf["claim_idle_ms"]
        self.retry_delay = (conf["retry_delay_ms"] if retry_delay_ms is None else retry_delay_ms) / 1000
        self.max_deliveries = max_deliveries or conf["max_deliveries"]
        self.client = redis_client()
        self._names = {stream_key(name): name for name in self.streams}
        self._retry_due: dict[str, float] = {}
        self._next_reclaim = 0.0
        self._inflight = _InFlight()
        self._stopping = threading.Event()
        self._keepalive: threading.Thread | None = None
        self.totals = StepResult()

    # -- the loop --------------------------------------------------------------------------------
    def run(self, *, tick: Callable[[], object] | None = None, tick_seconds: float = 5.0) -> StepResult:
        """prepare, step until ``stop()``, close; ``tick`` runs every ``tick_seconds`` (heartbeats).

        A Redis outage (refused connection, restart, timeout) is waited out with backoff, logged once
        per outage; on reconnect the consumer drains its own pending entries again before new ones.
        """
        prepared, backoff, next_tick = False, 0.5, 0.0
        try:
            while not self._stopping.is_set():
                try:
                    if not prepared:
                        self.prepare()
                        prepared = True
                        if backoff > 0.5:
                            logger.warning("%s: redis is back, resuming", self.consumer)
                        backoff = 0.5
                    self.step()
                    if tick is not None and time.monotonic() >= next_tick:
                        tick()
                        next_tick = time.monotonic() + tick_seconds
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    if backoff == 0.5:
                        logger.warning("%s: redis unavailable (%s), retrying", self.consumer, type(exc).__name__)
                    prepared = False
                    self._tick_anyway(tick)  # e.g. the gateway keeps supervising its bots
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
                except redis.ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    # The stream or group vanished (a Redis that lost its data): create them again.
                    logger.warning("%s: consumer group missing, recreating it", self.consumer)
                    prepared = False
        finally:
            self.close()
        return self.totals

    @staticmethod
    def _tick_anyway(tick: Callable[[], object] | None) -> None:
        if tick is None:
            return
        try:
            tick()
        except Exception:
            logger.debug("tick during a redis outage failed", exc_info=True)

    def stop(self) -> None:
        """Finish the current batch, then return from ``run``."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def prepare(self) -> StepResult:
        from streams.bus import ensure_groups

        ensure_groups(self.streams)
        self._start_keepalive()
        return self.drain_pending()

    def close(self) -> None:
        self._stopping.set()
        if self._keepalive is not None:
            self._keepalive.join(timeout=5)

    def step(self) -> StepResult:
        """One round: reclaim if due, retry own failures if due, then read and handle a batch of new entries."""
        result = StepResult()
        now = time.monotonic()
        if now >= self._next_reclaim:
            result.add(self.reclaim())
            self._next_reclaim = now + self.claim_idle_ms / 2000
        for key, due in list(self._retry_due.items()):
            if due <= now:
                del self._retry_due[key]
                result.add(self._read_own_pending(key))
        result.add(self.read_new())
        self.totals.add(result)
        return result

    # -- reading ---------------------------------------------------------------------------------
    def read_new(self, block_ms: int | None = None) -> StepResult:
        block = self.block_ms if block_ms is None else block_ms
        if self._retry_due:
            until_retry = max(0.0, min(self._retry_due.values()) - time.monotonic())
            block = min(block, int(until_retry * 1000) + 1)
        if self._stopping.is_set():
            block = 0
        reply = self.client.xreadgroup(
            self.group, self.consumer, dict.fromkeys(self._names, ">"), count=self.batch_size, block=block or None
        )
        result = StepResult()
        for key, entries in reply or []:
            result.add(self._handle(key, entries, deliveries=None))
        return result

    def drain_pending(self) -> StepResult:
        """This consumer's own pending entries (left by a previous run under the same name), all of them."""
        result = StepResult()
        for key in self._names:
            result.add(self._read_own_pending(key))
        self.totals.add(result)
        return result

    def _read_own_pending(self, key: str) -> StepResult:
        result, cursor = StepResult(), "0"
        while True:
            reply = self.client.xreadgroup(self.group, self.consumer, {key: cursor}, count=self.batch_size)
            entries = reply[0][1] if reply else []
            if not entries:
                return result
            result.add(self._handle(key, entries, deliveries=self._delivery_counts(key, entries)))
            cursor = entries[-1][0]

    def reclaim(self) -> StepResult:
        """Take over entries idle past the bound (their consumer died), following XAUTOCLAIM's cursor to the end."""
        result = StepResult()
        for key, name in self._names.items():
            cursor = "0-0"
            while True:
                reply = self.client.xautoclaim(
                    key, self.group, self.consumer, self.claim_idle_ms, start_id=cursor, count=self.batch_size
                )
                cursor, entries = reply[0], reply[1]
                deleted = list(reply[2]) if len(reply) > 2 else []
                # Redis 6.2 returns entries deleted while pending as (None, None) instead.
                deleted += [entry_id for entry_id, fields in entries if fields is None and entry_id is not None]
                entries = [(entry_id, fields) for entry_id, fields in entries if fields is not None]
                if deleted:
                    # Redis already dropped them from the pending list: report, nothing to ack.
                    self._report_lost(name, list(deleted))
                    result.lost += len(deleted)
                if entries:
                    result.reclaimed += len(entries)
                    result.add(self._handle(key, entries, deliveries=self._delivery_counts(key, entries)))
                if cursor in ("0-0", "0"):
                    break
        return result

    def _delivery_counts(self, key: str, entries: list[tuple[str, Any]]) -> dict[str, int]:
        ids = [entry_id for entry_id, _ in entries]
        pending = self.client.xpending_range(
            key, self.group, min=ids[0], max=ids[-1], count=len(ids), consumername=self.consumer
        )
        return {item["message_id"]: int(item["times_delivered"]) for item in pending}

    # -- handling --------------------------------------------------------------------------------
    def _handle(self, key: str, entries: list[tuple[str, Any]], deliveries: dict[str, int] | None) -> StepResult:
        name = self._names[key]
        result = StepResult(read=len(entries))
        acks: list[str] = []
        lost: list[str] = []
        self._inflight.set(key, [entry_id for entry_id, _ in entries])
        try:
            for entry_id, fields in entries:
                if not fields:
                    lost.append(entry_id)  # trimmed by MAXLEN while it was pending
                    continue
                count = 1 if deliveries is None else deliveries.get(entry_id, 1)
                outcome = self._handle_one(key, name, entry_id, fields, count)
                if outcome == "ok":
                    acks.append(entry_id)
                    result.processed += 1
                elif outcome == "skipped":
                    acks.append(entry_id)
                    result.skipped += 1
                elif outcome == "dead":
                    result.dead += 1
                else:
                    result.failed += 1
                    # Back off with each delivery, so a passing outage (a database restarting) is
                    # waited out instead of turned into dead letters.
                    self._retry_due.setdefault(key, time.monotonic() + self.retry_delay * 2 ** (count - 1))
            if acks or lost:
                self.client.xack(key, self.group, *acks, *lost)
        finally:
            self._inflight.clear(key)
        if lost:
            self._report_lost(name, lost)
            result.lost += len(lost)
        return result

    def _handle_one(self, key: str, name: str, entry_id: str, fields: dict[str, str], deliveries: int) -> str:
        try:
            envelope = Envelope.from_entry(name, entry_id, fields, deliveries)
        except EnvelopeError as exc:
            self._dead_letter(key, entry_id, fields, "malformed_envelope", str(exc), deliveries)
            return "dead"
        if deliveries > self.max_deliveries:
            # Delivered more often than allowed yet never failed cleanly: its handler kills the
            # consumer (a crash, an OOM). Stop the crash loop without running it again.
            self._dead_letter(key, entry_id, fields, "max_deliveries_exceeded",
                              "the consumer died while handling it", deliveries - 1)  # fmt: skip
            return "dead"
        registration = self.registry.handler_for(name, envelope.type)
        if registration is None:
            self._dead_letter(key, entry_id, fields, "no_handler", f"no handler for {envelope.type!r}", deliveries)
            return "dead"
        try:
            done = self._dispatch(registration, envelope)
        except Exception as exc:  # noqa: BLE001 - any handler failure is retried, then dead-lettered
            if deliveries >= self.max_deliveries:
                logger.error("entry %s on %s failed %d times, dead-lettered: %r", entry_id, name, deliveries, exc)
                self._dead_letter(key, entry_id, fields, _reason(exc), str(exc), deliveries)
                return "dead"
            logger.warning("entry %s on %s failed (delivery %d): %r", entry_id, name, deliveries, exc)
            return "failed"
        return "ok" if done else "skipped"

    def _dispatch(self, registration: Registration, envelope: Envelope) -> bool:
        """Run the handler; False when an atomic handler's effect was already committed before."""
        if not registration.atomic:
            registration.func(envelope)
            return True
        with transaction.atomic():
            try:
                with transaction.atomic():
                    ProcessedEnvelope.objects.create(
                        group=self.group,
                        request_id=envelope.request_id,
                        stream=envelope.stream,
                        message_id=envelope.message_id,
                    )
            except IntegrityError:
                return False
            registration.func(envelope)
        return True

    def _dead_letter(
        self, key: str, entry_id: str, fields: dict[str, str], reason: str, error: str, deliveries: int
    ) -> None:
        name = self._names[key]
        data = {
            **(fields or {}),
            "dead_letter_reason": reason,
            "error": error[:1000],
            "failed_at": repr(time.time()),
            "original_stream": name,
            "original_message_id": entry_id,
            "service_name": self.service_name,
            "consumer_group": self.group,
            "final_retry_count": str(deliveries),
        }
        pipe = self.client.pipeline(transaction=True)  # MULTI: the dead letter exists iff the entry is acked
        pipe.xadd(stream_key(stream_config(name).dead_letter), data, maxlen=DEAD_LETTER_MAXLEN, approximate=True)
        pipe.xack(key, self.group, entry_id)
        pipe.execute()

    def _report_lost(self, name: str, ids: list[str]) -> None:
        logger.error("%d pending entries of %s (group %s) were trimmed before they were handled: %s",
                     len(ids), name, self.group, ids[:10])  # fmt: skip
        try:
            self.client.hincrby(redis_key("streams", "lost"), f"{name}|{self.group}", len(ids))
            if name != SYSTEM_EVENTS:
                publish(SYSTEM_EVENTS, type="stream_entries_lost", payload={
                    "stream": name, "group": self.group, "consumer": self.consumer,
                    "count": len(ids), "message_ids": ids[:20],
                })  # fmt: skip
        except (redis.RedisError, BusError):
            logger.exception("could not record lost entries of %s", name)

    # -- keepalive -------------------------------------------------------------------------------
    def _start_keepalive(self) -> None:
        if self._keepalive is not None:
            return
        self._keepalive = threading.Thread(target=self._keep_alive, name=f"keepalive-{self.consumer}", daemon=True)
        self._keepalive.start()

    def _keep_alive(self) -> None:
        interval = self.claim_idle_ms / 3000
        while not self._stopping.wait(interval):
            for key, ids in self._inflight.snapshot().items():
                try:
                    # JUSTID: resets the idle time without counting a delivery.
                    self.client.xclaim(key, self.group, self.consumer, 0, ids, justid=True)
                except redis.RedisError:
                    logger.warning("keepalive of %d entries on %s failed", len(ids), self._names.get(key))


def describe_entry(fields: dict[str, str]) -> dict[str, Any]:
    """An entry's fields for display, with the payload decoded when it is JSON."""
    shown: dict[str, Any] = dict(fields)
    if "payload" in shown:
        try:
            shown["payload"] = json.loads(shown["payload"])
        except ValueError:
            pass
    return shown

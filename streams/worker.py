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
  reported (log, ``streams:lost`` counters, a ``stream_entries_lost`` event on ``system:events``);
- an infrastructure failure under a handler (the database unreachable or locked, Redis gone) is not
  the handler's failure: consumption pauses, the entries in hand wait in memory, and they are handled
  again once the database or Redis answers, without counting a delivery;
- a registration's ``time_limit`` tells a hung handler from a slow one: past it the delivery fails
  (``time_limit_exceeded``) and the keepalive stops vouching for the consumer.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction

from multibot.redis_client import redis_client, redis_key
from streams.bus import Envelope, EnvelopeError, announce, stream_key
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
        ``time_limit`` (seconds) bounds one delivery: past it the handler is interrupted and the
        delivery counts as failed (dead letter reason ``time_limit_exceeded``); without one a handler
        may take as long as it needs, kept alive against reclaim.
        """
        if stream not in CATALOG:
            raise UnknownStream(stream)
        if time_limit is not None and not time_limit > 0:
            raise ValueError(f"time_limit must be a positive number of seconds, not {time_limit!r}")

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
    """Every installed app's ``<app>.<module>.registry`` (e.g. ``listeners``), in one registry.

    Explicit: an app takes part by defining that module with a ``registry``; nothing registers by
    being imported somewhere else. A (stream, type) claimed by two apps fails here, at start.
    Handlers bound to a running process are built by it, not discovered: the gateway's come from
    ``bots.handlers.gateway_registry(gateway)``.
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


# -- infrastructure failures ---------------------------------------------------------------------
# Driver codes that say the database did not answer, rather than that the statement was wrong.
# SQLite: another connection holds the write lock (BUSY, LOCKED), the file cannot be opened or written.
_SQLITE_OUTAGES = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_FULL")
# PostgreSQL SQLSTATEs: connection exceptions (08), insufficient resources (53: too many connections,
# disk full), the server shutting down, crashed or starting (57P01-57P03), I/O errors (58), a lock not
# available (55P03). A statement timeout (57014) or a deadlock (40P01) stays the handler's own failure.
_POSTGRES_OUTAGES = ("08", "53", "57P01", "57P02", "57P03", "58", "55P03")
_OUTAGE_PROBE_MAX_SECONDS = 2.0
_OUTAGE_NAMES = {"database": "the database", "redis": "Redis"}


def outage_of(exc: BaseException) -> str | None:
    """``"database"`` or ``"redis"`` when ``exc`` means that infrastructure is down, else None (the handler failed).

    By exception class first: only Django's OperationalError and InterfaceError, or a Redis connection
    error (possibly wrapped in a BusError), can be an outage. An OperationalError is one when the
    driver's code says so, when the driver raised it with no code at all (a server reports each of its
    errors with a SQLSTATE, SQLite with a result code: without one it is the client's connection that
    failed, e.g. "server closed the connection unexpectedly"), or when the connection no longer works.
    "no such table" on a working connection stays the handler's own failure.
    """
    if any(isinstance(error, redis.ConnectionError | redis.TimeoutError) for error in (exc, exc.__cause__)):
        return "redis"
    if isinstance(exc, InterfaceError):
        return "database"
    if isinstance(exc, OperationalError):
        cause = exc.__cause__
        sqlite_code = getattr(cause, "sqlite_errorname", None) or ""
        sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None) or ""
        if cause is not None and not sqlite_code and not sqlstate:
            return "database"
        if sqlite_code.startswith(_SQLITE_OUTAGES) or (sqlstate and sqlstate.startswith(_POSTGRES_OUTAGES)):
            return "database"
        if not _database_connected():
            return "database"
    return None


def _database_connected() -> bool:
    try:
        return connection.connection is not None and connection.is_usable()
    except Exception:  # noqa: BLE001 - a connection that cannot even say is not usable
        return False


def _close_database() -> None:
    """Drop this thread's connection (it may be dead); the next query opens a new one."""
    if connection.in_atomic_block:
        return  # a worker stepped inside someone's transaction (a test): theirs to end
    try:
        connection.close()
    except DatabaseError:
        logger.debug("closing a broken database connection failed", exc_info=True)


def database_answers() -> bool:
    """Whether the database would take a handler's write now (cheap; never waits out a busy timeout)."""
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            if connection.vendor != "sqlite" or connection.in_atomic_block:
                cursor.execute("SELECT 1")
                return True
            # SQLite's outage is a write lock held elsewhere (WAL readers still pass): take it and let
            # go at once, with a short busy timeout instead of the connection's ten seconds.
            cursor.execute("PRAGMA busy_timeout")
            (busy_timeout,) = cursor.fetchone()
            cursor.execute("PRAGMA busy_timeout = 100")
            try:
                cursor.execute("BEGIN IMMEDIATE")
                cursor.execute("ROLLBACK")
            finally:
                cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout)}")
        return True
    except DatabaseError:
        _close_database()
        return False


def _redis_answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class _InfrastructureError(Exception):
    """Raised by ``_handle_one`` to ``_handle``: this entry and the rest of its batch wait in hand."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass
class _Outage:
    kind: str  # "database" or "redis"
    since: float
    error: str
    next_probe: float
    backoff: float = 0.5
    logged: bool = False

    def probe_later(self) -> None:
        self.next_probe = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, _OUTAGE_PROBE_MAX_SECONDS)


# -- time limits ----------------------------------------------------------------------------------
class TimeLimitExceeded(BaseException):
    """A handler ran past its registration's ``time_limit``; the delivery counts as failed.

    A BaseException, like KeyboardInterrupt, so that a handler's ``except Exception`` cannot swallow it;
    ``transaction.atomic`` rolls back on it like on any exception.
    """


@dataclass
class StepResult:
    read: int = 0
    processed: int = 0
    failed: int = 0
    dead: int = 0
    reclaimed: int = 0
    lost: int = 0
    skipped: int = 0
    # Entries put back in hand by an outage (handled again when it ends, no delivery counted).
    paused: int = 0

    def add(self, other: StepResult) -> StepResult:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


@dataclass
class _InFlight:
    """Entry ids in hand (being handled, or waiting out an outage), per stream key; the keepalive
    thread refreshes their idle time while no handler is past its time limit (``deadline``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: dict[str, list[str]] = field(default_factory=dict)
    deadline: float | None = None

    def set(self, key: str, ids: list[str]) -> None:
        with self.lock:
            self.ids[key] = ids

    def clear(self, key: str) -> None:
        with self.lock:
            self.ids.pop(key, None)

    def snapshot(self) -> dict[str, list[str]]:
        with self.lock:
            return {key: list(ids) for key, ids in self.ids.items()}

    def overdue(self) -> bool:
        deadline = self.deadline
        return deadline is not None and time.monotonic() > deadline


def _entry_id(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


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
        on_missed: Callable[[str], object] | None = None,
    ) -> None:
        conf = settings.STREAMS
        # Called with a stream's name when this consumer's own per-host group missed entries for good: made
        # again (Redis lost its data) or its unread entries trimmed while nobody read them. The consumer
        # catches up from the truth elsewhere (the gateway: from the database's desired states).
        self.on_missed = on_missed
        self.registry = registry
        self.group, self.consumer = group, consumer
        self.streams = streams or streams_of_group(group)
        for name in self.streams:
            if not stream_config(name).has_group(group):
                raise UnknownStream(f"{name} has no consumer group {group!r}")
        self.service_name = service_name or conf["service_name"]
        self.batch_size = batch_size or conf["batch_size"]
        self.block_ms = conf["block_ms"] if block_ms is None else block_ms
        self.claim_idle_ms = claim_idle_ms or conf["claim_idle_ms"]
        self.retry_delay = (conf["retry_delay_ms"] if retry_delay_ms is None else retry_delay_ms) / 1000
        self.max_deliveries = max_deliveries or conf["max_deliveries"]
        self.client = redis_client()
        self._names = {stream_key(name): name for name in self.streams}
        # Per host group's stream: the newest entry this consumer has read (or its group had, at start).
        self._read_up_to: dict[str, str] = {}
        self._retry_due: dict[str, float] = {}
        # Entries in hand when an outage began, per stream key, with the delivery count each had.
        self._held: dict[str, tuple[list[tuple[str, Any]], dict[str, int]]] = {}
        self._outage: _Outage | None = None
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
        from streams.bus import ensure_groups, ensure_host_group

        ensure_groups(self.streams)
        for name in self.streams:
            if self.group not in stream_config(name).consumer_groups:  # a host's own group
                # Made again after the last entry read, if it is gone: a Redis that lost its data gets
                # new entries (the outbox relays what waited) before this consumer finds out, and a
                # group made at the stream's end would skip them.
                made = ensure_host_group(name, self.group, after=self._read_up_to.get(name, "$"))
                self._read_up_to.setdefault(name, self._last_delivered(name))
                # What was lost for good with Redis's data, or trimmed while nobody read: caught up elsewhere.
                if (made or self._unread_trimmed(name)) and self.on_missed is not None:
                    self.on_missed(name)
        self._start_keepalive()
        if self._held:
            # Back from a Redis outage with entries in hand: step() handles them from memory, since
            # reading them again (XREADGROUP from 0) would count a delivery; the drain follows.
            self._retry_due.update(dict.fromkeys(self._names, 0.0))
            return StepResult()
        return self.drain_pending()

    def _unread_trimmed(self, name: str) -> bool:
        """Entries this group never read were trimmed (MAXLEN) while it was away: its place is before the
        stream's first entry, with entries lost in between (as far as Redis's counts tell; when they cannot,
        the gap itself is the sign, and a needless catch-up costs nothing)."""
        key = stream_key(name)
        try:
            info = self.client.xinfo_stream(key)
        except redis.ResponseError:
            return False  # no such stream yet
        first, length = (info.get("first-entry") or [None])[0], int(info["length"])
        for group in self.client.xinfo_groups(key):
            if group["name"] != self.group or not first:
                continue
            last = group.get("last-delivered-id") or "0-0"
            if _entry_id(last) >= _entry_id(first):
                return False
            lag, read, added = group.get("lag"), group.get("entries-read"), info.get("entries-added")
            if lag is not None and int(lag) > length:
                return True
            if read is not None and added is not None:
                return int(added) - int(read) > length
            return lag is None if last == "0-0" else True  # a group that never read: lost only if uncounted
        return False

    def close(self) -> None:
        self._stopping.set()
        if self._keepalive is not None:
            self._keepalive.join(timeout=5)
        self._hand_back_held()

    def step(self) -> StepResult:
        """One round: reclaim if due, retry own failures if due, then read and handle a batch of new entries.

        While an outage holds entries in hand, a step only probes (at most ``block_ms``) and, once the
        database or Redis answers, handles those entries; nothing new is read, retried or reclaimed.
        """
        result = StepResult()
        if self._held:
            result.add(self._resume())
            if self._held:
                self.totals.add(result)
                return result
        now = time.monotonic()
        if now >= self._next_reclaim:
            result.add(self.reclaim())
            self._next_reclaim = now + self.claim_idle_ms / 2000
        for key, due in list(self._retry_due.items()):
            if due <= now and not self._held:
                del self._retry_due[key]
                result.add(self._read_own_pending(key))
        if not self._held:  # an outage that began in this step pauses the rest of it
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
            if self._held:
                self._retry_due[key] = 0.0  # an outage stopped the drain: it goes on once it ends
                continue
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
            if self._held:
                self._retry_due[key] = 0.0  # the rest of this consumer's pending entries, after the outage
                return result
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
                    if self._held:
                        return result
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
    def _last_delivered(self, name: str) -> str:
        groups = self.client.xinfo_groups(stream_key(name))
        return next((info["last-delivered-id"] for info in groups if info["name"] == self.group), "0-0")

    def _handle(self, key: str, entries: list[tuple[str, Any]], deliveries: dict[str, int] | None) -> StepResult:
        name = self._names[key]
        if name in self._read_up_to and entries:
            self._read_up_to[name] = max(self._read_up_to[name], *(entry_id for entry_id, _ in entries), key=_entry_id)
        result = StepResult(read=len(entries))
        acks: list[str] = []
        lost: list[str] = []
        in_hand: list[tuple[str, Any]] = []  # what an outage leaves to handle later
        down: _InfrastructureError | None = None
        self._inflight.set(key, [entry_id for entry_id, _ in entries])
        try:
            for index, (entry_id, fields) in enumerate(entries):
                if not fields:
                    lost.append(entry_id)  # trimmed by MAXLEN while it was pending
                    continue
                count = 1 if deliveries is None else deliveries.get(entry_id, 1)
                try:
                    outcome = self._handle_one(key, name, entry_id, fields, count)
                except _InfrastructureError as exc:
                    # Pause: this entry and the rest of the batch are not tried against a database that
                    # does not answer (on SQLite each try would wait out the busy timeout).
                    in_hand, down = entries[index:], exc
                    break
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
                    # Back off with each delivery, so a passing trouble is waited out rather than
                    # turned into dead letters.
                    self._retry_due.setdefault(key, time.monotonic() + self.retry_delay * 2 ** (count - 1))
            if acks or lost:
                try:
                    self.client.xack(key, self.group, *acks, *lost)
                except (redis.ConnectionError, redis.TimeoutError):
                    # Handled but not acknowledged: kept in hand too, and acknowledged once Redis is
                    # back (an atomic handler's effect is not repeated; it is skipped).
                    done = set(acks) | set(lost)
                    in_hand = [entry for entry in entries if entry[0] in done] + in_hand
                    raise
        finally:
            if in_hand:
                self._hold(key, in_hand, deliveries)
            else:
                self._inflight.clear(key)
        if down is not None:
            self._outage_begins(down.kind, down.__cause__)
            result.paused = len(in_hand)
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
        except (Exception, TimeLimitExceeded) as exc:  # any handler failure: retried, then dead-lettered
            kind = None if isinstance(exc, TimeLimitExceeded) else outage_of(exc)
            if kind is not None:
                raise _InfrastructureError(kind) from exc
            if isinstance(exc, TimeLimitExceeded):
                _close_database()  # it may have been cut off mid-query
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
            self._call(registration, envelope)
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
            self._call(registration, envelope)
        return True

    def _call(self, registration: Registration, envelope: Envelope) -> None:
        if registration.time_limit is None:
            registration.func(envelope)
            return
        with self._time_limit(registration):
            registration.func(envelope)

    @contextmanager
    def _time_limit(self, registration: Registration) -> Iterator[None]:
        """Fail the handler past its ``time_limit``: SIGALRM interrupts it (sleeps, network waits, loops),
        as Ctrl-C would; where no alarm can (a worker off the main thread, a call that holds on in C), a
        late return fails all the same and the keepalive has already stopped vouching for the entry.

        Raised inside the handler's transaction, so an atomic handler leaves no effect behind. A thread
        with a timeout was the alternative; it cannot be stopped, so every hung handler would keep its
        transaction (on SQLite, the write lock) while its entry ran again. Here only a hang that no
        signal reaches does: its entry goes to another consumer, and ending the stuck process (its
        supervisor's part) frees the transaction.
        """
        limit = float(registration.time_limit or 0)
        started = time.monotonic()
        self._inflight.deadline = started + limit
        alarm = threading.current_thread() is threading.main_thread()
        if alarm:

            def interrupt(signum: int, frame: Any) -> None:
                if self._inflight.deadline is not None:  # not once the handler has returned
                    raise TimeLimitExceeded(f"{_qualname(registration.func)} ran past its time limit of {limit:g} s")

            previous_handler = signal.signal(signal.SIGALRM, interrupt)
            previous_timer, _ = signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            yield
        finally:
            self._inflight.deadline = None
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous_handler)
                if previous_timer:  # someone else's alarm was running: give back what is left of it
                    signal.setitimer(signal.ITIMER_REAL, max(previous_timer - (time.monotonic() - started), 1e-3))
        if time.monotonic() - started > limit:
            raise TimeLimitExceeded(f"{_qualname(registration.func)} returned after its time limit of {limit:g} s")

    # -- outages ---------------------------------------------------------------------------------
    # The entries in hand when the database or Redis stopped answering stay in this process's memory
    # and are handled again from there. Reading them again instead (XREADGROUP from id 0) would add
    # a delivery in Redis for each retry, and an outage would walk them to the dead-letter bound.
    # Their count in Redis stays what it was; if this process dies meanwhile, the next read counts
    # one delivery, as for any consumer that dies; a clean stop hands them back uncounted.
    def _hold(self, key: str, entries: list[tuple[str, Any]], deliveries: dict[str, int] | None) -> None:
        held, counts = self._held.get(key, ([], {}))
        for entry_id, fields in entries:
            held.append((entry_id, fields))
            counts[entry_id] = 1 if deliveries is None else deliveries.get(entry_id, 1)
        self._held[key] = (held, counts)
        self._inflight.set(key, [entry_id for entry_id, _ in held])  # kept alive: nobody else reclaims them

    def _outage_begins(self, kind: str, error: BaseException | None) -> None:
        if kind == "database":
            _close_database()
        now = time.monotonic()
        if self._outage is None:
            # First probe at once: a connection the server dropped is replaced without a pause, and
            # without a warning; an outage is announced when it outlasts that (a probe fails, or the
            # entries fail again).
            self._outage = _Outage(kind=kind, since=now, error=repr(error), next_probe=now)
        else:
            self._outage.kind = kind
            self._announce(self._outage)
            self._outage.probe_later()

    def _announce(self, outage: _Outage) -> None:
        if not outage.logged:
            outage.logged = True
            held = sum(len(entries) for entries, _ in self._held.values())
            logger.warning("%s: %s does not answer (%s); consumption paused, %d entries in hand, no delivery "
                           "counted", self.consumer, _OUTAGE_NAMES[outage.kind], outage.error, held)  # fmt: skip

    def _resume(self) -> StepResult:
        """Once the database or Redis answers, handle the entries in hand; until then wait for the next probe."""
        result, outage = StepResult(), self._outage
        if outage is not None:
            wait = outage.next_probe - time.monotonic()
            if wait > 0:
                self._stopping.wait(min(wait, self.block_ms / 1000))
                return result
            answers = database_answers() if outage.kind == "database" else _redis_answers(self.client)
            if not answers:
                self._announce(outage)
                outage.probe_later()
                return result
        for key in list(self._held):
            entries, counts = self._held.pop(key)
            result.add(self._handle(key, entries, deliveries=counts))
            if self._held:
                return result  # down again: the same outage goes on
        if outage is not None:
            self._outage = None
            if outage.logged:
                logger.warning("%s: %s answers again after %.1f s; consumption resumed",
                               self.consumer, _OUTAGE_NAMES[outage.kind], time.monotonic() - outage.since)  # fmt: skip
            else:
                logger.info("%s: lost its %s connection (%s); reconnected", self.consumer, outage.kind, outage.error)
        return result

    def _hand_back_held(self) -> None:
        """Stopping during an outage: reset each entry's delivery count in Redis to what it was before
        it was read (XCLAIM RETRYCOUNT), so that the next run's read of it counts no outage."""
        for key, (entries, counts) in self._held.items():
            by_count: dict[int, list[str]] = {}
            for entry_id, _ in entries:
                by_count.setdefault(counts.get(entry_id, 1), []).append(entry_id)
            for count, ids in by_count.items():
                try:
                    self.client.xclaim(key, self.group, self.consumer, 0, ids, retrycount=count - 1, justid=True)
                except redis.RedisError:
                    logger.warning("could not hand back %d entries of %s", len(ids), self._names.get(key))
        self._held.clear()

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
        except redis.RedisError:
            logger.exception("could not count lost entries of %s", name)
        if name != SYSTEM_EVENTS:
            announce(SYSTEM_EVENTS, type="stream_entries_lost", payload={
                "stream": name, "group": self.group, "consumer": self.consumer,
                "count": len(ids), "message_ids": ids[:20],
            })  # fmt: skip

    # -- keepalive -------------------------------------------------------------------------------
    def _start_keepalive(self) -> None:
        if self._keepalive is not None:
            return
        self._keepalive = threading.Thread(target=self._keep_alive, name=f"keepalive-{self.consumer}", daemon=True)
        self._keepalive.start()

    def _keep_alive(self) -> None:
        interval = self.claim_idle_ms / 3000
        while not self._stopping.wait(interval):
            if self._inflight.overdue():
                # A handler past its time limit is hung, not slow: stop vouching for this consumer,
                # so that its entries go idle and another consumer reclaims them.
                continue
            for key, ids in self._inflight.snapshot().items():
                try:
                    # JUSTID: resets the idle time without counting a delivery.
                    self.client.xclaim(key, self.group, self.consumer, 0, ids, justid=True)
                except redis.RedisError:
                    logger.warning("keepalive of %d entries on %s failed", len(ids), self._names.get(key))


def _entry_id(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


def describe_entry(fields: dict[str, str]) -> dict[str, Any]:
    """An entry's fields for display, with the payload decoded when it is JSON."""
    shown: dict[str, Any] = dict(fields)
    if "payload" in shown:
        try:
            shown["payload"] = json.loads(shown["payload"])
        except ValueError:
            pass
    return shown

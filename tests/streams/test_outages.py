"""Infrastructure failures are not handler failures: a database or Redis outage pauses the worker, counts no delivery.

The fault tests run the real ``run_listeners`` (the listeners of every app, from ``discover``) on the
real ``trading:mgmt:status`` stream, with real Bot rows, while the gateway's kind of status reports
keep arriving: an exclusive lock on the SQLite file, or every PostgreSQL connection of the listeners
terminated again and again, whichever database the suite runs on.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import cycle

import pytest
import redis
from django.db import DatabaseError, connection

from bots.commands import BotStatus
from bots.models import Bot
from multibot.heartbeats import heartbeat_list
from multibot.redis_client import redis_client
from streams.bus import Envelope, ensure_host_group, publish, stream_key
from streams.catalog import DATA_COMMANDS, LISTENERS, SYSTEM_EVENTS, TRADING_COMMANDS, TRADING_STATUS, trading_group
from streams.models import ProcessedEnvelope
from streams.worker import HandlerRegistry, StreamWorker, outage_of
from tests.factories import make_bot, make_user
from tests.support.processes import ROOT, database_url, server_env, wait_for

STATUS = TRADING_STATUS
DATA = DATA_COMMANDS
STATUSES = cycle([BotStatus.STARTING, BotStatus.RUNNING, BotStatus.STOPPING, BotStatus.STOPPED])


def on_sqlite() -> bool:
    return connection.vendor == "sqlite"


def dead_letters(stream: str) -> list[tuple[str, dict[str, str]]]:
    return redis_client().xrange(stream_key(f"{stream}:dead"))


def pending_deliveries(stream: str, group: str) -> list[int]:
    items = redis_client().xpending_range(stream_key(stream), group, "-", "+", 1000)
    return [int(item["times_delivered"]) for item in items]


# -- in this process -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_handlers_own_database_error_still_counts_and_is_dead_lettered(registry, worker):
    def broken(envelope: Envelope) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")  # OperationalError on SQLite, ProgrammingError on PostgreSQL

    registry.handles(DATA, "work")(broken)
    publish(DATA, type="work", payload={})

    result = worker.step()

    assert result.dead == 1 and result.paused == 0
    [(_, fields)] = dead_letters(DATA)
    assert fields["dead_letter_reason"] in {"operational_error", "programming_error"}


@pytest.mark.django_db
def test_a_real_no_such_table_error_is_not_taken_for_an_outage():
    with pytest.raises(DatabaseError) as raised, connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")

    assert outage_of(raised.value) is None


@pytest.mark.django_db
def test_a_handler_that_loses_redis_is_paused_and_done_once_redis_is_back_without_a_delivery_counted(
    registry, worker, redis_server
):
    # given: a handler that publishes, and Redis going away under its first try
    seen: list[int] = []

    def announce(envelope: Envelope) -> None:
        seen.append(envelope.deliveries)
        if len(seen) == 1:
            redis_server.stop()
        publish(SYSTEM_EVENTS, type="import_done", payload={"request_id": envelope.request_id})

    registry.handles(DATA, "work", atomic=False)(announce)
    publish(DATA, type="work", payload={}, request_id="req-announce")
    # when: the worker steps through the outage
    first = worker.step()
    try:
        while_down = [worker.step() for _ in range(3)]
    finally:
        redis_server.start()
    total = first
    for _ in range(50):
        total.add(worker.step())
        if total.processed:
            break
        time.sleep(0.1)
    # then: held in hand, tried again only once Redis answered, with the same delivery count
    assert first.paused == 1 and first.failed == 0
    assert all(step.read == 0 for step in while_down)
    assert total.processed == 1 and total.dead == 0
    assert seen == [1, 1]
    assert [fields["type"] for _, fields in redis_client().xrange(stream_key(SYSTEM_EVENTS))] == ["import_done"]
    assert pending_deliveries(DATA, "data_consumers") == []


@pytest.mark.django_db
def test_a_worker_stopped_during_an_outage_hands_its_entries_back_uncounted(registry, worker, redis_server):
    # given: an entry in hand because Redis went away under its handler
    seen: list[int] = []

    def announce(envelope: Envelope) -> None:
        seen.append(envelope.deliveries)
        if len(seen) == 1:
            redis_server.stop()
        publish(SYSTEM_EVENTS, type="import_done", payload={})

    registry.handles(DATA, "work", atomic=False)(announce)
    publish(DATA, type="work", payload={})
    try:
        assert worker.step().paused == 1
    finally:
        redis_server.start()
    # when: it stops before resuming, and comes back under the same name
    worker.close()
    assert pending_deliveries(DATA, "data_consumers") == [0]
    again = StreamWorker(registry=registry, group="data_consumers", consumer="w1", block_ms=0, max_deliveries=1)
    try:
        drained = again.prepare()
    finally:
        again.close()
    # then: its first delivery still
    assert drained.processed == 1 and drained.dead == 0
    assert seen == [1, 1]


@pytest.mark.django_db
def test_a_host_group_lost_with_redis_data_is_made_again_after_what_its_host_read_so_no_command_is_skipped():
    # given: host alpha's consumer, which has read one command
    registry, seen = HandlerRegistry(), []
    registry.handles(TRADING_COMMANDS, "bot_start", atomic=False)(lambda envelope: seen.append(envelope.payload))
    ensure_host_group(TRADING_COMMANDS, trading_group("alpha"))
    alpha = StreamWorker(registry=registry, group=trading_group("alpha"), consumer="gateway@alpha", block_ms=0)
    alpha.prepare()
    publish(TRADING_COMMANDS, type="bot_start", payload={"bot_id": 1})
    assert alpha.step().processed == 1
    # when: Redis loses its data (a restart without persistence), and a command is published (the outbox
    # relays what waited) before the consumer finds its group gone and makes it again, as run() does
    redis_client().flushdb()
    time.sleep(0.002)  # a restart takes longer than the millisecond that entry ids count in
    publish(TRADING_COMMANDS, type="bot_start", payload={"bot_id": 2})
    with pytest.raises(redis.ResponseError, match="NOGROUP"):
        alpha.step()
    try:
        alpha.prepare()
        alpha.step()
    finally:
        alpha.close()

    # then: the command published meanwhile is delivered, not skipped by a group made at the stream's end
    assert seen == [{"bot_id": 1}, {"bot_id": 2}]


# -- a real fault under run_listeners ------------------------------------------------------------


def start_listeners(consumer: str) -> subprocess.Popen[str]:
    env = server_env(
        DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url(),
        # A dead-letter bound of one: a single delivery counted against a report would dead-letter
        # it, so zero dead letters means the fault counted none.
        MULTIBOT_STREAM_MAX_DELIVERIES="1",
    )  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_listeners", "--consumer", consumer],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def stop(listeners: subprocess.Popen[str]) -> str:
    listeners.send_signal(signal.SIGTERM)
    out, _ = listeners.communicate(timeout=30)
    print(out)  # shown by pytest when the test fails
    assert listeners.returncode == 0, out
    return out


class Reports:
    """Status reports as the gateway sends them, for a few bots in turn; remembers the last per bot."""

    def __init__(self, bots: list[Bot]) -> None:
        self.bots = cycle(bots)
        self.request_ids: list[str] = []
        self.last: dict[int, dict] = {}

    def send(self) -> None:
        bot = next(self.bots)
        report = {"bot_id": bot.pk, "status": next(STATUSES), "at": time.time(), "pid": None, "pid_create_time": None,
                  "started_at": None, "restart_count": 0, "detail": "", "host": "test"}  # fmt: skip
        request_id = f"status-{len(self.request_ids)}"
        publish(STATUS, type="bot_status", payload=report, request_id=request_id, producer="trading_gateway")
        self.request_ids.append(request_id)
        self.last[bot.pk] = report

    def applied(self) -> int:
        return ProcessedEnvelope.objects.filter(group=LISTENERS, request_id__in=self.request_ids).count()

    def assert_all_applied(self) -> None:
        wait_for(lambda: self.applied() == len(self.request_ids), 60, "every report to be applied")
        for bot_id, report in self.last.items():
            bot = Bot.objects.get(pk=bot_id)
            assert (bot.status, bot.status_at) == (report["status"], report["at"])
        assert pending_deliveries(STATUS, LISTENERS) == []
        assert dead_letters(STATUS) == []


@pytest.fixture
def reports(committed_db) -> Reports:
    owner = make_user()
    return Reports([make_bot(owner=owner) for _ in range(3)])


def listening(consumer: str, reports: Reports) -> subprocess.Popen[str]:
    listeners = start_listeners(consumer)
    wait_for(lambda: heartbeat_list(component="listeners"), 30, "a listeners heartbeat")
    reports.send()
    wait_for(lambda: reports.applied() == 1, 15, "the first report to be applied")
    return listeners


# Writers on SQLite wait out `PRAGMA busy_timeout=10000` (the init command's; it overrides the 20 s
# connect timeout), then raise "database is locked"; WAL readers are not blocked. The lock outlasts
# that wait, so at least one report's handler fails on it.
SQLITE_LOCK_SECONDS = 15


@pytest.mark.slow
def test_an_exclusive_lock_on_the_sqlite_file_pauses_the_listeners_and_every_report_is_applied_after(reports):
    if not on_sqlite():
        pytest.skip("the SQLite variant of the database fault")
    listeners = listening("listeners-lock", reports)
    try:
        # given: another connection holds the database file exclusively
        holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None, timeout=0)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            # when: reports keep arriving, four a second
            until = time.monotonic() + SQLITE_LOCK_SECONDS
            while time.monotonic() < until:
                reports.send()
                time.sleep(0.25)
            # then (still locked): the report in hand is pending, delivered once, never counted again
            in_hand = pending_deliveries(STATUS, LISTENERS)
            assert in_hand and set(in_hand) == {1}
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        # and once it clears: every report applied, none dead-lettered
        reports.assert_all_applied()
    finally:
        out = stop(listeners)
    assert len(reports.request_ids) > 50
    assert out.count("the database does not answer") == 1, out
    assert out.count("the database answers again") == 1, out
    assert "Traceback" not in out


TERMINATE_OTHERS = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
)


@contextmanager
def refusing_connections() -> Iterator[None]:
    """The test database refuses new connections meanwhile (set from the maintenance database)."""
    import psycopg

    db = connection.settings_dict
    name = connection.ops.quote_name(db["NAME"])
    server = {"host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"]}
    with psycopg.connect(**server, password=db["PASSWORD"] or None, dbname="postgres", autocommit=True) as maintenance:
        maintenance.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
        try:
            yield
        finally:
            maintenance.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")


@pytest.mark.slow
def test_terminating_every_postgresql_connection_of_the_listeners_loses_no_report(reports):
    if on_sqlite():
        pytest.skip("the PostgreSQL variant of the database fault")
    listeners = listening("listeners-terminated", reports)
    terminated = 0
    try:
        with connection.cursor() as cursor:

            def terminate_for(seconds: float) -> None:
                nonlocal terminated
                until = time.monotonic() + seconds
                while time.monotonic() < until:
                    reports.send()
                    cursor.execute(TERMINATE_OTHERS)
                    terminated += cursor.fetchone()[0]
                    time.sleep(0.2)

            # when: for 12 s every connection but ours is terminated five times a second, reports flowing
            terminate_for(12)
            # and for 8 s more the database refuses new connections as well (a server restarting)
            with refusing_connections():
                terminate_for(8)
        # then
        reports.assert_all_applied()
    finally:
        out = stop(listeners)
    assert terminated >= 20
    assert out.count("reconnected") >= 1, out  # the dropped connections were replaced without a pause
    assert out.count("the database does not answer") >= 1, out  # the refusal paused the listeners
    assert out.count("the database does not answer") == out.count("the database answers again"), out
    assert "Traceback" not in out

"""The consumer-group worker with consumer processes that really die (SIGKILL), on a real Redis."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audit.models import AuditLog
from multibot.redis_client import redis_client, redis_key
from streams.bus import ensure_groups, publish, stream_key
from streams.catalog import DATA_COMMANDS, SYSTEM_EVENTS
from streams.health import record_unread_losses
from tests.factories import client_for
from tests.support.processes import ROOT, database_url, server_env, wait_for

STREAM = DATA_COMMANDS
GROUP = "data_consumers"
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("committed_db")]
# Redis's own part (pending entries, reclaim, keep-alive, dead letters, trimming) is the same on any database:
# those tests run on the embedded defaults only; the ones whose effect is once by a transaction run on both.
redis_mechanics = pytest.mark.embedded_only


def start_consumer(*args: str) -> subprocess.Popen[str]:
    env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url())
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.stream_process", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish(process: subprocess.Popen[str], timeout: float = 60) -> dict[str, int]:
    """Wait for a consumer's --exit-after and return the totals it printed."""
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"consumer exited {process.returncode}"
    return json.loads(out.strip().splitlines()[-1])


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert process.returncode == -signal.SIGKILL


def effects(request_id: str | None = None) -> list[AuditLog]:
    rows = AuditLog.objects.filter(action="test_effect").order_by("id")
    return [row for row in rows if request_id is None or row.details["request_id"] == request_id]


def pending() -> int:
    return int(redis_client().xpending(stream_key(STREAM), GROUP)["pending"])


def owners() -> list[str]:
    return [item["consumer"] for item in redis_client().xpending_range(stream_key(STREAM), GROUP, "-", "+", 100)]


def work(seq: int = 0, *, special: bool = False, request_id: str | None = None, sleep: float = 0) -> None:
    publish(STREAM, type="work", payload={"seq": seq, "special": special, "sleep": sleep}, request_id=request_id)


@pytest.fixture(autouse=True)
def _groups() -> None:
    ensure_groups([STREAM])


def test_an_entry_whose_consumer_died_before_acking_is_reclaimed_and_its_effect_happens_once():
    # given: consumer A commits the effect and is SIGKILLed before it can acknowledge
    work(1, special=True, request_id="req-once")
    first = start_consumer("--mode", "kill_after_commit", "--consumer", "a", "--claim-idle-ms", "1000")
    first.wait(30)
    assert first.returncode == -signal.SIGKILL
    assert pending() == 1
    assert len(effects("req-once")) == 1
    # when: consumer B reclaims the idle entry
    second = start_consumer("--mode", "effect", "--consumer", "b", "--claim-idle-ms", "1000", "--exit-after", "4")
    totals = finish(second)
    # then: acknowledged, and the effect was not repeated
    assert totals["reclaimed"] == 1
    assert totals["skipped"] == 1
    assert pending() == 0
    assert len(effects("req-once")) == 1


def test_an_entry_whose_consumer_was_killed_mid_handler_is_done_once_by_another(tmp_path):
    marker = tmp_path / "hang"
    work(1, request_id="req-hang")
    hanging = start_consumer("--mode", "hang", "--consumer", "a", "--claim-idle-ms", "1000", "--marker", str(marker))
    wait_for(lambda: Path(f"{marker}.started").exists(), 30, "consumer A to start handling")
    kill(hanging)
    assert effects("req-hang") == []

    totals = finish(start_consumer("--consumer", "b", "--claim-idle-ms", "1000", "--exit-after", "4"))

    assert totals["reclaimed"] == 1 and totals["processed"] == 1
    assert [row.details["consumer"] for row in effects("req-hang")] == ["b"]
    assert pending() == 0


@redis_mechanics
def test_a_restarted_consumer_finishes_its_own_pending_entries_before_new_ones(tmp_path):
    # given: c1 took entry 1 and was killed while handling it
    marker = tmp_path / "c1"
    work(1, request_id="req-first")
    hanging = start_consumer("--mode", "hang", "--consumer", "c1", "--marker", str(marker))
    wait_for(lambda: Path(f"{marker}.started").exists(), 30, "c1 to start handling")
    kill(hanging)
    work(2, request_id="req-second")
    # when: c1 comes back under the same name (no reclaim: the idle bound is a minute)
    totals = finish(start_consumer("--consumer", "c1", "--exit-after", "3"))
    # then: its own pending entry first, then the new one
    assert totals["reclaimed"] == 0
    assert [row.details["seq"] for row in effects()] == [1, 2]
    assert pending() == 0


@redis_mechanics
def test_a_poison_entry_is_dead_lettered_after_exactly_n_deliveries():
    work(7, special=True, request_id="req-poison")
    totals = finish(start_consumer("--mode", "raise", "--max-deliveries", "5", "--exit-after", "4"))

    dead = redis_client().xrange(stream_key(f"{STREAM}:dead"))
    assert totals["dead"] == 1 and totals["failed"] == 4
    assert len(dead) == 1
    fields = dead[0][1]
    assert fields["dead_letter_reason"] == "value_error"
    assert fields["final_retry_count"] == "5"
    assert fields["original_stream"] == STREAM
    assert fields["service_name"] == "test_consumer"
    assert fields["request_id"] == "req-poison"
    assert float(fields["failed_at"]) <= time.time()
    original = fields["original_message_id"]
    assert redis_client().xrange(stream_key(STREAM), original, original)
    assert pending() == 0


@redis_mechanics
def test_an_entry_that_kills_its_consumer_every_time_is_dead_lettered_not_looped():
    work(9, special=True, request_id="req-crash")
    for _ in range(3):
        crashing = start_consumer("--mode", "crash", "--max-deliveries", "3")
        crashing.wait(30)
        assert crashing.returncode == -signal.SIGKILL

    totals = finish(start_consumer("--mode", "crash", "--max-deliveries", "3", "--exit-after", "3"))

    dead = redis_client().xrange(stream_key(f"{STREAM}:dead"))
    assert totals["dead"] == 1
    assert [fields["dead_letter_reason"] for _, fields in dead] == ["max_deliveries_exceeded"]
    assert dead[0][1]["final_retry_count"] == "3"
    assert pending() == 0


@redis_mechanics
def test_a_slow_but_healthy_job_is_not_stolen():
    # given: A handles one entry for 4 s while its entries would count as idle after 1 s
    work(1, special=True, request_id="req-slow")
    slow = start_consumer("--mode", "slow", "--slow-seconds", "4", "--consumer", "a", "--claim-idle-ms", "1000",
                          "--exit-after", "7")  # fmt: skip
    time.sleep(1.0)
    # when: B runs alongside, reclaiming anything idle past 1 s
    thief = start_consumer("--consumer", "b", "--claim-idle-ms", "1000", "--exit-after", "6")
    a_totals, b_totals = finish(slow), finish(thief)
    # then
    assert a_totals["processed"] == 1
    assert b_totals["reclaimed"] == 0 and b_totals["processed"] == 0
    assert [row.details["consumer"] for row in effects("req-slow")] == ["a"]
    assert pending() == 0


@redis_mechanics
def test_a_handler_past_its_time_limit_fails_its_delivery_and_the_consumer_moves_on():
    # given: an entry whose handler hangs, one slow but within the 1 s limit, one quick
    work(1, special=True, request_id="req-hung")
    work(2, sleep=0.5, request_id="req-slow")
    work(3, request_id="req-quick")
    # when: a consumer whose handler has a 1 s limit and a dead-letter bound of 2
    totals = finish(start_consumer("--mode", "slow", "--slow-seconds", "3600", "--time-limit", "1",
                                   "--max-deliveries", "2", "--exit-after", "6"))  # fmt: skip
    # then: the hung one failed twice and is dead-lettered for it; the others were done
    assert totals["failed"] == 1 and totals["dead"] == 1 and totals["processed"] == 2
    [(_, fields)] = redis_client().xrange(stream_key(f"{STREAM}:dead"))
    assert fields["dead_letter_reason"] == "time_limit_exceeded"
    assert fields["request_id"] == "req-hung"
    assert fields["final_retry_count"] == "2"
    assert "time limit of 1 s" in fields["error"]
    assert effects("req-hung") == []
    assert [row.details["seq"] for row in effects()] == [2, 3]
    assert pending() == 0


def test_a_hung_handler_the_alarm_cannot_reach_is_no_longer_kept_alive_so_another_consumer_takes_its_entry(tmp_path):
    # given: A is stuck past its 1 s limit in a handler deaf to the alarm (compare the slow but
    # healthy job above, which has no limit and keeps its entry)
    marker = tmp_path / "a"
    work(1, special=True, request_id="req-stuck")
    stuck = start_consumer("--mode", "stuck", "--slow-seconds", "60", "--time-limit", "1", "--consumer", "a",
                           "--claim-idle-ms", "1000", "--marker", str(marker))  # fmt: skip
    try:
        wait_for(lambda: Path(f"{marker}.started").exists(), 30, "A to start handling")
        # when: B reclaims anything idle past 1 s
        thief = start_consumer("--consumer", "b", "--claim-idle-ms", "1000", "--exit-after", "8")
        wait_for(lambda: owners() == ["b"], 10, "B to take the entry over while A is still stuck")
    finally:
        # A still holds its transaction (on SQLite, the write lock): ending it is its supervisor's part.
        kill(stuck)
    totals = finish(thief)
    # then
    assert totals["reclaimed"] == 1 and totals["processed"] == 1
    assert [row.details["consumer"] for row in effects("req-stuck")] == ["b"]
    assert pending() == 0


@redis_mechanics
def test_pending_entries_trimmed_by_a_burst_are_reported_as_lost(tmp_path, settings, superuser):
    # given: c1 read 10 entries and died before acknowledging them
    settings.STREAMS = {**settings.STREAMS, "maxlen": {STREAM: 50}}
    marker = tmp_path / "c1"
    for seq in range(10):
        work(seq)
    hanging = start_consumer("--mode", "hang", "--consumer", "c1", "--batch-size", "10", "--marker", str(marker))
    wait_for(lambda: Path(f"{marker}.started").exists(), 30, "c1 to read the batch")
    kill(hanging)
    assert pending() == 10
    # when: a burst four times the maxlen trims them (and 150 entries nobody read)
    for seq in range(200):
        work(100 + seq)
    unread_lost = record_unread_losses()
    totals = finish(start_consumer("--consumer", "c1", "--exit-after", "4"))
    # then: the ten are counted as lost, announced, and no longer pending
    assert totals["lost"] == 10
    assert totals["processed"] == 50
    assert pending() == 0
    assert redis_client().hgetall(redis_key("streams", "lost")) == {f"{STREAM}|{GROUP}": "10"}
    events = [json.loads(fields["payload"]) for _, fields in redis_client().xrange(stream_key(SYSTEM_EVENTS))]
    announced = {(event.get("kind", "pending"), event["count"]) for event in events if event.get("stream") == STREAM}
    assert announced == {("pending", 10), ("unread", 150)}
    health = client_for(superuser).get(f"/api/v1/streams/{STREAM}/health").json()
    assert health["groups"][GROUP]["lost_pending"] == 10
    assert unread_lost == 150
    assert health["groups"][GROUP]["lost_unread"] == 150
    assert health["errors"][GROUP]["lost_entries"] == 160

"""A registration's time limit, in this process: a hung handler is failed and leaves no effect, a slow one is not."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from django.db import connection

from audit.models import AuditLog
from audit.services import Actor, audit_record
from multibot.redis_client import redis_client
from streams.bus import Envelope, publish, stream_key
from streams.catalog import DATA_COMMANDS
from streams.worker import HandlerRegistry, StepResult

STREAM = DATA_COMMANDS


def effect_then_sleep(seconds: float):
    def handler(envelope: Envelope) -> None:
        audit_record(actor=Actor.system(), action="test_effect", details={"request_id": envelope.request_id})
        time.sleep(seconds)

    return handler


def dead_letter_reasons() -> list[str]:
    return [fields["dead_letter_reason"] for _, fields in redis_client().xrange(stream_key(f"{STREAM}:dead"))]


@pytest.mark.django_db
def test_a_handler_past_its_time_limit_is_interrupted_and_its_effect_rolled_back(registry, worker):
    registry.handles(STREAM, "work", time_limit=0.3)(effect_then_sleep(30))
    publish(STREAM, type="work", payload={})

    started = time.monotonic()
    result = worker.step()

    assert time.monotonic() - started < 5  # interrupted, not waited out
    assert result.dead == 1
    assert dead_letter_reasons() == ["time_limit_exceeded"]
    assert not AuditLog.objects.filter(action="test_effect").exists()


@pytest.mark.django_db
def test_a_handler_within_its_limit_is_untouched_and_the_alarm_is_put_back(registry, worker):
    registry.handles(STREAM, "work", time_limit=5)(effect_then_sleep(0.05))
    publish(STREAM, type="work", payload={})
    previous = signal.getsignal(signal.SIGALRM)

    result = worker.step()

    assert result.processed == 1 and result.failed == result.dead == 0
    assert AuditLog.objects.filter(action="test_effect").count() == 1
    assert signal.getsignal(signal.SIGALRM) is previous
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.usefixtures("committed_db")
def test_off_the_main_thread_a_handler_that_returns_past_its_limit_is_failed_all_the_same(registry, worker):
    # given: no alarm can interrupt a worker off the main thread; its handler overruns 0.2 s by 0.4 s
    registry.handles(STREAM, "work", time_limit=0.2)(effect_then_sleep(0.6))
    publish(STREAM, type="work", payload={})
    results: list[StepResult] = []

    def run() -> None:
        try:
            results.append(worker.step())
        finally:
            connection.close()

    # when
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    # then: failed when it returned, inside its transaction, so its effect is gone too
    assert results[0].dead == 1
    assert dead_letter_reasons() == ["time_limit_exceeded"]
    assert not AuditLog.objects.filter(action="test_effect").exists()


@pytest.mark.parametrize("limit", [0, -1])
def test_a_time_limit_must_be_a_positive_number_of_seconds(limit):
    with pytest.raises(ValueError, match="time_limit"):
        HandlerRegistry().handles(STREAM, "work", time_limit=limit)

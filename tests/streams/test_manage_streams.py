"""manage.py streams status: the bus's figures as streams.health reads them from the real Redis."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from multibot.redis_client import redis_client
from streams import health
from streams.bus import ensure_host_group, envelope, publish_many, stream_key
from streams.catalog import CATALOG, DATA_COMMANDS, TRADING_COMMANDS, trading_group

TRADING_CONSUMERS = trading_group("alpha")  # host alpha's gateway's group

pytestmark = pytest.mark.django_db


def status(*args: str) -> str:
    out = io.StringIO()
    call_command("streams", "status", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def busy_bus() -> list[str]:
    """Ten trading commands, four of them read and not acknowledged; two dead letters of data commands."""
    ensure_host_group(TRADING_COMMANDS, TRADING_CONSUMERS)
    ids = publish_many(TRADING_COMMANDS, [envelope(type="bot_start", payload={"bot_id": n}) for n in range(10)])
    redis_client().xreadgroup(TRADING_CONSUMERS, "c1", {stream_key(TRADING_COMMANDS): ">"}, count=4)
    for reason in ("value_error", "key_error"):
        redis_client().xadd(stream_key(f"{DATA_COMMANDS}:dead"), {"dead_letter_reason": reason, "failed_at": "1"})
    return ids


def test_status_reports_length_lag_pending_and_dead_letters_as_the_health_api_does(busy_bus):
    # when
    report = json.loads(status("--json"))

    # then: each stream, read from Redis
    assert list(report["streams"]) == list(CATALOG)
    trading = report["streams"][TRADING_COMMANDS]
    assert trading["length"] == 10
    group = trading["groups"][TRADING_CONSUMERS]
    assert (group["lag"], group["pending"], group["consumers"]) == (6, 4, 1)
    assert report["streams"][DATA_COMMANDS]["dlq"]["total_messages"] == 2
    assert report["system_health"]["total_dlq_messages"] == 2
    assert report["outbox"] == {"waiting": 0, "oldest": None}
    # the same figures as streams.health computes for the API
    expected = health.bus_health(sample=False)
    assert report["system_health"] == expected["system_health"]
    assert {name: s["groups"] for name, s in report["streams"].items()} == {
        name: s["groups"] for name, s in expected["streams"].items()}  # fmt: skip


def test_status_reads_the_bus_without_writing_to_it(busy_bus):
    keys = set(redis_client().keys("*"))

    status()

    assert set(redis_client().keys("*")) == keys


def test_status_as_a_table_names_each_stream_and_group(busy_bus):
    lines = status().splitlines()

    assert lines[0].split() == ["STREAM", "LENGTH", "DEAD_LETTERS", "GROUP", "CONSUMERS", "LAG", "PENDING"]
    assert [TRADING_COMMANDS, "10/10000", "0", TRADING_CONSUMERS, "1", "6", "4"] in [line.split() for line in lines]
    assert [DATA_COMMANDS, "0/10000", "2", "-", "-", "-", "-"] in [line.split() for line in lines]
    assert any(line.strip() == f"- {DATA_COMMANDS}: 2 dead letters" for line in lines)
    assert any(line.startswith("degraded: 2 dead letter(s), total lag 6") for line in lines)  # no listeners run


def test_status_is_an_error_when_redis_does_not_answer(settings):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        settings.REDIS_URL = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"

        with pytest.raises(CommandError, match="does not answer"):
            status()

"""/api/v1/streams/ and /api/v1/health/streams against the real Redis: figures, dead letters, replay, purge."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from audit.models import AuditLog
from audit.services import Actor
from multibot.heartbeats import heartbeat_publish
from multibot.redis_client import redis_client
from streams import health
from streams.bus import Envelope, ensure_groups, ensure_host_group, envelope, publish, publish_many, stream_key
from streams.catalog import CATALOG, DATA_COMMANDS, TRADING_COMMANDS, trading_group
from streams.worker import HandlerRegistry, StepResult, StreamWorker

STREAMS = "/api/v1/streams/"
DATA = DATA_COMMANDS
DEAD = f"{DATA}:dead"
TRADING = TRADING_COMMANDS
ALPHA = trading_group("alpha")  # the group in which host alpha's gateway reads its commands
# DESIGN.md section 4: the twelve streams, in its order, and the group that reads each.
DESIGN_GROUPS = {
    "mgmt:trading:commands": "trading_consumers@<host>",
    "trading:mgmt:status": "mgmt_listeners",
    "mgmt:backtesting:commands": "backtesting_consumers",
    "backtesting:mgmt:results": "mgmt_listeners",
    "mgmt:hyperopt:commands": "hyperopt_consumers",
    "hyperopt:mgmt:results": "mgmt_listeners",
    "mgmt:freqai:commands": "freqai_consumers",
    "freqai:mgmt:status": "mgmt_listeners",
    "mgmt:data:commands": "data_consumers",
    "data:mgmt:status": "mgmt_listeners",
    "system:events": "mgmt_listeners",
    "audit:events": "mgmt_listeners",
}


def url(name: str, tail: str) -> str:
    return f"{STREAMS}{name}/{tail}"


def dead_letters() -> list[tuple[str, dict[str, str]]]:
    return redis_client().xrange(stream_key(DEAD))


def pending_count(name: str, group: str) -> int:
    return int(redis_client().xpending(stream_key(name), group)["pending"])


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def registry() -> HandlerRegistry:
    """The handlers of one test's workers: a registry of its own, so none leaks into another test."""
    return HandlerRegistry()


@pytest.fixture
def register(registry: HandlerRegistry) -> Callable[..., None]:
    def _register(stream: str, type: str, func: Callable[[Envelope], None], *, atomic: bool = True) -> None:
        registry.handles(stream, type, atomic=atomic)(func)

    return _register


@pytest.fixture
def data_worker(registry: HandlerRegistry) -> Iterator[StreamWorker]:
    worker = StreamWorker(
        registry=registry, group="data_consumers", consumer="w1", service_name="data_worker",
        block_ms=0, retry_delay_ms=0, max_deliveries=3,
    )  # fmt: skip
    worker.prepare()
    yield worker
    worker.close()


def step_until(worker: StreamWorker, done: Callable[[StepResult], bool], attempts: int = 10) -> StepResult:
    total = StepResult()
    for _ in range(attempts):
        total.add(worker.step())
        if done(total):
            return total
    raise AssertionError(f"worker did not get there in {attempts} steps: {total}")


@pytest.fixture
def dead_letter(register, data_worker) -> dict[str, Any]:
    """One command on mgmt:data:commands whose handler always fails, dead-lettered by the real worker."""
    calls: list[Envelope] = []
    # A test that "fixes the cause" sets this; until then every delivery fails.
    fixed: list[Callable[[Envelope], None]] = []

    def boom(item: Envelope) -> None:
        if fixed:
            fixed[0](item)
            return
        calls.append(item)
        raise ValueError("exchange refused the import")

    register(DATA, "boom", boom)
    original = envelope(type="boom", payload={"pair": "BTC/USDT", "days": 30}, request_id="import-42")
    [entry_id] = publish_many(DATA, [original])
    result = step_until(data_worker, lambda total: total.dead == 1)
    [(dead_id, fields)] = dead_letters()
    return {
        "worker": data_worker, "original": original, "entry_id": entry_id, "dead_id": dead_id,
        "fields": fields, "calls": calls, "result": result, "fixed": fixed,
    }  # fmt: skip


# -- list and config ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/streams/", "/api/v1/streams"])
def test_it_lists_the_twelve_streams(user_api, path):
    response = user_api.get(path)

    assert response.status_code == 200
    assert response.json() == {"streams": list(DESIGN_GROUPS), "total": 12}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/streams/",
        "/api/v1/streams/metrics",
        "/api/v1/health/streams",
        f"/api/v1/streams/{TRADING}/config",
        f"/api/v1/streams/{TRADING}/health",
        f"/api/v1/streams/{TRADING}/dlq/stats",
        f"/api/v1/streams/{TRADING}/dlq/messages",
    ],
)
def test_the_streams_endpoints_need_a_token(api, path):
    response = api.get(path)

    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(DESIGN_GROUPS))
def test_each_stream_has_its_config(user_api, name):
    response = user_api.get(url(name, "config"))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"name", "maxlen", "approximate", "consumer_groups", "routing", "description"}
    assert body["name"] == name
    assert body["consumer_groups"] == [DESIGN_GROUPS[name]]
    # Trading commands only are routed: each host reads them in its own group.
    assert body["routing"] == ("per_host" if name == TRADING else "shared")
    assert isinstance(body["maxlen"], int)
    assert body["maxlen"] > 0
    assert isinstance(body["approximate"], bool)
    # Commands are trimmed exactly; results, status and events approximately.
    assert body["approximate"] is not name.startswith("mgmt:")
    assert isinstance(body["description"], str)
    assert body["description"]


@pytest.mark.django_db
def test_the_trading_commands_config_is_the_seed_example(user_api):
    response = user_api.get(url(TRADING, "config"))

    assert response.json() == {
        "name": "mgmt:trading:commands",
        "maxlen": 10000,
        "approximate": False,
        "consumer_groups": ["trading_consumers@<host>"],
        "routing": "per_host",
        "description": "Management server commands to the trading gateways, each read by its host's own group",
    }


@pytest.mark.django_db
def test_the_config_shows_a_maxlen_override_from_settings(user_api, settings):
    settings.STREAMS = {**settings.STREAMS, "maxlen": {"system:events": 50}}

    assert user_api.get(url("system:events", "config")).json()["maxlen"] == 50


@pytest.mark.django_db
@pytest.mark.parametrize("tail", ["config", "health", "dlq/stats", "dlq/messages"])
def test_an_unknown_stream_is_not_found(admin_api, tail):
    response = admin_api.get(url("no:such:stream", tail))

    assert response.status_code == 404
    assert response.json() == {"detail": "Stream not found"}


@pytest.mark.django_db
@pytest.mark.parametrize("tail", ["dlq/replay", "dlq/purge"])
def test_dead_letter_actions_on_an_unknown_stream_are_not_found(admin_api, tail):
    response = admin_api.post(url("no:such:stream", tail), {}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "Stream not found"}


# -- one stream's health -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_stream_that_was_never_written_reports_empty_figures(user_api):
    body = user_api.get(url(TRADING, "health")).json()

    assert body["name"] == TRADING
    assert body["exists"] is False
    assert body["length"] == 0
    assert body["groups"] == {}
    assert body["dlq"] == {"total_messages": 0, "error_types": {}}
    assert body["throughput"] == {"messages_per_minute": 0.0}


@pytest.mark.django_db
def test_stream_health_reports_length_pending_lag_and_throughput_as_redis_has_them(user_api):
    # given: six commands, a throughput sample, four more commands a little later
    worker = StreamWorker(registry=HandlerRegistry(), group=ALPHA, consumer="c1", block_ms=0)
    ensure_host_group(TRADING, ALPHA)
    ids = publish_many(TRADING, [envelope(type="bot_start", payload={"bot_id": n}) for n in range(6)])
    health.sample_throughput()
    time.sleep(1.1)
    ids += [publish(TRADING, type="bot_start", payload={"bot_id": n}) for n in range(6, 10)]
    # a consumer reads four without acknowledging them
    reply = worker.client.xreadgroup(ALPHA, "c1", {stream_key(TRADING): ">"}, count=4)
    assert [message_id for message_id, _ in reply[0][1]] == ids[:4]

    # when
    response = user_api.get(url(TRADING, "health"))

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == TRADING
    assert body["exists"] is True
    assert body["length"] == 10
    assert body["groups_count"] == 1
    group = body["groups"][ALPHA]
    assert group["consumers"] == 1
    assert group["pending"] == 4
    assert group["lag"] == 6
    assert group["last_delivered_id"] == ids[3]
    assert body["total_pending"] == 4
    assert body["total_lag"] == 6
    assert body["dlq"] == {"total_messages": 0, "error_types": {}}
    assert body["errors"] == {}
    rate = body["throughput"]["messages_per_minute"]
    assert isinstance(rate, (int, float))
    # four entries added between samples at least 1.1 s apart (stored to the millisecond)
    assert 0 < rate <= 4 * 60 / 1.05
    assert abs(body["last_updated"] - time.time()) < 5


@pytest.mark.django_db
def test_throughput_is_zero_until_two_samples_exist(user_api):
    publish_many(TRADING, [envelope(type="bot_start", payload={}) for _ in range(5)])

    # The endpoint's own sample is the first one.
    assert user_api.get(url(TRADING, "health")).json()["throughput"] == {"messages_per_minute": 0.0}


# -- dead letters, end to end ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_failing_command_is_retried_then_dead_lettered_with_its_metadata(dead_letter):
    # then: three deliveries, then the dead letter
    assert dead_letter["result"].dead == 1
    assert len(dead_letter["calls"]) == 3
    assert {item.request_id for item in dead_letter["calls"]} == {"import-42"}
    fields = dead_letter["fields"]
    assert fields["dead_letter_reason"] == "value_error"
    assert fields["final_retry_count"] == "3"
    assert fields["original_stream"] == DATA
    assert fields["original_message_id"] == dead_letter["entry_id"]
    assert fields["service_name"] == "data_worker"
    assert fields["consumer_group"] == "data_consumers"
    assert "exchange refused the import" in fields["error"]
    assert abs(float(fields["failed_at"]) - time.time()) < 30
    # the original envelope travels with it
    original = dead_letter["original"]
    assert {name: fields[name] for name in original.fields()} == original.fields()
    # and the entry is acknowledged: nothing pending in the group
    assert pending_count(DATA, "data_consumers") == 0


@pytest.mark.django_db
def test_dlq_stats_count_dead_letters_by_error_type(dead_letter, user_api):
    response = user_api.get(url(DATA, "dlq/stats"))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"stream", "total_messages", "error_types", "last_updated"}
    assert body["stream"] == "mgmt:data:commands:dead"
    assert body["total_messages"] == 1
    assert body["error_types"] == {"value_error": 1}
    assert abs(body["last_updated"] - time.time()) < 5


@pytest.mark.django_db
def test_stream_health_counts_the_dead_letters(dead_letter, user_api):
    body = user_api.get(url(DATA, "health")).json()

    assert body["dlq"] == {"total_messages": 1, "error_types": {"value_error": 1}}
    assert body["groups"]["data_consumers"]["pending"] == 0
    assert body["groups"]["data_consumers"]["lag"] == 0


@pytest.mark.django_db
def test_a_superuser_reads_the_dead_letters(dead_letter, admin_api):
    response = admin_api.get(url(DATA, "dlq/messages"), {"limit": 10})

    assert response.status_code == 200
    [item] = response.json()
    assert set(item) == {"id", "data", "timestamp"}
    assert item["id"] == dead_letter["dead_id"]
    data = item["data"]
    assert data["dead_letter_reason"] == "value_error"
    assert data["original_stream"] == DATA
    assert data["original_message_id"] == dead_letter["entry_id"]
    assert data["service_name"] == "data_worker"
    assert data["final_retry_count"] == "3"
    assert data["request_id"] == "import-42"
    assert data["type"] == "boom"
    assert data["payload"] == {"pair": "BTC/USDT", "days": 30}
    assert item["timestamp"] == data["failed_at"]


@pytest.mark.django_db
def test_dead_letters_are_listed_newest_first_up_to_the_limit(admin_api):
    # given: three dead letters, as the worker writes them
    ids = [
        redis_client().xadd(stream_key(DEAD), {"dead_letter_reason": f"reason_{n}", "failed_at": str(n)})
        for n in range(3)
    ]

    # when
    response = admin_api.get(url(DATA, "dlq/messages"), {"limit": 2})

    # then
    assert response.status_code == 200
    assert [item["id"] for item in response.json()] == [ids[2], ids[1]]


@pytest.mark.django_db
def test_a_normal_user_may_not_read_the_dead_letters(dead_letter, user_api):
    response = user_api.get(url(DATA, "dlq/messages"), {"limit": 10})

    assert response.status_code == 403
    assert "pair" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("limit", ["0", "1001", "many"])
def test_a_bad_dlq_limit_is_a_query_error(admin_api, limit):
    response = admin_api.get(url(DATA, "dlq/messages"), {"limit": limit})

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "limit"]


# -- replay ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_superuser_replays_a_dead_letter_onto_its_stream_and_it_is_handled(dead_letter, admin_api, register):
    # when
    response = admin_api.post(url(DATA, "dlq/replay"), {"message_ids": [dead_letter["dead_id"]]}, format="json")

    # then: the entry is back on its stream, with its request_id, and gone from the DLQ
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["stream"] == DATA
    assert body["replayed"] == 1
    assert body["not_found"] == []
    [moved] = body["messages"]
    assert moved["dead_letter_id"] == dead_letter["dead_id"]
    replayed = dict(redis_client().xrange(stream_key(DATA)))
    fields = replayed[moved["message_id"]]
    assert fields == dead_letter["original"].fields()
    assert fields["request_id"] == "import-42"
    assert "dead_letter_reason" not in fields
    assert dead_letters() == []
    row = AuditLog.objects.get(action="dead_letter_replay")
    assert row.status == AuditLog.Status.SUCCESS
    assert row.resource == f"stream:{DATA}"
    assert row.details["replayed"] == [moved]

    # when: the cause is fixed and the worker runs again
    handled: list[Envelope] = []
    dead_letter["fixed"].append(handled.append)
    result = step_until(dead_letter["worker"], lambda total: total.processed == 1)

    # then: handled once and acknowledged
    assert [(item.message_id, item.request_id) for item in handled] == [(moved["message_id"], "import-42")]
    assert result.dead == 0
    assert pending_count(DATA, "data_consumers") == 0
    assert dead_letters() == []


@pytest.mark.django_db
def test_replay_reports_ids_that_are_not_in_the_dlq(dead_letter, admin_api):
    response = admin_api.post(url(DATA, "dlq/replay"), {"message_ids": ["1-1"]}, format="json")

    assert response.status_code == 200
    assert response.json()["replayed"] == 0
    assert response.json()["not_found"] == ["1-1"]
    assert len(dead_letters()) == 1


@pytest.mark.django_db
def test_replay_without_ids_replays_the_oldest_up_to_the_limit(dead_letter, admin_api):
    response = admin_api.post(url(DATA, "dlq/replay"), {}, format="json")

    assert response.status_code == 200
    assert response.json()["replayed"] == 1
    assert dead_letters() == []


@pytest.mark.django_db
def test_an_id_given_twice_is_replayed_once(dead_letter, admin_api):
    dead_id = dead_letter["dead_id"]

    response = admin_api.post(url(DATA, "dlq/replay"), {"message_ids": [dead_id, dead_id]}, format="json")

    assert response.status_code == 200
    assert response.json()["replayed"] == 1
    # the original entry (acknowledged, still in the stream) and one replay
    assert redis_client().xlen(stream_key(DATA)) == 2


@pytest.mark.django_db
def test_a_dead_letter_that_is_not_an_envelope_is_left_in_the_dlq(data_worker, admin_api):
    # given: a foreign producer wrote an entry without an envelope; the worker dead-lettered it
    redis_client().xadd(stream_key(DATA), {"foo": "bar"})
    step_until(data_worker, lambda total: total.dead == 1)
    [(dead_id, fields)] = dead_letters()
    assert fields["dead_letter_reason"] == "malformed_envelope"

    # when
    response = admin_api.post(url(DATA, "dlq/replay"), {"message_ids": [dead_id]}, format="json")

    # then: it would come straight back, so it stays where it is
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["replayed"] == 0
    assert body["not_replayable"] == [dead_id]
    assert [message_id for message_id, _ in dead_letters()] == [dead_id]
    assert redis_client().xlen(stream_key(DATA)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("tail", ["dlq/replay", "dlq/purge"])
@pytest.mark.parametrize("message_id", ["99999999999999999999999-1", "\u0661-\u0661"])
def test_ids_that_redis_cannot_read_are_refused(dead_letter, admin_api, tail, message_id):
    response = admin_api.post(url(DATA, tail), {"message_ids": [message_id]}, format="json")

    assert response.status_code == 422, response.content
    [error] = response.json()["detail"]
    assert error["loc"][:2] == ["body", "message_ids"]
    assert len(dead_letters()) == 1


@pytest.mark.django_db
def test_a_normal_user_may_not_replay_dead_letters(dead_letter, user_api):
    response = user_api.post(url(DATA, "dlq/replay"), {"message_ids": [dead_letter["dead_id"]]}, format="json")

    assert response.status_code == 403
    assert [message_id for message_id, _ in dead_letters()] == [dead_letter["dead_id"]]
    assert redis_client().xlen(stream_key(DATA)) == 1
    assert not AuditLog.objects.filter(action="dead_letter_replay", status=AuditLog.Status.SUCCESS).exists()
    assert AuditLog.objects.filter(action="dead_letter_replay", status=AuditLog.Status.DENIED).exists()


# -- purge -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_superuser_purges_the_dlq(dead_letter, admin_api):
    response = admin_api.post(url(DATA, "dlq/purge"), {}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"stream": DATA, "purged": 1}
    assert dead_letters() == []
    row = AuditLog.objects.get(action="dead_letter_purge")
    assert row.status == AuditLog.Status.SUCCESS
    assert row.details == {"purged": 1, "message_ids": "all"}
    assert admin_api.get(url(DATA, "dlq/stats")).json()["total_messages"] == 0


@pytest.mark.django_db
def test_a_superuser_purges_chosen_dead_letters(dead_letter, admin_api):
    other = redis_client().xadd(stream_key(DEAD), {"dead_letter_reason": "no_handler"})

    response = admin_api.post(url(DATA, "dlq/purge"), {"message_ids": [dead_letter["dead_id"]]}, format="json")

    assert response.status_code == 200
    assert response.json()["purged"] == 1
    assert [message_id for message_id, _ in dead_letters()] == [other]


@pytest.mark.django_db
def test_purge_refuses_ids_that_are_not_entry_ids(dead_letter, admin_api):
    response = admin_api.post(url(DATA, "dlq/purge"), {"message_ids": ["bad"]}, format="json")

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"][:2] == ["body", "message_ids"]
    assert len(dead_letters()) == 1
    assert not AuditLog.objects.filter(action="dead_letter_purge", status=AuditLog.Status.SUCCESS).exists()


@pytest.mark.django_db
def test_a_normal_user_may_not_purge_the_dlq(dead_letter, user_api):
    response = user_api.post(url(DATA, "dlq/purge"), {}, format="json")

    assert response.status_code == 403
    assert len(dead_letters()) == 1


# -- the whole bus -----------------------------------------------------------------------------


def assert_system_health_shape(system: dict[str, Any]) -> None:
    assert {"overall_status", "total_streams", "total_groups", "total_lag", "total_dlq_messages"} <= set(system)
    assert system["overall_status"] in {"healthy", "degraded", "unhealthy"}
    assert system["total_streams"] == 12


@pytest.mark.django_db
def test_bus_health_has_the_seed_shape_and_counts_listeners(user_api):
    # given: the groups exist (alpha's gateway made its own), a listener beats
    ensure_groups()
    ensure_host_group(TRADING, ALPHA)
    heartbeat_publish(component="listeners", details={"processed": 0, "dead": 0})

    # when
    response = user_api.get("/api/v1/health/streams")

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["service"] == "management_server"
    assert abs(body["timestamp"] - time.time()) < 5
    assert body["status"] == "healthy"
    assert body["redis_connected"] is True
    assert body["active_listeners"] == 1
    assert body["issues"] == []
    system = body["metrics"]["system_health"]
    assert_system_health_shape(system)
    assert system["overall_status"] == "healthy"
    assert system["issues"] == []
    assert system["total_groups"] == len({group for config in CATALOG.values() for group in config.consumer_groups}) + 1
    assert system["total_lag"] == 0
    assert system["total_dlq_messages"] == 0
    streams = body["metrics"]["streams"]
    assert set(streams) == set(DESIGN_GROUPS)
    trading = streams[TRADING]
    assert trading["exists"] is True
    assert trading["length"] == 0
    assert trading["groups"][ALPHA]["consumers"] == 0
    assert trading["groups"][ALPHA]["pending"] == 0
    assert trading["groups"][ALPHA]["lag"] == 0
    assert trading["errors"] == {}


@pytest.mark.django_db
def test_bus_health_without_listeners_is_degraded(user_api):
    body = user_api.get("/api/v1/health/streams").json()

    assert body["active_listeners"] == 0
    assert body["status"] == "degraded"
    assert "no listeners running" in body["issues"]
    # nothing was written yet: no stream exists
    assert body["metrics"]["streams"][TRADING]["exists"] is False
    assert body["metrics"]["system_health"]["total_groups"] == 0


@pytest.mark.django_db
def test_bus_health_reports_dead_letters_without_degrading(dead_letter, user_api):
    heartbeat_publish(component="listeners")

    body = user_api.get("/api/v1/health/streams").json()

    assert body["metrics"]["system_health"]["total_dlq_messages"] == 1
    assert body["issues"] == ["mgmt:data:commands: 1 dead letters"]
    assert body["status"] == "healthy"
    assert body["metrics"]["streams"][DATA]["dlq"]["total_messages"] == 1


@pytest.mark.django_db
def test_a_large_lag_degrades_the_bus(user_api):
    # given
    ensure_host_group(TRADING, ALPHA)
    publish_many(TRADING, [envelope(type="bot_start", payload={"n": n}) for n in range(health.LAG_DEGRADED + 1)])
    heartbeat_publish(component="listeners")

    # when
    body = user_api.get("/api/v1/health/streams").json()

    # then
    assert body["status"] == "degraded"
    assert body["issues"] == [f"{TRADING}: lag {health.LAG_DEGRADED + 1}"]
    assert body["metrics"]["system_health"]["total_lag"] == health.LAG_DEGRADED + 1


@pytest.mark.django_db
def test_stream_metrics_have_the_seed_shape(dead_letter, user_api):
    # given: a listener, and two commands not yet read by the trading gateway
    heartbeat_publish(component="listeners")
    ensure_host_group(TRADING, ALPHA)
    publish_many(TRADING, [envelope(type="bot_start", payload={}) for _ in range(2)])

    # when
    response = user_api.get("/api/v1/streams/metrics")

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["service"] == "management_server"
    assert abs(body["timestamp"] - time.time()) < 5
    assert body["redis_connected"] is True
    assert body["active_listeners"] == 1
    assert set(body["streams"]) == set(DESIGN_GROUPS)
    trading = body["streams"][TRADING]
    assert isinstance(trading["throughput"]["messages_per_minute"], (int, float))
    assert trading["lag"] == {ALPHA: 2}
    assert trading["errors"] == {}
    assert body["streams"][DATA]["lag"] == {"data_consumers": 0}
    system = body["system_health"]
    assert_system_health_shape(system)
    assert system["total_lag"] == 2
    assert system["total_dlq_messages"] == 1


@pytest.mark.django_db
def test_listeners_heartbeats_are_counted_as_active_listeners(user_api):
    assert user_api.get("/api/v1/streams/metrics").json()["active_listeners"] == 0

    heartbeat_publish(component="listeners")
    heartbeat_publish(component="gateway")

    assert user_api.get("/api/v1/streams/metrics").json()["active_listeners"] == 1
    assert user_api.get("/api/v1/health/streams").json()["active_listeners"] == 1


# -- monitoring --------------------------------------------------------------------------------


def streams_component(response: Any) -> dict[str, Any]:
    [component] = [item for item in response.json()["component_health"] if item["name"] == "streams"]
    return component


@pytest.mark.django_db
def test_monitoring_health_includes_a_healthy_streams_component(api):
    response = api.get("/api/v1/monitoring/health")

    assert response.status_code == 200
    component = streams_component(response)
    assert component["status"] == "healthy"
    assert component["details"]["issues"] == []
    assert component["details"]["dead_letters"] == 0
    assert component["details"]["total_lag"] == 0
    assert response.json()["overall_status"] == "healthy"


@pytest.mark.django_db
def test_monitoring_health_reports_dead_letters_in_the_streams_component(dead_letter, api):
    response = api.get("/api/v1/monitoring/health")

    component = streams_component(response)
    assert component["details"]["dead_letters"] == 1
    assert component["details"]["issues"] == ["mgmt:data:commands: 1 dead letters"]
    assert component["status"] == "healthy"


@pytest.mark.django_db
def test_monitoring_health_degrades_on_a_large_stream_lag(api):
    ensure_host_group(TRADING, ALPHA)
    publish_many(TRADING, [envelope(type="bot_start", payload={}) for _ in range(health.LAG_DEGRADED + 1)])

    response = api.get("/api/v1/monitoring/health")

    component = streams_component(response)
    assert component["status"] == "degraded"
    assert component["details"]["total_lag"] == health.LAG_DEGRADED + 1
    assert response.json()["overall_status"] == "degraded"


def test_two_replays_of_one_dead_letter_put_it_back_once():
    from streams.services import _move_back

    # given: one dead letter, as the worker writes it
    fields = {**envelope(type="boom", payload={"n": 1}).fields(), "dead_letter_reason": "value_error"}
    dead_id = redis_client().xadd(stream_key("mgmt:data:commands:dead"), fields)
    keys = [stream_key("mgmt:data:commands:dead"), stream_key("mgmt:data:commands")]
    args = [dead_id, 10_000, 0, *[part for pair in fields.items() for part in pair]]
    # when: two replays race for it
    first, second = _move_back(keys=keys, args=args), _move_back(keys=keys, args=args)
    # then
    assert first is not None and second is None
    assert redis_client().xlen(stream_key("mgmt:data:commands")) == 1
    assert redis_client().xlen(stream_key("mgmt:data:commands:dead")) == 0


# -- the services and the selector on their own ----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("call", ["replay", "purge"])
def test_the_dead_letter_services_refuse_unreadable_ids_with_a_domain_error(dead_letter, superuser, call):
    from multibot.errors import InvalidInputError
    from streams import services

    actor = Actor(user=superuser, ip_address="127.0.0.1")
    action = services.dead_letter_replay if call == "replay" else services.dead_letter_purge

    with pytest.raises(InvalidInputError) as refused:
        action(actor=actor, stream=DATA, message_ids=["99999999999999999999999-1"])

    assert refused.value.field == "message_ids"
    assert len(dead_letters()) == 1


@pytest.mark.django_db
def test_the_dead_letter_list_is_newest_first_with_the_payload_decoded(dead_letter):
    from streams.selectors import dead_letter_list

    [shown] = dead_letter_list(stream=DATA, limit=10)

    assert shown["id"] == dead_letter["dead_id"]
    assert shown["data"]["payload"] == {"pair": "BTC/USDT", "days": 30}
    assert shown["timestamp"] == dead_letter["fields"]["failed_at"]
    assert dead_letter_list(stream=DATA, limit=1) == [shown]


@pytest.mark.django_db
def test_stream_health_without_redis_says_so_and_names_the_error_while_redis_is_skipped(user_api, settings, tmp_path):
    from multibot.embedded_redis import EmbeddedRedis

    # given: the app on a Redis that is not running
    settings.REDIS_URL = EmbeddedRedis(tmp_path / "redis").url
    # when: asked twice, the second time within the skip that follows a failure
    answers = [user_api.get("/api/v1/health/streams") for _ in range(2)]
    # then
    for response in answers:
        assert response.status_code == 200
        assert response.json()["redis_connected"] is False
        assert response.json()["issues"] == ["redis unavailable: ConnectionError"]

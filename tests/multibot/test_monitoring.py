from __future__ import annotations

import time

import pytest

from bots.models import Bot
from multibot.embedded_redis import EmbeddedRedis
from multibot.heartbeats import heartbeat_publish
from tests.factories import make_bot, make_user


def _components(response) -> dict[str, dict]:
    return {item["name"]: item for item in response.json()["component_health"]}


@pytest.mark.django_db
def test_health_needs_no_token_and_reports_each_component(api):
    response = api.get("/api/v1/monitoring/health")
    assert response.status_code == 200
    body = response.json()
    assert body["overall_status"] == "healthy"
    components = _components(response)
    assert components["database"]["status"] == "healthy"
    assert components["redis"]["details"]["version"].startswith("7.")
    assert components["Management Server"]["details"]["port"] == 8002


@pytest.mark.django_db
def test_health_reports_redis_down_when_it_is_down(api, settings, tmp_path):
    # given: a second real Redis server that the app is pointed at
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    settings.REDIS_URL = server.url
    try:
        assert _components(api.get("/api/v1/monitoring/health"))["redis"]["status"] == "healthy"
        # when: it goes away
        server.stop()
        response = api.get("/api/v1/monitoring/health")
    finally:
        server.stop()
    # then: degraded, not unhealthy: the web still answers without Redis, so no 503 for a load balancer
    assert response.status_code == 200
    assert response.json()["overall_status"] == "degraded"
    redis_state = _components(response)["redis"]
    assert redis_state["status"] == "unhealthy"
    assert redis_state["details"]["error"] == "ConnectionError"
    assert server.password not in response.content.decode()
    # Rate limiting fails open rather than taking health down with Redis.
    assert "X-RateLimit-Limit" not in response


@pytest.mark.django_db
def test_after_a_failure_health_skips_redis_for_a_while_and_asks_it_again_after(api, settings, tmp_path):
    # given: the app on a second real Redis, which goes away after one good answer
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    settings.REDIS_URL = server.url
    settings.REDIS_REQUEST = {**settings.REDIS_REQUEST, "skip_seconds": 2}
    try:
        assert _components(api.get("/api/v1/monitoring/health"))["redis"]["status"] == "healthy"
        server.stop()
        failed = _components(api.get("/api/v1/monitoring/health"))["redis"]
        # when: asked again at once, and once Redis is back and the skip has run out
        skipped = api.get("/api/v1/monitoring/health")
        server.start()
        still_skipped = _components(api.get("/api/v1/monitoring/health"))["redis"]
        time.sleep(2)
        again = api.get("/api/v1/monitoring/health")
    finally:
        server.stop()
    # then: the failure is remembered, not retried, until the skip ends
    assert failed["details"]["error"] == "ConnectionError"
    assert skipped.status_code == 200 and skipped.json()["overall_status"] == "degraded"
    assert _components(skipped)["redis"]["details"]["reason"] == "skipped: failed 0s ago"
    assert still_skipped["status"] == "unhealthy" and still_skipped["details"]["reason"].startswith("skipped")
    assert _components(again)["redis"]["status"] == "healthy"
    assert again.json()["overall_status"] == "healthy"


@pytest.mark.django_db
def test_a_component_without_heartbeat_degrades_health_until_it_beats(api, settings):
    settings.MONITORING = {**settings.MONITORING, "components": ["gateway"]}
    silent = api.get("/api/v1/monitoring/health")
    assert silent.status_code == 200
    assert silent.json()["overall_status"] == "degraded"
    assert _components(silent)["gateway"]["details"]["reason"] == "no heartbeat"

    heartbeat_publish(component="gateway", details={"bots": 0})

    beating = api.get("/api/v1/monitoring/health")
    assert beating.json()["overall_status"] == "healthy"
    assert _components(beating)["gateway"]["details"]["instances"] == 1


@pytest.mark.django_db
def test_an_unresponsive_bot_degrades_health_which_counts_bots_by_status_and_names_none(api):
    # given: two running bots, one of them unresponsive, and a stopped one
    running, frozen, stopped = (make_bot(owner=make_user()) for _ in range(3))
    Bot.objects.filter(pk=running.pk).update(status=Bot.Status.RUNNING)
    Bot.objects.filter(pk=frozen.pk).update(status=Bot.Status.UNRESPONSIVE)

    response = api.get("/api/v1/monitoring/health")

    # then: degraded, the counts of the bots that are up, and not one name
    assert response.status_code == 200 and response.json()["overall_status"] == "degraded"
    bots = _components(response)["bots"]
    assert bots == {"name": "bots", "status": "degraded",
                    "details": {"starting": 0, "running": 1, "stopping": 0, "unresponsive": 1}}  # fmt: skip
    assert not any(bot.name in response.content.decode() for bot in (running, frozen, stopped))

    # when: it answers again
    Bot.objects.filter(pk=frozen.pk).update(status=Bot.Status.RUNNING)

    # then
    assert _components(api.get("/api/v1/monitoring/health"))["bots"]["status"] == "healthy"


@pytest.mark.django_db
def test_status_needs_a_token(api):
    assert api.get("/api/v1/monitoring/monitoring/status").status_code == 401


@pytest.mark.django_db
def test_status_reports_system_metrics_and_only_the_callers_bots(user, other_user, user_api):
    make_bot(owner=user)
    make_bot(owner=user)
    make_bot(owner=other_user)

    response = user_api.get("/api/v1/monitoring/monitoring/status")

    assert response.status_code == 200
    body = response.json()
    metrics = body["system_metrics"]
    assert metrics["cpu"]["cores_logical"] >= 1
    assert 0 < metrics["memory"]["total_gb"]
    assert metrics["memory"]["used_gb"] <= metrics["memory"]["total_gb"]
    assert 0 <= metrics["disk"]["usage_percent"] <= 100
    assert body["bot_statistics"]["total_bots"] == 2
    assert body["bot_statistics"]["by_status"]["stopped"] == 2
    assert body["overall_status"] == "healthy"
    assert {c["name"] for c in body["component_health"]} >= {"database", "redis"}


def test_uptime_counts_from_the_process_start_not_the_first_request():
    import subprocess
    import sys

    from tests.support.processes import ROOT, server_env

    # given: a process that is up 2 s before health is first imported (as a server before its first request)
    script = (
        "import time; time.sleep(2); import django; django.setup(); "
        "from multibot.health import check_server; print(check_server()['details']['uptime_seconds'])"
    )

    # when
    env = server_env(DJANGO_SETTINGS_MODULE="tests.settings")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    # then
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) >= 2.0


@pytest.mark.django_db
def test_a_command_waiting_in_the_outbox_too_long_degrades_health(api):
    from datetime import timedelta

    from django.utils import timezone

    from streams.models import OutboxEntry

    # given: a command committed 30 s ago that never reached the bus, and one sent
    late = OutboxEntry.objects.create(stream="mgmt:trading:commands", type="bot_stop", payload={"bot_id": 1},
                                      request_id="outbox-late")  # fmt: skip
    OutboxEntry.objects.filter(pk=late.pk).update(created_at=timezone.now() - timedelta(seconds=30))
    OutboxEntry.objects.create(stream="mgmt:trading:commands", type="bot_start", payload={"bot_id": 2},
                               request_id="outbox-sent", sent_at=timezone.now())  # fmt: skip
    # when
    outbox = _components(api.get("/api/v1/monitoring/health"))["outbox"]
    # then
    assert outbox["status"] == "degraded"
    assert outbox["details"]["waiting"] == 1 and outbox["details"]["oldest_waiting_seconds"] >= 30
    OutboxEntry.objects.filter(pk=late.pk).update(sent_at=timezone.now())
    assert _components(api.get("/api/v1/monitoring/health"))["outbox"]["status"] == "healthy"

from __future__ import annotations

import time
from typing import Any

import pytest

from bots.models import Bot
from multibot.ratelimit import RateLimitRefusal, Window
from tests.factories import access_token_for, make_bot
from tests.support.processes import get, server_env, uvicorn_server


def _not_near_a_window_edge(period: int = 60, margin: float = 8.0) -> None:
    # Fixed windows reset on the period boundary; start well inside one so counts are not split.
    into = time.time() % period
    if into > period - margin:
        time.sleep(period - into + 0.5)


@pytest.mark.django_db
def test_headers_count_down_on_every_response(api, settings):
    # given
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "health": "5/minute"}
    _not_near_a_window_edge()
    # when
    responses = [api.get("/api/v1/monitoring/health") for _ in range(5)]
    # then
    assert [r.status_code for r in responses] == [200] * 5
    assert [r["X-RateLimit-Remaining"] for r in responses] == ["4", "3", "2", "1", "0"]
    assert {r["X-RateLimit-Limit"] for r in responses} == {"5"}
    reset = int(responses[0]["X-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + 60


@pytest.mark.django_db
def test_the_limit_is_reached_with_a_429_and_retry_after(api, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "health": "3/minute"}
    _not_near_a_window_edge()
    for _ in range(3):
        assert api.get("/api/v1/monitoring/health").status_code == 200
    refused = api.get("/api/v1/monitoring/health")
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Rate limit exceeded")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["X-RateLimit-Remaining"] == "0"


@pytest.mark.django_db
def test_authenticated_requests_count_per_user_not_per_ip(user_api, other_api, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "user": "3/hour"}
    for _ in range(3):
        assert user_api.get("/api/v1/bots/").status_code == 200
    assert user_api.get("/api/v1/bots/").status_code == 429
    # Same IP, another account: its own budget.
    fresh = other_api.get("/api/v1/bots/")
    assert fresh.status_code == 200
    assert fresh["X-RateLimit-Limit"] == "3"
    assert fresh["X-RateLimit-Remaining"] == "2"


@pytest.mark.django_db
def test_an_upload_scope_is_tighter_than_the_user_budget(user_api, settings):
    from multibot.ratelimit import hit

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "upload": "2/hour"}
    windows = [hit([("user", "user1"), ("upload", "user1")]) for _ in range(3)]
    assert [w[1].remaining for w in windows] == [1, 0, -1]
    assert windows[2][1].exceeded and not windows[2][0].exceeded


@pytest.mark.slow
def test_two_server_processes_share_one_budget(user):
    # given: two real uvicorn processes on the same Redis, health limited to 6 a minute
    env = server_env(MULTIBOT_RATE_LIMITS="health=6/minute,user=4/hour")
    token = access_token_for(user)
    _not_near_a_window_edge()
    with uvicorn_server(env) as first, uvicorn_server(env) as second:
        # when: requests alternate between the two servers
        answers = [get(f"{(first, second)[i % 2]}/api/v1/monitoring/health") for i in range(8)]
        authed = [
            get(f"{(first, second)[i % 2]}/api/v1/bots/", headers={"Authorization": f"Bearer {token}"})
            for i in range(5)
        ]
    # then: one shared count
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["5", "4", "3", "2", "1", "0", "0", "0"]
    assert [a.status_code == 429 for a in answers] == [False] * 6 + [True] * 2
    assert "Retry-After" in answers[6].headers
    assert [a.headers["X-RateLimit-Remaining"] for a in authed] == ["3", "2", "1", "0", "0"]
    assert authed[4].status_code == 429


@pytest.mark.django_db
def test_http_basic_callers_count_against_the_user_budget_per_account_and_address(api, user, settings):
    import base64

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "user": "2/hour", "anon": "50/hour"}
    basic = "Basic " + base64.b64encode(f"{user.username}:whatever".encode()).decode()

    answers = [api.get("/api/v1/bots/", HTTP_AUTHORIZATION=basic) for _ in range(3)]

    assert [a["X-RateLimit-Limit"] for a in answers] == ["2", "2", "2"]
    assert answers[2].status_code == 429
    # An anonymous caller from the same address still has the anonymous budget.
    assert api.get("/api/v1/bots/")["X-RateLimit-Limit"] == "50"


# The kill switch


def _spend_the_user_budget(client: Any, settings: Any, budget: int = 3) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "user": f"{budget}/hour"}
    _not_near_a_window_edge(period=3600, margin=10)
    for _ in range(budget):
        assert client.get("/api/v1/bots/").status_code == 200
    assert client.get("/api/v1/bots/").status_code == 429


@pytest.mark.django_db
def test_a_superuser_who_spent_the_hourly_budget_still_stops_every_bot(admin_api, superuser, settings):
    # given
    _spend_the_user_budget(admin_api, settings)

    # when
    response = admin_api.post("/api/v1/emergency/stop-all", {}, format="json")

    # then: answered, with the headers of the spent budget
    assert response.status_code == 202, response.content
    assert response["X-RateLimit-Limit"] == "3"
    assert response["X-RateLimit-Remaining"] == "0"
    # and only the emergency paths are exempt
    assert admin_api.get("/api/v1/bots/").status_code == 429


@pytest.mark.django_db
def test_a_user_who_spent_the_hourly_budget_still_kills_a_bot(user_api, user, settings):
    # given: a running bot, and a spent budget
    bot = make_bot(owner=user)
    Bot.objects.filter(pk=bot.pk).update(status=Bot.Status.RUNNING)
    _spend_the_user_budget(user_api, settings)

    # when
    by_id = user_api.post(f"/api/v1/bots/{bot.pk}/emergency-stop")
    by_name = user_api.post(f"/api/v1/bots/{bot.name}/emergency-stop")

    # then
    assert by_id.status_code == 202, by_id.content
    assert by_name.status_code == 202, by_name.content
    assert by_id["X-RateLimit-Remaining"] == "0"


@pytest.mark.django_db
def test_the_emergency_paths_still_limit_callers_without_a_token(api, settings):
    # given: anonymous callers are limited by address
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "anon": "2/hour"}
    _not_near_a_window_edge(period=3600, margin=10)

    # when
    answers = [api.post("/api/v1/emergency/stop-all", {}, format="json") for _ in range(3)]

    # then: 401 while the budget lasts, then 429: the exemption is for signed-in callers only
    assert [answer.status_code for answer in answers] == [401, 401, 429]


# Counting refusals (their audit rows: tests/audit/test_rate_limit_refusals.py)


def test_a_callers_refusals_are_counted_once_per_window_and_scope(redis_server):
    window_end = int(time.time()) + 3600

    def refusal(scope: str = "user", who: str = "user7", reset: int = window_end) -> RateLimitRefusal:
        return RateLimitRefusal(window=Window(scope=scope, limit=1, remaining=-1, reset=reset, who=who), caller="7")

    # first of this caller in this window, then not again
    assert [refusal().first_in_window() for _ in range(3)] == [True, False, False]
    # the next window, another scope, another caller: each a first again
    assert refusal(reset=window_end + 3600).first_in_window()
    assert refusal(scope="upload").first_in_window()
    assert refusal(who="user8").first_in_window()

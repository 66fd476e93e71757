from __future__ import annotations

import time

import pytest

from tests.factories import access_token_for
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

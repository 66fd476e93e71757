"""Rate-limit refusals in the audit log: with the caller's account, one row per caller and window."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.models import AuditLog

pytestmark = pytest.mark.django_db


def _not_near_a_window_edge(period: int = 3600, margin: float = 10.0) -> None:
    # Fixed windows reset on the period boundary; start well inside one so counts are not split.
    into = time.time() % period
    if into > period - margin:
        time.sleep(period - into + 0.5)


def _spend_the_user_budget(client: APIClient, settings: Any, budget: int = 3) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "user": f"{budget}/hour"}
    _not_near_a_window_edge()
    for _ in range(budget):
        assert client.get("/api/v1/bots/").status_code == 200
    assert client.get("/api/v1/bots/").status_code == 429


def _refusal_rows() -> list[AuditLog]:
    return list(AuditLog.objects.filter(details__status_code=429).order_by("id"))


def test_a_rate_limited_request_is_audited_with_its_user_once_per_window(user_api, user, settings):
    # given
    _spend_the_user_budget(user_api, settings)

    # when: many refused mutating requests
    answers = [user_api.post("/api/v1/bots/", {"name": f"b{n}"}, format="json") for n in range(20)]

    # then: one row, naming the user, saying that the rest are not recorded
    assert {answer.status_code for answer in answers} == {429}
    rows = _refusal_rows()
    assert len(rows) == 1
    row = rows[0]
    assert (row.user_id, row.username, row.status, row.action) == (user.pk, user.username, "denied", "bot_create")
    assert row.details["reason"] == "rate_limited"
    assert row.details["scope"] == "user"
    assert row.details["limit"] == "3/hour"
    assert row.details["credentials"] == "bearer"
    assert "not recorded" in row.details["note"]
    assert row.details["window_ends"] == int(answers[0]["X-RateLimit-Reset"])


def test_each_rate_limited_caller_gets_its_own_row(user_api, other_api, user, other_user, settings):
    # given: both users spent their budget
    _spend_the_user_budget(user_api, settings)
    for _ in range(4):
        other_api.get("/api/v1/bots/")

    # when
    for _ in range(3):
        assert user_api.post("/api/v1/bots/", {}, format="json").status_code == 429
        assert other_api.post("/api/v1/bots/", {}, format="json").status_code == 429

    # then
    assert sorted(row.user_id for row in _refusal_rows()) == sorted([user.pk, other_user.pk])


def test_a_rate_limited_http_basic_caller_is_audited_under_the_account_it_named(api, user, settings):
    # given
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "user": "1/hour"}
    _not_near_a_window_edge()
    basic = "Basic " + base64.b64encode(f"{user.username}:whatever".encode()).decode()
    api.get("/api/v1/bots/", HTTP_AUTHORIZATION=basic)

    # when
    answers = [api.post("/api/v1/bots/1/ft/api/v1/forceexit", HTTP_AUTHORIZATION=basic) for _ in range(5)]

    # then
    assert {answer.status_code for answer in answers} == {429}
    [row] = _refusal_rows()
    assert row.user_id == user.pk
    assert row.details["credentials"] == "http_basic_unchecked"


def test_a_rate_limited_anonymous_login_flood_writes_one_row(api, settings):
    # given
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": "2/minute"}
    _not_near_a_window_edge(period=60, margin=5)

    # when
    answers = [
        api.post("/api/v1/auth/login/json", {"username": "nobody", "password": "x"}, format="json") for _ in range(30)
    ]

    # then
    assert [answer.status_code for answer in answers] == [401, 401] + [429] * 28
    [row] = _refusal_rows()
    assert (row.user_id, row.action, row.ip_address) == (None, "login", "127.0.0.1")
    assert row.details["scope"] == "login"

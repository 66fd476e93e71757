"""The error contract: every status under /api/ answers JSON ``{"detail": ...}``, never HTML."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import path
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

import multibot.urls
from multibot import errors
from tests.factories import make_bot

BOTS = "/api/v1/bots/"
HEALTH = "/api/v1/monitoring/health"


def assert_json_detail(response: Any, status: int) -> Any:
    """``status`` with a JSON body ``{"detail": ...}`` and nothing else; returns the detail."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    assert b"<html" not in response.content.lower()
    body = response.json()
    assert set(body) == {"detail"}, body
    return body["detail"]


def assert_string_detail(response: Any, status: int) -> str:
    detail = assert_json_detail(response, status)
    assert isinstance(detail, str)
    assert detail
    return detail


# -- 400 ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_unparseable_json_body_is_a_400_with_a_json_invalid_error(user_api):
    # when
    response = user_api.post(BOTS, data='{"name": "MyBot", ', content_type="application/json")

    # then
    detail = assert_json_detail(response, 400)
    assert isinstance(detail, list)
    assert len(detail) == 1
    error = detail[0]
    assert set(error) == {"type", "loc", "msg", "input"}
    assert error["type"] == "json_invalid"
    assert error["loc"] == ["body"]
    assert isinstance(error["msg"], str)
    assert error["msg"]


# -- 401 ---------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), [("get", BOTS), ("post", BOTS), ("get", "/api/v1/users/")])
def test_no_token_is_a_401_not_authenticated_with_a_www_authenticate_header(api, method, path):
    response = getattr(api, method)(path, {}, format="json")

    assert assert_json_detail(response, 401) == "Not authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_a_garbage_token_is_a_401_with_a_sentence(api):
    # given
    api.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")

    # when
    response = api.get(BOTS)

    # then
    assert_string_detail(response, 401)
    assert "WWW-Authenticate" in response


# -- 403 ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_non_superuser_listing_users_is_a_403_not_enough_permissions(user_api):
    response = user_api.get("/api/v1/users/")

    assert assert_json_detail(response, 403) == "Not enough permissions"


# -- 404 ---------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/nothing-here/", "/api/nothing", "/api/v1/bots/x"])
def test_an_unknown_api_path_is_a_json_404_without_a_token(api, path):
    assert_string_detail(api.get(path), 404)


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_an_unknown_api_path_is_a_json_404_with_a_token(user_api, method):
    assert_string_detail(getattr(user_api, method)("/api/v1/nothing-here"), 404)


@pytest.mark.django_db
def test_a_foreign_bot_is_a_404_bot_not_found(other_user, user_api):
    bot = make_bot(owner=other_user)

    response = user_api.get(f"{BOTS}{bot.pk}")

    assert assert_json_detail(response, 404) == "Bot not found"


# -- 405 ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_wrong_method_is_a_json_405_with_an_allow_header(api):
    response = api.delete(HEALTH)

    assert_string_detail(response, 405)
    allowed = {method.strip() for method in response["Allow"].split(",")}
    assert "GET" in allowed
    assert "DELETE" not in allowed


@pytest.mark.django_db
def test_a_wrong_method_on_a_bot_is_a_json_405(user, user_api):
    bot = make_bot(owner=user)

    response = user_api.post(f"{BOTS}{bot.pk}", {}, format="json")

    assert_string_detail(response, 405)
    assert "POST" not in {method.strip() for method in response["Allow"].split(",")}


# -- 415 ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_body_of_an_unsupported_content_type_is_a_json_415(user_api):
    response = user_api.post(BOTS, data="name=MyBot", content_type="text/plain")

    detail = assert_string_detail(response, 415)
    assert "text/plain" in detail


# -- 422 ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_validation_error_is_a_422_listing_type_loc_msg_and_input(user_api):
    # when
    body = {"name": "MyBot", "strategy_name": "TestStrategy", "stake_currency": "USDT", "stake_amount": -100}
    response = user_api.post(BOTS, body, format="json")

    # then
    detail = assert_json_detail(response, 422)
    assert detail == [
        {
            "type": "value_error",
            "loc": ["body", "stake_amount"],
            "msg": "ensure this value is greater than 0",
            "input": -100,
        }
    ]


@pytest.mark.django_db
def test_several_missing_fields_are_each_reported_as_missing(user_api):
    response = user_api.post(BOTS, {}, format="json")

    detail = assert_json_detail(response, 422)
    assert {tuple(error["loc"]) for error in detail} == {
        ("body", "name"),
        ("body", "strategy_name"),
        ("body", "stake_amount"),
    }
    assert {error["type"] for error in detail} == {"missing"}


# -- 429 ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_too_many_health_checks_is_a_json_429_with_retry_after(api, settings):
    # given
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "health": "2/minute"}

    # when
    answers = [api.get(HEALTH) for _ in range(3)]

    # then
    assert [response.status_code for response in answers[:2]] == [200, 200]
    refused = answers[2]
    assert_string_detail(refused, 429)
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["X-RateLimit-Limit"] == "2"
    assert refused["X-RateLimit-Remaining"] == "0"


# -- 500 ---------------------------------------------------------------------------------------


def _crash(**kwargs: Any) -> Any:
    raise RuntimeError("kaboom-internal-detail")


@pytest.mark.django_db
def test_a_crash_in_a_view_is_a_json_500_without_internals(user, user_api, monkeypatch, caplog):
    # given
    monkeypatch.setattr("bots.apis.bot_list", _crash)
    user_api.raise_request_exception = False

    # when
    response = user_api.get(BOTS)

    # then
    assert assert_json_detail(response, 500) == "Internal server error"
    assert b"kaboom" not in response.content
    assert b"Traceback" not in response.content
    # The traceback is logged for operators.
    logged_errors = [str(record.exc_info[1]) for record in caplog.records if record.exc_info]
    assert "kaboom-internal-detail" in logged_errors


@pytest.mark.django_db
def test_a_crash_in_a_selector_of_another_view_is_a_json_500(user_api, monkeypatch):
    monkeypatch.setattr("multibot.apis.monitoring.bot_statistics", _crash)
    user_api.raise_request_exception = False

    response = user_api.get("/api/v1/monitoring/monitoring/status")

    assert assert_json_detail(response, 500) == "Internal server error"


def _broken_view(request: Any) -> Any:
    raise RuntimeError("kaboom-internal-detail")


# A plain Django view under /api/ (used through pytest.mark.urls below): its crash never meets DRF.
urlpatterns = [path("api/v1/broken", _broken_view), *multibot.urls.urlpatterns]


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_a_crash_outside_drf_under_api_is_a_json_500(user_api):
    # given
    user_api.raise_request_exception = False

    # when
    response = user_api.get("/api/v1/broken")

    # then
    assert assert_json_detail(response, 500) == "Internal server error"
    assert b"kaboom" not in response.content


# -- HTML outside /api/ ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_docs_serve_html_that_loads_only_local_static_files(api):
    # when
    response = api.get("/api/docs/")

    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert references, "the docs page loads no scripts or styles?"
    remote = [ref for ref in references if re.match(r"^(?:https?:)?//", ref)]
    assert remote == []
    assert not re.search(r"""\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    static = [ref for ref in references if ref.startswith("/static/")]
    assert any(ref.endswith(".js") for ref in static)
    assert any(ref.endswith(".css") for ref in static)
    for ref in static:
        assert api.get(ref).status_code == 200, ref


@pytest.mark.django_db
def test_the_schema_is_served(api):
    response = api.get("/api/schema/")

    assert response.status_code == 200
    assert b"/api/v1/bots/" in response.content


@pytest.mark.django_db
def test_the_admin_still_serves_html(api):
    login_page = api.get("/admin/login/")
    redirect = api.get("/admin/")

    assert login_page.status_code == 200
    assert login_page["Content-Type"].startswith("text/html")
    assert b"<html" in login_page.content.lower()
    assert redirect.status_code == 302
    assert "/admin/login/" in redirect["Location"]


@pytest.mark.django_db
def test_an_unknown_path_outside_the_api_is_not_turned_into_json(api):
    response = api.get("/not-the-api/")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


# -- domain errors raised by services, mapped once ----------------------------------------------
@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.NotFoundError("Bot not found"), 404),
        (errors.ForbiddenError("Only superusers may do that"), 403),
        (errors.ConflictError("The bot is running; stop it first."), 409),
        (errors.UnavailableError("No free bot API port left"), 503),
    ],
)
def test_a_domain_error_becomes_its_status_with_its_sentence(error, status):
    response = errors.api_exception_handler(error, {})

    assert response.status_code == status
    assert response.data == {"detail": error.message}


def test_an_invalid_input_becomes_a_422_naming_its_field_and_quoting_the_input():
    request = APIRequestFactory().post("/api/v1/bots/", {"name": "x y"}, format="json")
    context = {"request": Request(request, parsers=[JSONParser()])}

    response = errors.api_exception_handler(errors.InvalidInputError("name", "Use letters and digits."), context)

    assert response.status_code == 422
    assert response.data == {
        "detail": [{"type": "value_error", "loc": ["body", "name"], "msg": "Use letters and digits.", "input": "x y"}]
    }


def test_a_refused_credential_is_a_401_naming_the_scheme_of_the_view():
    class View:
        def get_authenticate_header(self, request: Any) -> str:
            return 'Bearer realm="api"'

    context = {"request": Request(APIRequestFactory().post("/api/v1/auth/login/json")), "view": View()}

    response = errors.api_exception_handler(errors.UnauthorizedError("Incorrect username or password"), context)

    assert response.status_code == 401
    assert response.data == {"detail": "Incorrect username or password"}
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_too_many_attempts_is_a_429_with_retry_after():
    response = errors.api_exception_handler(errors.TooManyAttemptsError("Locked for now.", retry_after=42), {})

    assert response.status_code == 429
    assert response["Retry-After"] == "42"
    assert response.data["detail"].startswith("Locked for now.")

"""The audit vocabulary is closed: every action the code can write is a member of AuditLog.Action.

Rows come from two places: the constructors of audit/events.py, and the middleware, which files a
request no service recorded under the action its view names. Both are checked here, the first by
reading the code, the second by asking the middleware about every URL pattern and mutating method.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver

from audit import events
from audit.middleware import MUTATING_METHODS, describe, view_action
from audit.models import AuditLog
from audit.resources import FLEET, Kind, bot_resource, data_resource, resource, stream_resource, user_resource

Action = AuditLog.Action
ROOT = Path(__file__).resolve().parents[2]

# Modules that write rows themselves rather than through a constructor: only the middleware, which
# must (it files whatever a view names).
WRITERS_OF_THEIR_OWN = {"audit/middleware.py"}


def source_files() -> Iterator[Path]:
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in {".venv", "tests"} or "migrations" in relative.parts:
            continue
        yield path


def audit_record_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "audit_record"
    ]


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((item.value for item in call.keywords if item.arg == name), None)


def action_members_named(node: ast.AST) -> set[str]:
    """``X`` of every ``Action.X`` / ``AuditLog.Action.X`` under ``node``."""
    return {
        sub.attr
        for sub in ast.walk(node)
        if isinstance(sub, ast.Attribute)
        and (getattr(sub.value, "id", None) == "Action" or getattr(sub.value, "attr", None) == "Action")
    }


def url_patterns() -> Iterator[tuple[str, URLPattern]]:
    def walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, URLPattern]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern), pattern

    yield from (
        (route, pattern) for route, pattern in walk(get_resolver().url_patterns, "") if route.startswith("api/v1/")
    )


def view_class_of(pattern: URLPattern) -> Any:
    return getattr(pattern.callback, "cls", None) or getattr(pattern.callback, "view_class", None)


# What the code writes


def test_only_the_constructors_and_the_listed_modules_call_audit_record():
    # when
    callers = {
        str(path.relative_to(ROOT)) for path in source_files() if audit_record_calls(ast.parse(path.read_text()))
    }

    # then: a new caller uses a constructor; a converted module leaves the list
    assert callers - {"audit/events.py", "audit/services.py"} == WRITERS_OF_THEIR_OWN


def test_every_constructor_names_its_action_by_a_constant():
    tree = ast.parse(Path(events.__file__).read_text())
    calls = audit_record_calls(tree)

    assert calls
    for call in calls:
        action = keyword(call, "action")
        assert action is not None, ast.unparse(call)
        # A constant, or a name bound to one (the command's member, an emergency step's), never text.
        assert not any(isinstance(node, ast.Constant | ast.JoinedStr) for node in ast.walk(action)), ast.unparse(call)
    assert action_members_named(tree) <= set(Action.names)


def literal_actions(node: ast.expr | None) -> list[str]:
    """The whole strings an ``action=`` can be (``"a" if x else "b"``); text built at run time is not read."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return literal_actions(node.body) + literal_actions(node.orelse)
    return []


def test_every_view_names_its_actions_with_members():
    for route, pattern in url_patterns():
        view_class = view_class_of(pattern)
        named = [getattr(view_class, "audit_action", None), *getattr(view_class, "audit_actions", {}).values()]
        for name in filter(None, named):
            assert name in Action.values, f"{route}: {view_class.__name__} names {name!r}"


def test_every_url_pattern_and_mutating_method_is_filed_under_a_member():
    # when
    filed = {view_action(pattern.callback, method) for _, pattern in url_patterns() for method in MUTATING_METHODS}

    # then
    assert all(isinstance(action, Action) for action in filed)
    assert filed == {
        Action.LOGIN,
        Action.TOKEN_REFRESH,
        Action.LOGOUT,
        Action.USER_CREATE,
        Action.USER_ACTIVATE,
        Action.USER_DEACTIVATE,
        Action.BOT_CREATE,
        Action.BOT_UPDATE,
        Action.BOT_DELETE,
        Action.BOT_START,
        Action.BOT_STOP,
        Action.BOT_RESTART,
        Action.BOT_KILL,
        Action.BOT_START_ALL,
        Action.BOT_STOP_ALL,
        Action.BOT_RESTART_ALL,
        Action.BOT_FT_PASSTHROUGH,
        Action.BOT_RELOAD_MODEL,
        Action.EMERGENCY_STOP_ALL,
        Action.DATA_UPLOAD,
        Action.STRATEGY_UPLOAD,
        Action.STRATEGY_DELETE,
        Action.DEAD_LETTER_REPLAY,
        Action.DEAD_LETTER_PURGE,
        Action.JOB_CREATE,
        Action.JOB_CANCEL,
        Action.HYPEROPT_APPLY,
        Action.FREQAI_MODEL_CREATE,
        Action.WS_TICKET,
        Action.API_REQUEST,
    }


def test_every_action_has_a_writer():
    # A constant nothing writes is a name the log will never show: it goes, or gets its constructor.
    constructed = {Action[name] for name in action_members_named(ast.parse(Path(events.__file__).read_text()))}
    filed = {view_action(pattern.callback, method) for _, pattern in url_patterns() for method in MUTATING_METHODS}

    assert set(Action) - constructed - filed == set()


# How the middleware names a request


@pytest.mark.parametrize(
    ("method", "path", "action", "resource"),
    [
        ("POST", "/api/v1/bots/", Action.BOT_CREATE, "bot"),
        ("PUT", "/api/v1/bots/7", Action.BOT_UPDATE, "bot:7"),
        ("PATCH", "/api/v1/bots/7/", Action.BOT_UPDATE, "bot:7"),
        ("DELETE", "/api/v1/bots/7", Action.BOT_DELETE, "bot:7"),
        ("POST", "/api/v1/bots/7/start", Action.BOT_START, "bot:7"),
        ("POST", "/api/v1/bots/7/restart", Action.BOT_RESTART, "bot:7"),
        ("POST", "/api/v1/bots/stop-all", Action.BOT_STOP_ALL, "bot"),
        ("POST", "/api/v1/bots/alpha/emergency-stop", Action.BOT_KILL, "bot"),
        ("POST", "/api/v1/emergency/stop-all", Action.EMERGENCY_STOP_ALL, "emergency-stop-all"),
        ("DELETE", "/api/v1/bots/7/ft/api/v1/trades/3", Action.BOT_FT_PASSTHROUGH, "bot:7"),
        ("POST", "/api/v1/users/", Action.USER_CREATE, "user"),
        ("POST", "/api/v1/users/3/deactivate", Action.USER_DEACTIVATE, "user:3"),
        ("POST", "/api/v1/auth/login/json", Action.LOGIN, "login-json"),
        ("POST", "/api/v1/streams/system:events/dlq/replay", Action.DEAD_LETTER_REPLAY, "stream:system:events"),
        ("POST", "/api/v1/data/upload", Action.DATA_UPLOAD, "data"),
        ("POST", "/api/v1/strategies/upload", Action.STRATEGY_UPLOAD, "strategy"),
        ("DELETE", "/api/v1/strategies/MyStrategy", Action.STRATEGY_DELETE, "strategy:MyStrategy"),
        ("POST", "/api/v1/hyperopt/results/12/apply", Action.HYPEROPT_APPLY, "job:12"),
        ("POST", "/api/v1/ws/ticket", Action.WS_TICKET, "user"),
        # Methods a path does not serve, and paths that do not exist: one constant, the path in details.
        ("POST", "/api/v1/bots/7", Action.API_REQUEST, "bot:7"),
        ("POST", "/api/v1/bots/7/status", Action.API_REQUEST, "bot:7"),
        ("DELETE", "/api/v1/users/3", Action.API_REQUEST, "user:3"),
        ("PUT", "/api/v1/auth/login", Action.API_REQUEST, "login"),
        ("POST", "/api/v1/audit/", Action.API_REQUEST, "audit"),
        ("POST", "/api/v1/nowhere", Action.API_REQUEST, ""),
    ],
)
def test_the_middleware_names_a_request_by_its_view(method, path, action, resource):
    request = RequestFactory().generic(method, path)

    assert describe(request) == (action, resource)


@pytest.mark.django_db
def test_a_method_a_path_does_not_serve_is_recorded_as_an_api_request(user_api, user):
    # when
    response = user_api.post("/api/v1/bots/7/status")

    # then
    assert response.status_code == 405
    row = AuditLog.objects.get()
    assert (row.action, row.status, row.user_id, row.resource) == ("api_request", "failure", user.pk, "bot:7")
    assert row.details == {
        "method": "POST",
        "path": "/api/v1/bots/7/status",
        "status_code": 405,
        "detail": 'Method "POST" not allowed.',
    }


@pytest.mark.django_db
def test_a_mutating_request_to_an_unknown_path_is_recorded_as_an_api_request(user_api):
    # when
    response = user_api.delete("/api/v1/nowhere/at/all")

    # then
    assert response.status_code == 404
    row = AuditLog.objects.get()
    assert (row.action, row.resource) == ("api_request", "")
    assert (row.details["method"], row.details["path"]) == ("DELETE", "/api/v1/nowhere/at/all")


# Resources


def test_resources_are_kind_and_key():
    assert resource(Kind.BOT, 7) == bot_resource(7) == "bot:7"
    assert user_resource(3) == "user:3"
    assert stream_resource("trading:mgmt:status") == "stream:trading:mgmt:status"
    assert data_resource(exchange="replay", pair="BTC/USDT", timeframe="5m") == "data:replay:BTC/USDT:5m"
    assert resource(Kind.DATA) == "data"
    assert FLEET == "bots"

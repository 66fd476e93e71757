"""The client package itself: its version is the API's, and it has a method for every operation of the API."""

from __future__ import annotations

import importlib
import inspect
import re
import tomllib
from typing import Any

from django.conf import settings
from drf_spectacular.generators import SchemaGenerator

from tests.client.conftest import CLIENT_ROOT

import multibot_client  # isort: skip - importable once tests/client/conftest.py put client/ on the path
from multibot_client import AsyncClient, Client, endpoints

# Operations the client reaches through another of the same effect.
SAME_AS_ANOTHER = {
    ("POST", "/api/v1/auth/login"): "the form login: Client.login uses its JSON twin, auth/login/json",
    ("PUT", "/api/v1/bots/{id}/"): "PUT merges like PATCH on this API: Client.bot_update sends PATCH",
    ("PUT", "/api/v1/freqai/models/{id}"): "PUT merges like PATCH: Client.freqai_model_update sends PATCH",
}
# The login, refresh and logout requests, sent by Client.login, the refresh of tokens, Client.logout.
SESSION_CALLS = {"auth_login", "auth_refresh", "auth_logout"}
SAMPLES: dict[str, Any] = {
    "bot_id": 1, "bot": "bot1", "user_id": 1, "job_id": 1, "task_id": 1, "task_ids": [1, 2], "name": "Crossing",
    "username": "alice", "password": "secret", "refresh_token": "token", "strategy_name": "Crossing",
    "file": b"data", "pair": "BTC/USDT", "timeframe": "5m", "timerange": "20250101-20250102", "path": "profit",
    "host": "beta", "model_id": 1, "model_type": "LightGBMRegressor",
}  # fmt: skip


def _operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    methods = {"get", "post", "put", "patch", "delete"}
    return {(method.upper(), path) for path, item in schema["paths"].items() for method in item if method in methods}


def _calls(name: str, build: Any) -> list[endpoints.Call[Any]]:
    parameters = inspect.signature(build).parameters.values()
    empty = inspect.Parameter.empty
    required = [parameter.name for parameter in parameters
                if parameter.default is empty and parameter.kind is not parameter.VAR_KEYWORD]  # fmt: skip
    if name == "ft":
        return [build(1, method, "profit") for method in ("GET", "POST", "PUT", "PATCH", "DELETE")]
    return [build(**{parameter: SAMPLES[parameter] for parameter in required})]


def _route(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{ft_path\\\}", ".+", re.escape(template.removeprefix("/api/v1/")))
    return re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", pattern) + "$")


def test_the_clients_version_is_the_apis():
    assert multibot_client.__version__ == settings.SPECTACULAR_SETTINGS["VERSION"]
    project = tomllib.loads((CLIENT_ROOT / "pyproject.toml").read_text())
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "multibot_client.version.__version__"}


def test_the_package_names_itself_its_script_and_only_light_dependencies():
    project = tomllib.loads((CLIENT_ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "multibot-client"
    module, _, attribute = project["scripts"]["multibot"].partition(":")
    assert (module, attribute) == ("multibot_client.cli", "main")
    assert callable(getattr(importlib.import_module(module), attribute))
    assert {re.split(r"[<>=]", requirement)[0] for requirement in project["dependencies"]} == {
        "httpx", "websockets", "click", "rich"}  # fmt: skip


def test_every_operation_of_the_api_has_a_client_method():
    # given: what each endpoint function sends
    sent: dict[tuple[str, str], str] = {}
    for name, build in endpoints.ENDPOINTS.items():
        for call in _calls(name, build):
            sent[(call.method, call.path)] = name

    # then: every operation of the schema is one of them (or reached through its twin)
    uncovered = []
    for method, template in sorted(_operations()):
        route = _route(template)
        if not any(verb == method and route.match(path) for verb, path in sent) and \
                (method, template) not in SAME_AS_ANOTHER:  # fmt: skip
            uncovered.append(f"{method} {template}")
    assert uncovered == [], "operations without a client method"

    # and every endpoint is a method of both clients, the asyncio one's awaited
    for name in set(endpoints.ENDPOINTS) - SESSION_CALLS:
        assert callable(getattr(Client, name)), name
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)), name
    assert all(callable(getattr(Client, name)) for name in ("login", "refresh", "logout", "events", "job_watch"))


def test_a_method_takes_its_endpoints_own_arguments():
    signature = inspect.signature(Client.backtest_start)
    assert list(signature.parameters)[:3] == ["self", "strategy_name", "timerange"]
    assert signature.parameters["timerange"].kind is inspect.Parameter.KEYWORD_ONLY
    assert Client.bot_start.__doc__ == endpoints.bot_start.__doc__

"""The strategy library through the API: list, upload, versions, details, source, deletion, ownership."""

from __future__ import annotations

import hashlib
import json
import threading
import time

import httpx
import pytest

from audit.models import AuditLog
from strategies.library import version_path
from strategies.models import Strategy, StrategyVersion
from strategies.services import strategy_install_builtins
from tests.factories import make_bot
from tests.strategies.conftest import strategy_text, upload

pytestmark = pytest.mark.django_db


def test_an_accepted_upload_is_stored_by_sha256_read_only_and_audited(user_api, user):
    text = strategy_text()

    response = upload(user_api, text)

    assert response.status_code == 201, response.content
    body = response.json()
    sha256 = hashlib.sha256(text.encode()).hexdigest()
    assert (body["status"], body["strategy_name"], body["new_version"]) == ("uploaded", "MyStrategy", True)
    assert body["version"]["sha256"] == sha256
    assert body["version"]["uploaded_by"] == user.username
    stored = version_path(sha256)
    assert stored.read_bytes() == text.encode()
    assert stored.stat().st_mode & 0o777 == 0o400
    row = AuditLog.objects.get(action=AuditLog.Action.STRATEGY_UPLOAD)
    assert (row.user_id, row.resource, row.status) == (user.pk, "strategy:MyStrategy", "success")
    assert row.details["sha256"] == sha256 and row.details["new_version"] is True


def test_the_same_bytes_uploaded_again_are_the_same_version(user_api):
    first = upload(user_api, strategy_text()).json()

    again = upload(user_api, strategy_text())

    assert again.status_code == 200
    assert again.json()["new_version"] is False
    assert again.json()["version"]["sha256"] == first["version"]["sha256"]
    assert StrategyVersion.objects.count() == 1


def test_new_bytes_are_a_new_version_and_the_current_one_and_an_older_one_again_is_current_again(user_api):
    first = upload(user_api, strategy_text(timeframe="15m")).json()["version"]["sha256"]
    second = upload(user_api, strategy_text(timeframe="1h")).json()["version"]["sha256"]

    detail = user_api.get("/api/v1/strategies/MyStrategy").json()
    assert [version["sha256"] for version in detail["versions"]] == [second, first]
    assert (detail["current_version"], detail["timeframe"]) == (second, "1h")

    upload(user_api, strategy_text(timeframe="15m"))
    detail = user_api.get("/api/v1/strategies/MyStrategy").json()
    assert (detail["current_version"], detail["timeframe"]) == (first, "15m")
    assert len(detail["versions"]) == 2


def test_the_detail_names_the_class_its_timeframe_versions_bots_and_hyperoptable_parameters(user_api, user):
    upload(user_api, strategy_text())
    bot = make_bot(owner=user, strategy_name="MyStrategy")

    response = user_api.get("/api/v1/strategies/MyStrategy")

    assert response.status_code == 200
    detail = response.json()
    assert (detail["name"], detail["class_name"], detail["builtin"], detail["timeframe"]) == (
        "MyStrategy", "MyStrategy", False, "15m",
    )  # fmt: skip
    assert detail["versions"][0]["uploaded_by"] == user.username
    assert [item["id"] for item in detail["bots"]] == [bot.pk]
    by_name = {item["name"]: item for item in detail["parameters"]}
    assert by_name["buy_rsi"] == {"name": "buy_rsi", "space": "buy", "type": "IntParameter", "value": 30,
                                       "optimize": True, "low": 10, "high": 40}  # fmt: skip
    assert (by_name["sell_ratio"]["space"], by_name["sell_ratio"]["low"], by_name["sell_ratio"]["high"]) == (
        "sell", 0.1, 0.9,
    )  # fmt: skip
    assert "source" not in detail


def test_the_detail_gives_the_code_with_source(user_api):
    text = strategy_text()
    upload(user_api, text)

    assert user_api.get("/api/v1/strategies/MyStrategy?source=1").json()["source"] == text


def test_a_parameter_file_is_stored_with_the_version_in_freqtrades_format(user_api):
    parameters = {"params": {"buy": {"buy_rsi": 22}, "stoploss": {"stoploss": -0.05}}}

    response = upload(user_api, strategy_text(), parameters=json.dumps(parameters))

    assert response.status_code == 201, response.content
    assert response.json()["version"]["has_parameters"] is True
    detail = user_api.get("/api/v1/strategies/MyStrategy").json()
    assert detail["parameter_file"] == {"strategy_name": "MyStrategy", **parameters}
    # freqtrade loaded the file: the parameter's value is the file's, not the class's default of 30.
    assert {item["name"]: item["value"] for item in detail["parameters"]}["buy_rsi"] == 22
    # The same code with other parameters is another version.
    other = upload(user_api, strategy_text(), parameters=json.dumps({"params": {"buy": {"buy_rsi": 33}}}))
    assert other.status_code == 201 and StrategyVersion.objects.count() == 2


def test_the_list_holds_the_callers_own_strategies_and_the_builtins_never_another_users(user_api, other_api):
    strategy_install_builtins()
    upload(user_api, strategy_text("MineOnly"), filename="MineOnly.py")

    mine, theirs = user_api.get("/api/v1/strategies/").json(), other_api.get("/api/v1/strategies").json()

    builtins = ["FreqaiExampleHybridStrategy", "FreqaiExampleStrategy", "SampleStrategy"]
    assert mine == sorted([*builtins, "MineOnly"])
    assert theirs == builtins


def test_another_users_strategy_is_a_404_for_detail_source_and_delete(user_api, other_api):
    upload(user_api, strategy_text())

    assert other_api.get("/api/v1/strategies/MyStrategy").status_code == 404
    assert other_api.get("/api/v1/strategies/MyStrategy?source=1").status_code == 404
    assert other_api.delete("/api/v1/strategies/MyStrategy").status_code == 404
    assert Strategy.objects.filter(name="MyStrategy").exists()


def test_two_users_may_each_have_a_strategy_of_the_same_name(user_api, other_api):
    upload(user_api, strategy_text(timeframe="15m"))
    upload(other_api, strategy_text(timeframe="4h"))

    assert user_api.get("/api/v1/strategies/MyStrategy").json()["timeframe"] == "15m"
    assert other_api.get("/api/v1/strategies/MyStrategy").json()["timeframe"] == "4h"


def test_a_strategy_is_deleted_with_its_versions_and_audited(user_api, user):
    upload(user_api, strategy_text())

    response = user_api.delete("/api/v1/strategies/MyStrategy")

    assert response.status_code == 204
    assert not Strategy.objects.exists() and not StrategyVersion.objects.exists()
    assert user_api.get("/api/v1/strategies/MyStrategy").status_code == 404
    row = AuditLog.objects.get(action=AuditLog.Action.STRATEGY_DELETE)
    assert (row.user_id, row.resource, row.details["versions"]) == (user.pk, "strategy:MyStrategy", 1)
    assert row.details["owner"] == user.username


def test_a_strategy_a_running_bot_uses_cannot_be_deleted(user_api, user):
    upload(user_api, strategy_text())
    bot = make_bot(owner=user, strategy_name="MyStrategy")
    bot.status, bot.desired_state = "running", "running"
    bot.save(update_fields=["status", "desired_state"])

    response = user_api.delete("/api/v1/strategies/MyStrategy")

    assert response.status_code == 409
    assert bot.name in response.json()["detail"]
    assert Strategy.objects.filter(name="MyStrategy").exists()


def test_a_builtin_cannot_be_deleted_nor_shadowed_by_an_upload(user_api):
    strategy_install_builtins()

    assert user_api.delete("/api/v1/strategies/SampleStrategy").status_code == 403
    response = upload(user_api, strategy_text("SampleStrategy"), filename="SampleStrategy.py")
    assert response.status_code == 422
    assert "built-in" in response.json()["detail"][0]["msg"]


def test_a_name_that_is_not_a_class_name_does_not_reach_the_detail(user_api):
    assert user_api.get("/api/v1/strategies/..%2Fsecret").status_code == 404
    assert user_api.get("/api/v1/strategies/my-strategy").status_code == 404


@pytest.mark.slow
@pytest.mark.usefixtures("committed_db")
def test_a_real_server_keeps_answering_while_an_upload_loops_forever_and_then_takes_a_good_one():
    from tests.factories import access_token_for, make_user
    from tests.support.processes import database_url, server_env, uvicorn_server

    # given: a real uvicorn process, and an upload whose module never finishes importing, in flight
    limit = 6
    headers = {"Authorization": f"Bearer {access_token_for(make_user())}"}
    env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url(),
                     MULTIBOT_STRATEGY_DRY_LOAD_SECONDS=str(limit), MULTIBOT_RATE_LIMITS="upload=100/hour")  # fmt: skip

    def send(base: str, text: str) -> httpx.Response:
        files = {"file": ("MyStrategy.py", text.encode(), "text/x-python")}
        return httpx.post(f"{base}/api/v1/strategies/upload", headers=headers, files=files, timeout=60)

    with uvicorn_server(env) as base:
        looping: dict[str, httpx.Response] = {}
        sender = threading.Thread(target=lambda: looping.update(response=send(base, strategy_text(
            prelude="while True:\n    pass"))))  # fmt: skip
        started = time.monotonic()
        sender.start()

        # when: other requests arrive meanwhile
        answers = []
        while sender.is_alive() and time.monotonic() - started < limit + 10:
            asked = time.monotonic()
            status = httpx.get(f"{base}/api/v1/strategies/", headers=headers, timeout=10).status_code
            answers.append((status, time.monotonic() - asked))
            time.sleep(0.5)
        sender.join(timeout=10)
        refused_after = time.monotonic() - started
        accepted = send(base, strategy_text())

    # then: every one answered at once, the looping upload was refused at its limit, and the server still works
    assert len(answers) >= limit
    assert all(status == 200 and seconds < 1 for status, seconds in answers), answers
    assert looping["response"].status_code == 422
    assert "took longer than 6 s" in looping["response"].json()["detail"][0]["msg"]
    assert limit <= refused_after < limit + 4
    assert accepted.status_code == 201, accepted.text


def test_the_openapi_schema_documents_the_strategy_endpoints(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()

    paths = schema["paths"]
    assert "get" in paths["/api/v1/strategies/"]
    assert "multipart/form-data" in paths["/api/v1/strategies/upload"]["post"]["requestBody"]["content"]
    detail = next(value for key, value in paths.items() if key.startswith("/api/v1/strategies/{name}"))
    assert {"get", "delete"} <= set(detail)
    assert "StrategyDetailOutput" in schema["components"]["schemas"]


def test_a_superuser_reaches_another_users_strategy_by_naming_its_owner_and_nobody_else_does(
    user_api, user, other_api, admin_api
):
    upload(user_api, strategy_text())

    assert admin_api.get("/api/v1/strategies/MyStrategy").status_code == 404
    assert admin_api.get(f"/api/v1/strategies/MyStrategy?owner={user.username}").json()["name"] == "MyStrategy"
    assert other_api.get(f"/api/v1/strategies/MyStrategy?owner={user.username}").status_code == 404
    assert other_api.delete(f"/api/v1/strategies/MyStrategy?owner={user.username}").status_code == 404
    assert admin_api.delete(f"/api/v1/strategies/MyStrategy?owner={user.username}").status_code == 204
    assert not Strategy.objects.exists()


def test_the_admin_shows_strategies_and_changes_none(user_api, superuser):
    from django.test import Client

    upload(user_api, strategy_text())
    client = Client()
    client.force_login(superuser)

    listed = client.get("/admin/strategies/strategy/")
    version = StrategyVersion.objects.get()
    changed = client.post(f"/admin/strategies/strategyversion/{version.pk}/change/", {"sha256": "0" * 64})

    assert listed.status_code == 200 and b"MyStrategy" in listed.content
    assert changed.status_code == 403
    assert StrategyVersion.objects.get().sha256 == version.sha256

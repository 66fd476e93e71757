"""Lifecycle commands as the API answers them (the gateway itself is exercised in test_gateway.py)."""

from __future__ import annotations

import json

import pytest

from bots.models import Bot
from multibot.redis_client import redis_client
from strategies.library import install_builtin_strategies
from streams.bus import stream_key
from tests.factories import make_bot

pytestmark = pytest.mark.django_db


def sent_commands() -> list[tuple[str, dict]]:
    entries = redis_client().xrange(stream_key("mgmt:trading:commands"))
    return [(fields["type"], json.loads(fields["payload"])) for _, fields in entries]


@pytest.fixture(autouse=True)
def _library() -> None:
    install_builtin_strategies()


def test_start_answers_at_once_and_sends_one_command(user, user_api, django_capture_on_commit_callbacks):
    bot = make_bot(owner=user)
    with django_capture_on_commit_callbacks(execute=True):
        response = user_api.post(f"/api/v1/bots/{bot.pk}/start")
    assert response.status_code == 202
    assert response.json() == {"status": "start_command_sent", "bot_name": bot.name, "bot_id": bot.pk}
    assert sent_commands() == [("bot_start", {"bot_id": bot.pk, "requested_by": user.username})]
    bot.refresh_from_db()
    assert bot.desired_state == "running" and bot.status == "stopped"  # the gateway reports the rest


def test_a_bot_whose_strategy_is_missing_is_refused_and_nothing_changes(user, user_api):
    bot = make_bot(owner=user, strategy_name="NoSuchStrategy")
    response = user_api.post(f"/api/v1/bots/{bot.pk}/start")
    assert response.status_code == 409
    assert "NoSuchStrategy" in response.json()["detail"]
    assert sent_commands() == []
    bot.refresh_from_db()
    assert bot.desired_state == "stopped"


def test_commands_that_change_nothing_are_refused(user, user_api):
    stopped = make_bot(owner=user)
    running = make_bot(owner=user)
    Bot.objects.filter(pk=running.pk).update(status="running", desired_state="running")
    assert user_api.post(f"/api/v1/bots/{stopped.pk}/stop").json()["detail"].endswith("already stopped.")
    assert user_api.post(f"/api/v1/bots/{running.pk}/start").status_code == 409
    assert user_api.post("/api/v1/bots/999999/start").status_code == 404
    assert sent_commands() == []


def test_fleet_commands_answer_per_bot(user, user_api, other_user, django_capture_on_commit_callbacks):
    mine = [make_bot(owner=user), make_bot(owner=user, strategy_name="Missing")]
    theirs = make_bot(owner=other_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = user_api.post("/api/v1/bots/start-all")
    assert response.status_code == 202
    results = {item["bot_id"]: item["status"] for item in response.json()["results"]}
    assert results == {mine[0].pk: "start_command_sent", mine[1].pk: "refused"}
    assert [payload["bot_id"] for _, payload in sent_commands()] == [mine[0].pk]
    assert theirs.pk not in results


def test_emergency_stop_all_covers_the_callers_bots_or_the_whole_fleet_for_a_superuser(
    user, other_user, user_api, admin_api, django_capture_on_commit_callbacks
):
    mine, theirs = make_bot(owner=user), make_bot(owner=other_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = user_api.post("/api/v1/emergency/stop-all", {"force_exit": True}, format="json")
    assert response.status_code == 202
    assert response.json()["message"] == "Emergency stop command sent."
    assert sent_commands() == [("emergency_stop", {"bot_ids": [mine.pk], "force_exit": True})]
    with django_capture_on_commit_callbacks(execute=True):
        admin_api.post("/api/v1/emergency/stop-all")
    assert sorted(sent_commands()[-1][1]["bot_ids"]) == sorted([mine.pk, theirs.pk])


def test_status_logs_and_process_of_a_stopped_bot(user, user_api):
    bot = make_bot(owner=user)
    status = user_api.get(f"/api/v1/bots/{bot.pk}/status").json()
    assert status["status"] == "success" and status["bot_status"] == "stopped" and status["pid"] is None
    assert user_api.get(f"/api/v1/bots/{bot.pk}/logs").json()["logs"] == []
    assert user_api.get(f"/api/v1/bots/{bot.pk}/logs?lines=0").status_code == 422
    assert user_api.get(f"/api/v1/bots/{bot.name}/process").json()["status"] == "not_running"


def test_a_status_report_older_than_the_applied_one_is_ignored(user):
    from bots.services import bot_status_apply

    bot = make_bot(owner=user)
    assert bot_status_apply(report={"bot_id": bot.pk, "status": "running", "pid": 42, "at": 200.0, "host": "h1"})
    assert not bot_status_apply(report={"bot_id": bot.pk, "status": "starting", "pid": 41, "at": 100.0})
    bot.refresh_from_db()
    assert (bot.status, bot.pid, bot.host) == ("running", 42, "h1")
    bot_status_apply(report={"bot_id": bot.pk, "status": "error", "at": 300.0, "detail": "boom"})
    bot.refresh_from_db()
    assert bot.status == "error" and bot.pid is None and bot.desired_state == "stopped"

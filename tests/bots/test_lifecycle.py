"""Lifecycle commands as the API answers them (the gateway itself is exercised in test_gateway.py)."""

from __future__ import annotations

import json

import pytest

from bots.commands import BotStatus, Command, DesiredState, build_bot_status
from bots.models import Bot
from bots.services import bot_status_apply
from multibot.redis_client import redis_client
from strategies.library import install_builtin_strategies
from streams.bus import stream_key
from streams.catalog import TRADING_COMMANDS
from tests.factories import break_row, make_bot

pytestmark = pytest.mark.django_db


def sent_commands() -> list[tuple[str, dict]]:
    entries = redis_client().xrange(stream_key(TRADING_COMMANDS))
    return [(fields["type"], json.loads(fields["payload"])) for _, fields in entries]


@pytest.fixture(autouse=True)
def _library() -> None:
    install_builtin_strategies()


def test_start_answers_at_once_and_sends_one_command(user, user_api, django_capture_on_commit_callbacks):
    bot = make_bot(owner=user)
    with django_capture_on_commit_callbacks(execute=True):
        response = user_api.post(f"/api/v1/bots/{bot.pk}/start")
    assert response.status_code == 202
    assert response.json() == {"status": "start_command_sent", "bot_name": bot.name, "bot_id": bot.pk, "host": ""}
    assert sent_commands() == [(Command.START, {"bot_id": bot.pk, "requested_by": user.username})]
    bot.refresh_from_db()
    assert bot.desired_state == DesiredState.RUNNING and bot.status == BotStatus.STOPPED  # the gateway does the rest


def test_a_bot_whose_strategy_is_missing_is_refused_and_nothing_changes(user, user_api):
    bot = make_bot(owner=user, strategy_name="NoSuchStrategy")
    response = user_api.post(f"/api/v1/bots/{bot.pk}/start")
    assert response.status_code == 409
    assert "NoSuchStrategy" in response.json()["detail"]
    assert sent_commands() == []
    bot.refresh_from_db()
    assert bot.desired_state == DesiredState.STOPPED


def test_commands_that_change_nothing_are_refused(user, user_api):
    stopped = make_bot(owner=user)
    running = make_bot(owner=user)
    Bot.objects.filter(pk=running.pk).update(status=BotStatus.RUNNING, desired_state=DesiredState.RUNNING)
    assert user_api.post(f"/api/v1/bots/{stopped.pk}/stop").json()["detail"].endswith("already stopped.")
    assert user_api.post(f"/api/v1/bots/{running.pk}/start").status_code == 409
    assert user_api.post("/api/v1/bots/999999/start").status_code == 404
    assert sent_commands() == []


def test_an_unresponsive_bot_is_already_up_to_start_and_can_be_stopped_restarted_and_killed(
    user, user_api, django_capture_on_commit_callbacks
):
    # given: a bot the gateway found unresponsive, its heartbeats in its status and in the listing
    bot = make_bot(owner=user)
    bot_status_apply(report=build_bot_status(bot_id=bot.pk, status=BotStatus.UNRESPONSIVE, at=1e9, host="", pid=4242,
                                             detail="its API has not answered for 6s"))  # fmt: skip
    Bot.objects.filter(pk=bot.pk).update(desired_state=DesiredState.RUNNING)
    status = user_api.get(f"/api/v1/bots/{bot.pk}/status").json()
    assert (status["bot_status"], status["pid"]) == ("unresponsive", 4242)
    assert status["detail"].startswith("its API has not answered")
    [listed] = [row for row in user_api.get("/api/v1/bots/").json() if row["id"] == bot.pk]
    assert listed["status"] == "unresponsive"
    assert {"gateway_seen_at", "api_answered_at"} <= set(listed)

    # then: a start changes nothing; a restart, a stop, a kill are sent
    start = user_api.post(f"/api/v1/bots/{bot.pk}/start")
    assert start.status_code == 409 and start.json()["detail"].endswith("is already unresponsive.")
    with django_capture_on_commit_callbacks(execute=True):
        for command in ("restart", "stop"):
            assert user_api.post(f"/api/v1/bots/{bot.pk}/{command}").status_code == 202
        assert user_api.post(f"/api/v1/bots/{bot.pk}/emergency-stop").status_code == 202
    assert [kind for kind, _ in sent_commands()] == [Command.RESTART, Command.STOP, Command.KILL]


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
    assert sent_commands() == [(Command.EMERGENCY_STOP, {"bot_ids": [mine.pk], "force_exit": True})]
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
    bot = make_bot(owner=user)
    assert bot_status_apply(report=build_bot_status(bot_id=bot.pk, status=BotStatus.RUNNING, pid=42, at=200.0,
                                                    host="h1"))  # fmt: skip
    assert not bot_status_apply(report=build_bot_status(bot_id=bot.pk, status=BotStatus.STARTING, pid=41, at=100.0,
                                                        host=""))  # fmt: skip
    bot.refresh_from_db()
    assert (bot.status, bot.pid, bot.host) == (BotStatus.RUNNING, 42, "h1")
    bot_status_apply(report=build_bot_status(bot_id=bot.pk, status=BotStatus.ERROR, at=300.0, detail="boom", host=""))
    bot.refresh_from_db()
    assert bot.status == BotStatus.ERROR and bot.pid is None and bot.desired_state == DesiredState.STOPPED


def running_fleet(owner, count: int = 3) -> list[Bot]:
    bots = [make_bot(owner=owner) for _ in range(count)]
    Bot.objects.filter(pk__in=[bot.pk for bot in bots]).update(status=BotStatus.RUNNING, pid=4242,
                                                                desired_state=DesiredState.RUNNING)  # fmt: skip
    return bots


def desired_states(bots: list[Bot]) -> dict[int, str]:
    return dict(Bot.objects.filter(pk__in=[bot.pk for bot in bots]).values_list("id", "desired_state"))


def test_emergency_stop_all_names_every_bot_even_one_whose_row_cannot_be_loaded(
    superuser, admin_api, django_capture_on_commit_callbacks
):
    # given: a fleet in which one row is broken
    bots = running_fleet(superuser)
    break_row(bots[1])

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post("/api/v1/emergency/stop-all", {"force_exit": True}, format="json")

    # then: every bot named, the broken one too, and every one sent to the gateway
    assert response.status_code == 202
    body = response.json()
    assert [(item["bot_id"], item["bot_name"], item["status"], item["was"]) for item in body["bots"]] == [
        (bot.pk, bot.name, "emergency_stop_command_sent", "running") for bot in bots]  # fmt: skip
    assert sent_commands() == [(Command.EMERGENCY_STOP, {"bot_ids": [bot.pk for bot in bots], "force_exit": True})]
    assert set(desired_states(bots).values()) == {DesiredState.STOPPED}


def test_stop_all_and_one_emergency_stop_reach_a_bot_whose_row_cannot_be_loaded(
    user, user_api, django_capture_on_commit_callbacks
):
    bots = running_fleet(user)
    broken = bots[0]
    break_row(broken)

    with django_capture_on_commit_callbacks(execute=True):
        fleet = user_api.post("/api/v1/bots/stop-all")
        by_name = user_api.post(f"/api/v1/bots/{broken.name}/emergency-stop")
        by_id = user_api.post(f"/api/v1/bots/{broken.pk}/stop")

    assert fleet.status_code == 202
    assert {item["bot_id"]: item["status"] for item in fleet.json()["results"]} == {
        bot.pk: "stop_command_sent" for bot in bots}  # fmt: skip
    assert by_name.status_code == 202 and by_name.json()["status"] == Command.KILL.answer
    assert by_id.status_code == 202  # it still runs (no report yet): a second stop is sent
    assert [kind for kind, _ in sent_commands()] == [Command.STOP] * 3 + [Command.KILL, Command.STOP]
    assert set(desired_states(bots).values()) == {DesiredState.STOPPED}


def test_the_gateways_reports_about_a_bot_whose_row_cannot_be_loaded_still_apply(user):
    bot = running_fleet(user, count=1)[0]
    break_row(bot)

    assert bot_status_apply(report=build_bot_status(bot_id=bot.pk, status=BotStatus.STOPPED, at=100.0, host="h1"))

    assert Bot.objects.filter(pk=bot.pk).values_list("status", "pid").get() == (BotStatus.STOPPED, None)

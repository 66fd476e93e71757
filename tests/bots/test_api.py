"""/api/v1/bots/: the seed document's CRUD, ownership, validation and secrets, end to end."""

from __future__ import annotations

import json
import logging
import socket
from datetime import datetime
from typing import Any

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.models import AuditLog
from bots.commands import BotStatus, Command, DesiredState, build_bot_status, read_bot_command
from bots.models import Bot
from marketdata.models import CandleSet
from tests.factories import make_bot, make_user, store_replay_markets

BOTS = "/api/v1/bots/"
SEED_BODY = {
    "name": "MyBot",
    "strategy_name": "TestStrategy",
    "exchange": "replay",
    "stake_currency": "USDT",
    "stake_amount": 100.0,
}
SEED_FIELDS = {
    "id", "name", "strategy_name", "exchange", "stake_currency", "stake_amount",
    "status", "total_trades", "profitable_trades", "total_profit", "created_at",
}  # fmt: skip
ADDED_FIELDS = {"timeframe", "pair_whitelist", "max_open_trades", "dry_run", "pid", "has_exchange_keys"}
EXCHANGE_KEY = "KEY-zq81-distinctive-exchange-key"
EXCHANGE_SECRET = "SECRET-w7p3-distinctive-exchange-secret"


def bot_url(bot: Bot | int) -> str:
    return f"{BOTS}{bot if isinstance(bot, int) else bot.pk}"


def assert_single_field_error(response: Any, field: str) -> dict[str, Any]:
    """The 422 contract: ``{"detail": [{type, loc, msg, input}]}`` with one error on ``field``."""
    assert response.status_code == 422, response.content
    assert response["Content-Type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert [error["loc"] for error in detail] == [["body", field]], detail
    error = detail[0]
    assert set(error) == {"type", "loc", "msg", "input"}
    assert isinstance(error["msg"], str)
    assert error["msg"]
    return error


# -- create ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_creates_a_bot_from_the_seed_body_with_the_seed_fields_and_defaults(user, user_api):
    # when
    response = user_api.post(BOTS, SEED_BODY, format="json")

    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert SEED_FIELDS | ADDED_FIELDS <= set(body)
    assert body["name"] == "MyBot"
    assert body["strategy_name"] == "TestStrategy"
    assert body["exchange"] == "replay"
    assert body["stake_currency"] == "USDT"
    assert type(body["stake_amount"]) in (int, float)
    assert body["stake_amount"] == 100.0
    assert body["status"] == "stopped"
    assert body["total_trades"] == 0
    assert body["profitable_trades"] == 0
    assert body["total_profit"] == 0.0
    assert type(body["total_profit"]) in (int, float)
    datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    assert body["timeframe"] == "5m"
    assert body["pair_whitelist"] == []
    assert body["max_open_trades"] == 3
    assert body["dry_run"] is True
    assert body["pid"] is None
    assert body["has_exchange_keys"] is False
    assert "exchange_key" not in body
    assert "exchange_secret" not in body

    bot = Bot.objects.get(pk=body["id"])
    assert bot.owner == user
    assert bot.name == "MyBot"
    assert float(bot.stake_amount) == 100.0


@pytest.mark.django_db
def test_it_accepts_binance_as_a_ccxt_exchange_id(user_api):
    response = user_api.post(BOTS, {**SEED_BODY, "exchange": "binance"}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["exchange"] == "binance"
    assert response.json()["dry_run"] is True
    assert Bot.objects.get(pk=response.json()["id"]).exchange == "binance"


@pytest.mark.django_db
def test_it_answers_the_created_bot_again_on_retrieve(user_api):
    # given
    created = user_api.post(BOTS, SEED_BODY, format="json").json()

    # when
    response = user_api.get(bot_url(created["id"]))

    # then
    assert response.status_code == 200
    assert response.json() == created


# -- list and ownership ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_list_shows_only_the_callers_bots(user, other_user, user_api):
    # given
    mine = [make_bot(owner=user), make_bot(owner=user)]
    make_bot(owner=other_user)

    # when
    response = user_api.get(BOTS)

    # then
    assert response.status_code == 200
    assert [bot["id"] for bot in response.json()] == [bot.pk for bot in mine]


@pytest.mark.django_db
def test_a_superuser_sees_every_users_bots(user, other_user, admin_api):
    # given
    bots = [make_bot(owner=user), make_bot(owner=other_user)]

    # when
    response = admin_api.get(BOTS)

    # then
    assert response.status_code == 200
    assert {bot["id"] for bot in response.json()} == {bot.pk for bot in bots}


@pytest.mark.django_db
def test_a_superuser_can_read_another_users_bot(user, admin_api):
    bot = make_bot(owner=user)

    response = admin_api.get(bot_url(bot))

    assert response.status_code == 200
    assert response.json()["name"] == bot.name


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("get", None),
        ("put", {"name": "Stolen", "stake_amount": 1}),
        ("patch", {"name": "Stolen", "stake_amount": 1}),
        ("delete", None),
    ],
)
def test_it_refuses_a_foreign_bot_as_not_found_and_leaves_it_alone(other_user, user_api, method, body):
    # given
    bot = make_bot(owner=other_user, name="TheirBot", stake_amount=50)

    # when
    response = getattr(user_api, method)(bot_url(bot), body, format="json")

    # then
    assert response.status_code == 404
    assert response.json() == {"detail": "Bot not found"}
    bot.refresh_from_db()
    assert bot.name == "TheirBot"
    assert float(bot.stake_amount) == 50.0
    assert bot.owner == other_user


@pytest.mark.django_db
def test_an_unknown_bot_id_is_not_found(user_api):
    response = user_api.get(bot_url(987654))

    assert response.status_code == 404
    assert response.json() == {"detail": "Bot not found"}


# -- update and delete -------------------------------------------------------------------------


@pytest.mark.django_db
def test_put_with_the_seed_partial_body_updates_only_those_fields(user, user_api):
    # given
    bot = make_bot(owner=user, name="MyBot", strategy_name="TestStrategy", timeframe="1h", stake_amount=100)

    # when
    response = user_api.put(bot_url(bot), {"name": "UpdatedBot", "stake_amount": 200.0}, format="json")

    # then
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "UpdatedBot"
    assert response.json()["stake_amount"] == 200.0
    bot.refresh_from_db()
    assert bot.name == "UpdatedBot"
    assert float(bot.stake_amount) == 200.0
    assert bot.strategy_name == "TestStrategy"
    assert bot.timeframe == "1h"


@pytest.mark.django_db
def test_patch_updates_the_bot_in_the_database(user, user_api):
    bot = make_bot(owner=user, timeframe="5m")

    response = user_api.patch(bot_url(bot), {"timeframe": "15m", "max_open_trades": 5}, format="json")

    assert response.status_code == 200, response.content
    bot.refresh_from_db()
    assert (bot.timeframe, bot.max_open_trades) == ("15m", 5)


@pytest.mark.django_db
def test_a_bot_may_keep_its_own_name_on_update(user, user_api):
    bot = make_bot(owner=user, name="SameName")

    response = user_api.put(bot_url(bot), {"name": "SameName", "stake_amount": 10}, format="json")

    assert response.status_code == 200, response.content
    bot.refresh_from_db()
    assert float(bot.stake_amount) == 10.0


@pytest.mark.django_db
def test_delete_removes_the_bot(user, user_api):
    # given
    bot = make_bot(owner=user)

    # when
    response = user_api.delete(bot_url(bot))

    # then
    assert response.status_code == 204
    assert not Bot.objects.filter(pk=bot.pk).exists()
    assert user_api.get(bot_url(bot)).status_code == 404


# -- mass assignment ---------------------------------------------------------------------------


def _protected_fields(other_user: Any) -> dict[str, Any]:
    return {
        "owner": other_user.pk,
        "owner_id": other_user.pk,
        "status": "running",
        "pid": 4242,
        "api_port": 1,
        "api_username": "intruder",
        "api_password": "chosen-by-the-caller",
        "jwt_secret_key": "chosen-by-the-caller",
        "ws_token": "chosen-by-the-caller",
        "total_trades": 99,
        "profitable_trades": 98,
        "total_profit": 12345.0,
        "id": 999999,
    }


def _assert_protected_fields_untouched(bot: Bot, owner: Any) -> None:
    assert bot.owner == owner
    assert bot.status == Bot.Status.STOPPED
    assert bot.pid is None
    assert settings.BOTS["api_port_first"] <= bot.api_port <= settings.BOTS["api_port_last"]
    assert bot.api_username != "intruder"
    assert "chosen-by-the-caller" not in (bot.api_password, bot.jwt_secret_key, bot.ws_token)
    assert bot.total_trades == 0
    assert bot.profitable_trades == 0
    assert float(bot.total_profit) == 0.0
    assert bot.pk != 999999


@pytest.mark.django_db
def test_a_create_body_cannot_set_owner_status_pid_ports_secrets_counters_or_id(user, other_user, user_api):
    # when
    response = user_api.post(BOTS, {**SEED_BODY, **_protected_fields(other_user)}, format="json")

    # then
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "stopped"
    assert response.json()["pid"] is None
    assert response.json()["id"] != 999999
    _assert_protected_fields_untouched(Bot.objects.get(name="MyBot"), owner=user)
    assert not Bot.objects.filter(owner=other_user).exists()


@pytest.mark.django_db
def test_an_update_body_cannot_set_owner_status_pid_ports_secrets_counters_or_id(user, other_user, user_api):
    # given
    bot = make_bot(owner=user)
    before = Bot.objects.get(pk=bot.pk)

    # when
    body = {"name": "Renamed", **_protected_fields(other_user)}
    put = user_api.put(bot_url(bot), body, format="json")
    patch = user_api.patch(bot_url(bot), body, format="json")

    # then
    assert put.status_code == 200, put.content
    assert patch.status_code == 200, patch.content
    after = Bot.objects.get(pk=bot.pk)
    assert after.name == "Renamed"
    _assert_protected_fields_untouched(after, owner=user)
    assert after.api_port == before.api_port
    assert (after.api_username, after.api_password) == (before.api_username, before.api_password)
    assert (after.jwt_secret_key, after.ws_token) == (before.jwt_secret_key, before.ws_token)
    assert not Bot.objects.filter(pk=999999).exists()


# -- validation --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [0, -100, -0.01])
def test_it_refuses_a_stake_amount_that_is_not_positive(user_api, amount):
    # when
    response = user_api.post(BOTS, {**SEED_BODY, "stake_amount": amount}, format="json")

    # then
    error = assert_single_field_error(response, "stake_amount")
    assert "greater than 0" in error["msg"]
    assert error["input"] == amount
    assert not Bot.objects.exists()


@pytest.mark.django_db
def test_it_refuses_a_missing_name_as_missing(user_api):
    body = {key: value for key, value in SEED_BODY.items() if key != "name"}

    response = user_api.post(BOTS, body, format="json")

    error = assert_single_field_error(response, "name")
    assert error["type"] == "missing"
    assert not Bot.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["a/b", "../etc", "..", "x/../y", "my bot", "my\tbot", ""])
def test_it_refuses_a_name_that_is_not_a_safe_file_name(user_api, name):
    response = user_api.post(BOTS, {**SEED_BODY, "name": name}, format="json")

    error = assert_single_field_error(response, "name")
    assert error["input"] == name
    assert not Bot.objects.exists()


@pytest.mark.django_db
def test_it_refuses_a_second_bot_with_the_same_name_for_the_same_owner(user, user_api):
    # given
    make_bot(owner=user, name="MyBot")

    # when
    response = user_api.post(BOTS, SEED_BODY, format="json")

    # then
    error = assert_single_field_error(response, "name")
    assert error["input"] == "MyBot"
    assert Bot.objects.filter(owner=user).count() == 1


@pytest.mark.django_db
def test_it_refuses_renaming_a_bot_to_another_of_the_owners_bot_names(user, user_api):
    # given
    make_bot(owner=user, name="Taken")
    bot = make_bot(owner=user, name="Mine")

    # when
    response = user_api.patch(bot_url(bot), {"name": "Taken"}, format="json")

    # then
    assert_single_field_error(response, "name")
    bot.refresh_from_db()
    assert bot.name == "Mine"


@pytest.mark.django_db
def test_another_owner_may_use_the_same_name(other_user, user, user_api):
    # given
    make_bot(owner=other_user, name="MyBot")

    # when
    response = user_api.post(BOTS, SEED_BODY, format="json")

    # then
    assert response.status_code == 201, response.content
    assert Bot.objects.filter(name="MyBot").count() == 2
    assert Bot.objects.get(pk=response.json()["id"]).owner == user


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timeframe": "7m"}, "timeframe"),
        ({"pair_whitelist": ["BTCUSDT"]}, "pair_whitelist"),
        ({"pair_whitelist": ["BTC/EUR"], "stake_currency": "USDT"}, "pair_whitelist"),
        ({"pair_whitelist": ["BTC/USDT", "BTC/USDT"]}, "pair_whitelist"),
        ({"exchange": "notanexchange"}, "exchange"),
        ({"exchange": "replay", "dry_run": False}, "dry_run"),
        ({"exchange": "binance", "dry_run": False}, "dry_run"),
        ({"max_open_trades": 0}, "max_open_trades"),
        ({"strategy_name": "../evil"}, "strategy_name"),
        ({"stake_currency": "usdt"}, "stake_currency"),
    ],
)
def test_it_refuses_a_configuration_freqtrade_would_refuse(user_api, change, field):
    # when
    response = user_api.post(BOTS, {**SEED_BODY, **change}, format="json")

    # then
    error = assert_single_field_error(response, field)
    assert error["input"] == change[field]
    assert not Bot.objects.exists()


@pytest.mark.django_db
def test_it_accepts_live_trading_on_binance_with_keys(user_api):
    body = {**SEED_BODY, "exchange": "binance", "dry_run": False, "exchange_key": "k", "exchange_secret": "s"}

    response = user_api.post(BOTS, body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["dry_run"] is False
    assert response.json()["has_exchange_keys"] is True


@pytest.mark.django_db
def test_an_update_is_checked_against_the_bot_as_it_would_become(user, user_api):
    # given: a live bot whose keys are then removed
    bot = make_bot(owner=user, exchange="binance", dry_run=False, exchange_key="k", exchange_secret="s")

    # when
    response = user_api.patch(bot_url(bot), {"exchange_key": ""}, format="json")

    # then
    assert_single_field_error(response, "dry_run")
    bot.refresh_from_db()
    assert bot.exchange_key == "k"


@pytest.mark.django_db
def test_an_invalid_update_changes_nothing(user, user_api):
    bot = make_bot(owner=user, name="Kept", stake_amount=100)

    response = user_api.put(bot_url(bot), {"name": "NewName", "stake_amount": -5}, format="json")

    error = assert_single_field_error(response, "stake_amount")
    assert error["input"] == -5
    bot.refresh_from_db()
    assert (bot.name, float(bot.stake_amount)) == ("Kept", 100.0)


# -- running bots ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "status", [Bot.Status.RUNNING, Bot.Status.STARTING, Bot.Status.STOPPING, Bot.Status.UNRESPONSIVE]
)
def test_an_active_bot_cannot_be_updated(user, user_api, status):
    # given
    bot = make_bot(owner=user, name="Busy")
    Bot.objects.filter(pk=bot.pk).update(status=status)

    # when
    put = user_api.put(bot_url(bot), {"name": "Changed", "stake_amount": 1}, format="json")
    patch = user_api.patch(bot_url(bot), {"name": "Changed"}, format="json")

    # then
    for response in (put, patch):
        assert response.status_code == 409
        assert isinstance(response.json()["detail"], str)
        assert "stop" in response.json()["detail"].lower()
    bot.refresh_from_db()
    assert bot.name == "Busy"


@pytest.mark.django_db
def test_deleting_a_running_bot_stops_it_first_and_deletes_it_once_stopped(
    user, user_api, django_capture_on_commit_callbacks
):
    # given
    from bots.services import bot_status_apply
    from multibot.redis_client import redis_client
    from streams.bus import stream_key
    from streams.catalog import TRADING_COMMANDS

    bot = make_bot(owner=user)
    Bot.objects.filter(pk=bot.pk).update(status=BotStatus.RUNNING, desired_state=DesiredState.RUNNING)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = user_api.delete(bot_url(bot))

    # then: still there, a stop sent to the gateway
    assert response.status_code == 202
    assert "stopped first" in response.json()["detail"]
    bot.refresh_from_db()
    assert bot.delete_requested and bot.desired_state == DesiredState.STOPPED
    [(_, fields)] = redis_client().xrange(stream_key(TRADING_COMMANDS))
    assert fields["type"] == Command.STOP
    assert read_bot_command(json.loads(fields["payload"])) == {"bot_id": bot.pk, "requested_by": "", "then": "delete"}
    # when the gateway reports it stopped, the row goes
    bot_status_apply(report=build_bot_status(bot_id=bot.pk, status=BotStatus.STOPPED, at=1e12, host=""))
    assert not Bot.objects.filter(pk=bot.pk).exists()


# -- secrets -----------------------------------------------------------------------------------


def _response_text(response: Any) -> str:
    headers = "\n".join(f"{name}: {value}" for name, value in response.items())
    return headers + "\n" + response.content.decode(errors="replace")


@pytest.mark.django_db
def test_no_secret_appears_in_any_response_or_log_line(user, user_api, caplog):
    # given
    caplog.set_level(logging.DEBUG)
    live_body = {
        **SEED_BODY,
        "name": "LiveBot",
        "exchange": "binance",
        "dry_run": False,
        "exchange_key": EXCHANGE_KEY,
        "exchange_secret": EXCHANGE_SECRET,
    }

    # when
    responses = []
    created = user_api.post(BOTS, live_body, format="json")
    responses.append(created)
    assert created.status_code == 201, created.content
    bot_id = created.json()["id"]
    responses.append(user_api.get(BOTS))
    responses.append(user_api.get(bot_url(bot_id)))
    responses.append(
        user_api.put(
            bot_url(bot_id),
            {"stake_amount": 150, "exchange_key": EXCHANGE_KEY, "exchange_secret": EXCHANGE_SECRET},
            format="json",
        )
    )
    refused = user_api.post(BOTS, {**live_body, "name": "Other", "stake_amount": -1}, format="json")
    responses.append(refused)
    # A refusal of the secret itself must not echo it either.
    refused_key = user_api.post(
        BOTS, {**live_body, "name": "Other", "exchange_key": EXCHANGE_KEY + "x" * 600}, format="json"
    )
    responses.append(refused_key)

    # then
    assert [response.status_code for response in responses] == [201, 200, 200, 200, 422, 422]
    assert_single_field_error(refused_key, "exchange_key")
    bot = Bot.objects.get(pk=bot_id)
    assert created.json()["has_exchange_keys"] is True
    assert responses[2].json()["has_exchange_keys"] is True
    secrets = {
        "exchange key": EXCHANGE_KEY,
        "exchange secret": EXCHANGE_SECRET,
        "api_password": bot.api_password,
        "jwt_secret_key": bot.jwt_secret_key,
        "ws_token": bot.ws_token,
        "SECRET_KEY": settings.SECRET_KEY,
    }
    assert all(secrets.values())
    assert caplog.records, "expected some log output to inspect"
    logged = caplog.text + "\n".join(record.getMessage() for record in caplog.records)
    for response in responses:
        text = _response_text(response)
        for label, secret in secrets.items():
            assert secret not in text, f"{label} leaked in a response to {response.request['PATH_INFO']}"
    for label, secret in secrets.items():
        assert secret not in logged, f"{label} leaked in a log line"
    audit_rows = json.dumps(list(AuditLog.objects.values("action", "resource", "details")))
    assert "bot_create" in audit_rows
    for label, secret in secrets.items():
        assert secret not in audit_rows, f"{label} leaked in the audit log"


@pytest.mark.django_db
def test_exchange_keys_are_encrypted_at_rest_and_read_back_decrypted(user_api):
    # given
    body = {**SEED_BODY, "exchange": "binance", "exchange_key": EXCHANGE_KEY, "exchange_secret": EXCHANGE_SECRET}
    bot_id = user_api.post(BOTS, body, format="json").json()["id"]

    # when
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT exchange_key, exchange_secret, api_password FROM {Bot._meta.db_table} WHERE id = %s", [bot_id]
        )
        raw_key, raw_secret, raw_password = cursor.fetchone()

    # then
    bot = Bot.objects.get(pk=bot_id)
    assert raw_key
    assert raw_secret
    assert raw_password
    assert EXCHANGE_KEY not in raw_key
    assert EXCHANGE_SECRET not in raw_secret
    assert bot.api_password not in raw_password
    assert bot.exchange_key == EXCHANGE_KEY
    assert bot.exchange_secret == EXCHANGE_SECRET
    assert bot.has_exchange_keys


# -- ports -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_two_bots_never_share_an_api_port(user, user_api):
    # given
    other_owner = make_user()
    make_bot(owner=other_owner)

    # when
    ids = [user_api.post(BOTS, {**SEED_BODY, "name": f"Bot{n}"}, format="json").json()["id"] for n in range(3)]

    # then
    ports = list(Bot.objects.values_list("api_port", flat=True))
    assert len(ports) == 4
    assert len(set(ports)) == 4
    assert Bot.objects.filter(pk__in=ids).count() == 3


@pytest.mark.django_db
def test_the_database_refuses_a_second_bot_on_a_taken_port(user):
    first, second = make_bot(owner=user), make_bot(owner=user)

    second.api_port = first.api_port
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()


@pytest.mark.django_db
def test_a_port_another_program_listens_on_is_not_given_to_a_bot(user_api, settings):
    # given: a port of the range is taken by something that is not a bot
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        settings.BOTS = {**settings.BOTS, "api_port_first": taken, "api_port_last": taken + 20}

        # when
        response = user_api.post(BOTS, SEED_BODY, format="json")

    # then
    assert response.status_code == 201, response.content
    port = Bot.objects.get(pk=response.json()["id"]).api_port
    assert port != taken
    assert taken < port <= taken + 20


@pytest.mark.django_db
def test_an_exhausted_port_range_refuses_the_bot_with_a_json_error(user, user_api, settings):
    # given: a range of one port, already held by a bot
    bot = make_bot(owner=user)
    settings.BOTS = {**settings.BOTS, "api_port_first": bot.api_port, "api_port_last": bot.api_port}

    # when
    response = user_api.post(BOTS, SEED_BODY, format="json")

    # then
    assert response.status_code >= 500
    assert isinstance(response.json()["detail"], str)
    assert list(Bot.objects.all()) == [bot]


# -- numbers that read back ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [9999999999999999, 10**12 + 1, "1e16", 1e300])
def test_a_stake_too_large_to_store_and_read_back_is_refused_and_the_fleet_still_lists(user, user_api, amount):
    # given: a bot of the same owner, so the listing has something to load
    make_bot(owner=user, name="Existing")

    # when
    response = user_api.post(BOTS, {**SEED_BODY, "stake_amount": amount}, format="json")

    # then
    assert_single_field_error(response, "stake_amount")
    assert list(Bot.objects.values_list("name", flat=True)) == ["Existing"]
    listing = user_api.get(BOTS)
    assert listing.status_code == 200
    assert [bot["name"] for bot in listing.json()] == ["Existing"]


@pytest.mark.django_db
def test_an_update_to_a_poison_stake_is_refused_and_the_bot_keeps_its_stake(user, user_api):
    bot = make_bot(owner=user, stake_amount=100)

    response = user_api.patch(bot_url(bot), {"stake_amount": 9999999999999999}, format="json")

    assert_single_field_error(response, "stake_amount")
    assert float(Bot.objects.get(pk=bot.pk).stake_amount) == 100.0


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [10**12, 123456789012.123, 0.00000001, 12.5])
def test_a_stake_within_the_bounds_reads_back_exactly(user_api, amount):
    # when
    created = user_api.post(BOTS, {**SEED_BODY, "stake_amount": amount}, format="json")

    # then
    assert created.status_code == 201, created.content
    assert user_api.get(bot_url(created.json()["id"])).json()["stake_amount"] == amount
    assert [bot["stake_amount"] for bot in user_api.get(BOTS).json()] == [amount]


@pytest.mark.django_db
def test_a_stake_with_more_digits_than_every_database_keeps_is_refused(user_api):
    response = user_api.post(BOTS, {**SEED_BODY, "stake_amount": "123456789012.12345678"}, format="json")

    error = assert_single_field_error(response, "stake_amount")
    assert "significant digits" in error["msg"]
    assert not Bot.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("count", [2**31, -(2**31) - 1, 10**30, 1001, -2])
def test_max_open_trades_beyond_the_column_or_the_rule_is_refused(user_api, count):
    response = user_api.post(BOTS, {**SEED_BODY, "max_open_trades": count}, format="json")

    assert_single_field_error(response, "max_open_trades")
    assert not Bot.objects.exists()


# -- unlimited stake -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_unlimited_stake_is_accepted_stored_as_null_and_answered_as_unlimited(user_api):
    # when
    created = user_api.post(BOTS, {**SEED_BODY, "stake_amount": "unlimited"}, format="json")

    # then
    assert created.status_code == 201, created.content
    assert created.json()["stake_amount"] == "unlimited"
    assert Bot.objects.get(pk=created.json()["id"]).stake_amount is None
    assert user_api.get(bot_url(created.json()["id"])).json()["stake_amount"] == "unlimited"
    row = AuditLog.objects.get(action="bot_create")
    assert row.details["stake_amount"] == "unlimited"


@pytest.mark.django_db
def test_a_bot_goes_from_a_fixed_stake_to_unlimited_and_back(user, user_api):
    bot = make_bot(owner=user, stake_amount=100)

    unlimited = user_api.patch(bot_url(bot), {"stake_amount": "unlimited"}, format="json")
    fixed = user_api.patch(bot_url(bot), {"stake_amount": 25}, format="json")

    assert unlimited.status_code == 200, unlimited.content
    assert unlimited.json()["stake_amount"] == "unlimited"
    assert fixed.json()["stake_amount"] == 25
    assert float(Bot.objects.get(pk=bot.pk).stake_amount) == 25.0


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [None, "Unlimited", "all", ""])
def test_only_the_word_unlimited_stands_for_no_fixed_stake(user_api, amount):
    response = user_api.post(BOTS, {**SEED_BODY, "stake_amount": amount}, format="json")

    assert_single_field_error(response, "stake_amount")


@pytest.mark.django_db
def test_an_unlimited_stake_with_unlimited_open_trades_is_refused_as_freqtrade_would(user_api):
    body = {**SEED_BODY, "stake_amount": "unlimited", "max_open_trades": -1}

    response = user_api.post(BOTS, body, format="json")

    error = assert_single_field_error(response, "stake_amount")
    assert "both be unlimited" in error["msg"]


# -- strategy names ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["__import__", "__init__", "class", "None", "lambda", "1Strategy", "a.b"])
def test_a_strategy_name_that_is_not_a_plain_class_name_is_refused(user_api, name):
    response = user_api.post(BOTS, {**SEED_BODY, "strategy_name": name}, format="json")

    error = assert_single_field_error(response, "strategy_name")
    assert error["input"] == name
    assert not Bot.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["SampleStrategy", "_Private", "My_Strategy2", "Strategy__v2"])
def test_a_plain_class_name_is_a_strategy_name(user_api, name):
    response = user_api.post(BOTS, {**SEED_BODY, "strategy_name": name}, format="json")

    assert response.status_code == 201, response.content


# -- pairs and timeframes on the replay exchange ---------------------------------------------------


@pytest.mark.django_db
def test_a_futures_pair_is_refused_on_a_replay_bot_with_a_clear_message(user_api):
    # given: the spot market exists
    store_replay_markets("BTC/USDT")

    # when
    response = user_api.post(BOTS, {**SEED_BODY, "pair_whitelist": ["BTC/USDT:USDT"]}, format="json")

    # then
    error = assert_single_field_error(response, "pair_whitelist")
    assert "futures" in error["msg"] and "BTC/USDT" in error["msg"]
    assert error["input"] == ["BTC/USDT:USDT"]
    assert not Bot.objects.exists()


@pytest.mark.django_db
def test_a_pair_the_replay_exchange_does_not_have_is_refused_naming_the_markets_it_has(user_api):
    # given: two markets, and ETH stored only as 5m candles (the replay's markets are its 1m candles)
    store_replay_markets("BTC/USDT", "SOL/USDT")
    CandleSet.objects.create(exchange="replay", pair="ETH/USDT", timeframe="5m", start=timezone.now(),
                             end=timezone.now(), records=0, source=CandleSet.Source.UPLOAD)  # fmt: skip

    # when
    response = user_api.post(BOTS, {**SEED_BODY, "pair_whitelist": ["BTC/USDT", "ETH/USDT"]}, format="json")

    # then
    error = assert_single_field_error(response, "pair_whitelist")
    assert "ETH/USDT" in error["msg"]
    assert "BTC/USDT, SOL/USDT" in error["msg"]


@pytest.mark.django_db
def test_stored_spot_pairs_are_accepted_on_a_replay_bot(user_api):
    store_replay_markets("BTC/USDT", "ETH/USDT")

    response = user_api.post(BOTS, {**SEED_BODY, "pair_whitelist": ["ETH/USDT", "BTC/USDT"]}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["pair_whitelist"] == ["ETH/USDT", "BTC/USDT"]


@pytest.mark.django_db
def test_moving_a_bot_onto_the_replay_exchange_checks_its_pairs_there(user, user_api):
    bot = make_bot(owner=user, exchange="binance", pair_whitelist=["DOGE/USDT"])

    response = user_api.patch(bot_url(bot), {"exchange": "replay"}, format="json")

    error = assert_single_field_error(response, "pair_whitelist")
    assert "DOGE/USDT" in error["msg"]
    assert Bot.objects.get(pk=bot.pk).exchange == "binance"


@pytest.mark.django_db
@pytest.mark.parametrize("timeframe", ["3d", "1w", "1M"])
def test_a_timeframe_longer_than_a_day_is_refused_on_replay_but_not_on_a_real_exchange(user_api, timeframe):
    on_replay = user_api.post(BOTS, {**SEED_BODY, "timeframe": timeframe}, format="json")
    on_binance = user_api.post(BOTS, {**SEED_BODY, "exchange": "binance", "timeframe": timeframe}, format="json")

    error = assert_single_field_error(on_replay, "timeframe")
    assert "replay" in error["msg"]
    assert on_binance.status_code == 201, on_binance.content


@pytest.mark.django_db
def test_the_seed_body_on_binance_without_pairs_is_accepted(user_api):
    response = user_api.post(BOTS, {**SEED_BODY, "exchange": "binance"}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["pair_whitelist"] == []


# -- the serializer only shapes ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_bot_serializer_validates_without_reading_the_database(user, django_assert_num_queries):
    from bots.serializers import BotSerializer

    # given: a name this owner already uses (only the service may find that out)
    make_bot(owner=user, name="MyBot")
    given = BotSerializer(data={**SEED_BODY, "strategy_name": "__import__"})

    # when
    with django_assert_num_queries(0):
        valid = given.is_valid()

    # then: shapes only; the rules are the service's
    assert valid, given.errors
    assert given.validated_data["strategy_name"] == "__import__"


def test_a_number_where_the_api_wants_text_is_refused_and_nothing_is_created(user_api):
    for field, value in (("exchange_secret", 12), ("name", 42), ("pair_whitelist", [1])):
        body = {"name": "numbers", "strategy_name": "SampleStrategy", "stake_amount": 10, field: value}
        response = user_api.post("/api/v1/bots/", body, format="json")
        assert response.status_code == 422, (field, response.content)
        assert response.json()["detail"][0]["msg"] == "Must be a string."
    assert not Bot.objects.exists()

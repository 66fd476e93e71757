"""bots.services called directly, as a management command, a task or a stream handler would: domain errors only."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.exceptions import APIException

from audit.services import Actor
from bots.models import Bot
from bots.selectors import bot_by_id_or_name
from bots.services import bot_create, bot_update
from multibot.errors import ConflictError, DomainError, InvalidInputError, NotFoundError, UnavailableError
from tests.factories import make_bot, store_replay_markets

pytestmark = pytest.mark.django_db


def actor_for(user: object) -> Actor:
    return Actor(user=user, ip_address="127.0.0.1")


def test_a_broken_rule_is_an_invalid_input_error_naming_its_field_not_an_http_error(user):
    with pytest.raises(InvalidInputError) as refused:
        bot_create(actor=actor_for(user), owner=user, name="b", strategy_name="__import__", stake_amount=10)

    assert refused.value.field == "strategy_name"
    assert not isinstance(refused.value, APIException)
    assert not Bot.objects.exists()


def test_the_service_refuses_a_stake_that_could_not_be_read_back(user):
    with pytest.raises(InvalidInputError) as refused:
        bot_create(actor=actor_for(user), owner=user, name="b", strategy_name="S", stake_amount=9999999999999999)

    assert refused.value.field == "stake_amount"
    assert not Bot.objects.exists()


def test_a_second_bot_of_the_same_name_is_refused_by_the_service(user):
    make_bot(owner=user, name="Twin")

    with pytest.raises(InvalidInputError) as refused:
        make_bot(owner=user, name="Twin")

    assert refused.value.field == "name"
    assert "Twin" in refused.value.message
    assert Bot.objects.filter(owner=user).count() == 1


def test_renaming_onto_a_taken_name_is_refused_and_changes_nothing(user):
    make_bot(owner=user, name="Taken")
    bot = make_bot(owner=user, name="Mine", stake_amount=10)

    with pytest.raises(InvalidInputError) as refused:
        bot_update(actor=actor_for(user), bot=bot, name="Taken", stake_amount=20)

    assert refused.value.field == "name"
    bot.refresh_from_db()
    assert (bot.name, bot.stake_amount) == ("Mine", Decimal(10))


def test_updating_an_active_bot_is_a_conflict(user):
    bot = make_bot(owner=user)
    Bot.objects.filter(pk=bot.pk).update(status=Bot.Status.RUNNING)

    with pytest.raises(ConflictError):
        bot_update(actor=actor_for(user), bot=bot, name="Other")


def test_an_update_keeps_every_keyword_left_out(user):
    store_replay_markets("ETH/USDT")
    bot = make_bot(owner=user, name="Kept", timeframe="1h", stake_amount=5, pair_whitelist=["ETH/USDT"])

    updated = bot_update(actor=actor_for(user), bot=bot, max_open_trades=7)

    stored = Bot.objects.get(pk=bot.pk)
    assert (updated.max_open_trades, stored.max_open_trades) == (7, 7)
    assert (stored.name, stored.timeframe, stored.stake_amount, stored.pair_whitelist) == (
        "Kept", "1h", Decimal(5), ["ETH/USDT"]
    )  # fmt: skip


def test_an_update_may_make_the_stake_unlimited(user):
    bot = make_bot(owner=user, stake_amount=5)

    bot_update(actor=actor_for(user), bot=bot, stake_amount=None)

    assert Bot.objects.get(pk=bot.pk).stake_amount is None


def test_an_exhausted_port_range_is_unavailable(user, settings):
    bot = make_bot(owner=user)
    settings.BOTS = {**settings.BOTS, "api_port_first": bot.api_port, "api_port_last": bot.api_port}

    with pytest.raises(UnavailableError) as refused:
        make_bot(owner=user)

    assert refused.value.status_code == 503
    assert "port" in refused.value.message


# -- finding a bot by id or name ------------------------------------------------------------------


def test_a_bot_is_found_by_id_or_by_name_within_what_the_user_sees(user, other_user):
    mine = make_bot(owner=user, name="Alpha")
    theirs = make_bot(owner=other_user, name="Beta")

    assert bot_by_id_or_name(user=user, key=str(mine.pk)) == mine
    assert bot_by_id_or_name(user=user, key="Alpha") == mine
    with pytest.raises(NotFoundError):
        bot_by_id_or_name(user=user, key="Beta")
    with pytest.raises(NotFoundError):
        bot_by_id_or_name(user=user, key=str(theirs.pk))


def test_a_name_two_other_owners_use_is_a_conflict_for_a_superuser_who_owns_neither(user, other_user, superuser):
    make_bot(owner=user, name="Same")
    make_bot(owner=other_user, name="Same")

    with pytest.raises(ConflictError) as refused:
        bot_by_id_or_name(user=superuser, key="Same")

    assert "use the bot's id" in refused.value.message
    assert isinstance(refused.value, DomainError)


def test_a_superuser_who_owns_one_of_the_namesakes_gets_their_own(user, superuser):
    make_bot(owner=user, name="Same")
    own = make_bot(owner=superuser, name="Same")

    assert bot_by_id_or_name(user=superuser, key="Same") == own

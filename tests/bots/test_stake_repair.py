"""The upgrade's repair of stakes an older version stored but the ORM cannot read back (migration 0003)."""

from __future__ import annotations

import importlib
from decimal import Decimal, InvalidOperation

import pytest
from django.db import connection

from bots.models import Bot
from tests.factories import make_bot

repair = importlib.import_module("bots.migrations.0003_stake_unlimited_and_repair")

pytestmark = pytest.mark.django_db

# What an older version wrote for a stake of 9999999999999999: SQLite keeps it as the float 1e16. PostgreSQL's
# numeric(24, 8) refuses that, but holds NaN, which is no stake either.
BROKEN = "1e16" if connection.vendor == "sqlite" else "'NaN'"


def break_stake(bot: Bot) -> None:
    """Write the stake as an old version could have, through SQL: no check of ours runs."""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Bot._meta.db_table} SET stake_amount = {BROKEN} WHERE id = %s", [bot.pk])


def test_a_broken_stake_really_breaks_the_owners_listing_until_it_is_repaired(user, user_api):
    # given
    bot, healthy = make_bot(owner=user, name="Broken"), make_bot(owner=user, name="Healthy", stake_amount=50)
    break_stake(bot)
    if connection.vendor == "sqlite":
        with pytest.raises(InvalidOperation):
            Bot.objects.get(pk=bot.pk)
        assert user_api.get("/api/v1/bots/").status_code == 500

    # when
    repaired = repair.repair_unloadable_stakes(Bot, connection)

    # then: only the broken row changed, and everything loads again
    assert repaired == [bot.pk]
    fixed = Bot.objects.get(pk=bot.pk)
    assert fixed.stake_amount == repair.REPAIRED_STAKE == Decimal(10**12)
    assert (fixed.status, fixed.desired_state) == (Bot.Status.ERROR, Bot.DesiredState.STOPPED)
    assert "stake" in fixed.status_detail and "could not be read back" in fixed.status_detail
    assert Bot.objects.get(pk=healthy.pk).stake_amount == Decimal(50)
    assert Bot.objects.get(pk=healthy.pk).status == Bot.Status.STOPPED
    listing = user_api.get("/api/v1/bots/")
    assert listing.status_code == 200
    assert {row["name"]: row["stake_amount"] for row in listing.json()} == {"Broken": 10**12, "Healthy": 50}


def test_the_repair_leaves_readable_and_unlimited_stakes_alone(user):
    kept = [make_bot(owner=user, stake_amount=None), make_bot(owner=user, stake_amount=Decimal("0.00000001"))]

    assert repair.repair_unloadable_stakes(Bot, connection) == []
    assert [Bot.objects.get(pk=bot.pk).stake_amount for bot in kept] == [None, Decimal("0.00000001")]
    assert all(Bot.objects.get(pk=bot.pk).status == Bot.Status.STOPPED for bot in kept)

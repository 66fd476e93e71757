"""The admin's bot form holds a bot to the same rules as the API: no poison stake through the back door."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib import admin
from django.forms.models import model_to_dict
from django.test import RequestFactory

from bots.models import Bot
from tests.factories import make_bot

pytestmark = pytest.mark.django_db


def admin_form(bot: Bot, superuser: Any, **changes: Any) -> Any:
    request = RequestFactory().post("/admin/bots/bot/")
    request.user = superuser
    form_class = admin.site._registry[Bot].get_form(request, bot)
    stored = model_to_dict(bot, fields=list(form_class.base_fields))
    data = {name: "" if value is None else value for name, value in stored.items()}
    data["pair_whitelist"] = json.dumps(bot.pair_whitelist)
    data.update(changes)
    return form_class(data=data, instance=bot)


@pytest.mark.parametrize(
    ("field", "value"),
    [("stake_amount", "9999999999999999"), ("strategy_name", "__import__"), ("pair_whitelist", '["BTC/USDT:USDT"]')],
)
def test_the_admin_refuses_what_the_api_refuses(user, superuser, field, value):
    bot = make_bot(owner=user, stake_amount=100)

    form = admin_form(bot, superuser, **{field: value})

    assert not form.is_valid()
    assert field in form.errors
    assert Bot.objects.get(pk=bot.pk).stake_amount == 100


def test_the_admin_saves_a_bot_that_keeps_the_rules(user, superuser):
    bot = make_bot(owner=user, stake_amount=100)

    form = admin_form(bot, superuser, stake_amount="250", status_detail="checked by hand")

    assert form.is_valid(), form.errors
    form.save()
    assert Bot.objects.get(pk=bot.pk).stake_amount == 250

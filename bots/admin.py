"""Admin for bots: secrets are neither shown nor editable."""

from __future__ import annotations

import copy
from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction

from audit import events
from audit.services import Actor
from bots.models import Bot
from bots.services import bot_validate
from multibot.errors import InvalidInputError


class BotAdminForm(forms.ModelForm):
    """The admin writes rows directly: the same rules as the API, so it cannot store a bot that breaks them."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        bot = copy.copy(self.instance)
        for field, value in cleaned.items():
            setattr(bot, field, value)
        try:
            bot_validate(bot=bot, changed=self.changed_data if self.instance.pk else list(cleaned))
        except InvalidInputError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    form = BotAdminForm
    list_display = ["id", "name", "owner", "strategy_name", "exchange", "status", "dry_run", "api_port"]
    list_filter = ["status", "exchange", "dry_run"]
    search_fields = ["name", "strategy_name", "owner__username"]
    exclude = ["exchange_key", "exchange_secret", "api_password", "jwt_secret_key", "ws_token"]
    readonly_fields = ["status", "pid", "api_port", "api_username", "has_exchange_keys", "created_at", "updated_at"]

    @admin.display(boolean=True)
    def has_exchange_keys(self, bot: Bot) -> bool:
        return bot.has_exchange_keys

    def save_model(self, request, obj: Bot, form, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            events.bot_admin_saved_event(
                actor=Actor.from_request(request), bot=obj, created=not change, changed_fields=form.changed_data
            )

    def delete_model(self, request, obj: Bot) -> None:
        with transaction.atomic():
            bot_id, name = obj.pk, obj.name
            super().delete_model(request, obj)
            events.bot_admin_deleted_event(actor=Actor.from_request(request), bot_id=bot_id, bot_name=name)

    def has_delete_permission(self, request, obj: Bot | None = None) -> bool:
        # Bulk deletes in the admin skip delete_model (and so the audit): only one at a time.
        return obj is not None and not obj.is_active and super().has_delete_permission(request, obj)

"""/api/v1/bots/: CRUD over the user's own bots."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import viewsets
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from audit.services import Actor
from bots import services
from bots.models import Bot
from bots.selectors import bot_list
from bots.serializers import BotSerializer


class BotViewSet(viewsets.ModelViewSet):
    serializer_class = BotSerializer
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]
    lookup_value_regex = r"\d+"
    audit_resource = "bot"

    def get_queryset(self) -> QuerySet[Bot]:
        return bot_list(user=self.request.user)

    def get_object(self) -> Bot:
        try:
            return self.get_queryset().get(pk=self.kwargs["pk"])
        except Bot.DoesNotExist:
            raise NotFound("Bot not found") from None

    def perform_create(self, serializer: BotSerializer) -> None:
        serializer.instance = services.bot_create(
            actor=Actor.from_request(self.request), owner=self.request.user, **serializer.validated_data
        )

    def update(self, request: Request, *args: object, **kwargs: object) -> Response:
        # The API document updates with PUT and a partial body: PUT and PATCH both merge.
        kwargs["partial"] = True
        return super().update(request, *args, **kwargs)

    def perform_update(self, serializer: BotSerializer) -> None:
        serializer.instance = services.bot_update(
            actor=Actor.from_request(self.request), bot=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance: Bot) -> None:
        services.bot_delete(actor=Actor.from_request(self.request), bot=instance)

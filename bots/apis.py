"""/api/v1/bots/: CRUD over the user's own bots."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import AuditLog
from audit.resources import Kind
from audit.services import Actor
from bots import services, workspace
from bots.commands import Command
from bots.models import Bot
from bots.processes import process_info
from bots.selectors import bot_by_id_or_name, bot_lifecycle_list, bot_list
from bots.serializers import BotSerializer
from multibot.errors import QueryValidationError


class BotViewSet(viewsets.ModelViewSet):
    serializer_class = BotSerializer
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]
    lookup_value_regex = r"\d+"
    audit_resource = Kind.BOT
    audit_actions = {
        "create": AuditLog.Action.BOT_CREATE,
        "update": AuditLog.Action.BOT_UPDATE,
        "partial_update": AuditLog.Action.BOT_UPDATE,
        "destroy": AuditLog.Action.BOT_DELETE,
        "start": AuditLog.Action.BOT_START,
        "stop": AuditLog.Action.BOT_STOP,
        "restart": AuditLog.Action.BOT_RESTART,
        "start_all": AuditLog.Action.BOT_START_ALL,
        "stop_all": AuditLog.Action.BOT_STOP_ALL,
        "restart_all": AuditLog.Action.BOT_RESTART_ALL,
    }

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

    def destroy(self, request: Request, *args: object, **kwargs: object) -> Response:
        bot = self.get_object()
        if services.bot_delete(actor=Actor.from_request(request), bot=bot):
            return Response(status=204)
        return Response({"status": Command.STOP.answer, "bot_name": bot.name,
                         "detail": "The bot is running: it is stopped first, then deleted."}, status=202)  # fmt: skip

    # -- lifecycle -------------------------------------------------------------------------------
    def _command(self, command: Command) -> Response:
        # Only the columns a command needs: a row broken in another column can still be stopped.
        bot = bot_lifecycle_list(user=self.request.user).filter(pk=self.kwargs["pk"]).first()
        if bot is None:
            raise NotFound("Bot not found")
        result = services.bot_command(actor=Actor.from_request(self.request), bot=bot, command=command)
        return Response(result, status=202)

    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str) -> Response:
        return self._command(Command.START)

    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str) -> Response:
        return self._command(Command.STOP)

    @action(detail=True, methods=["post"])
    def restart(self, request: Request, pk: str) -> Response:
        return self._command(Command.RESTART)

    @action(detail=True, methods=["get"], url_path="status")
    def bot_status(self, request: Request, pk: str) -> Response:
        bot = self.get_object()
        return Response({
            "status": "success", "bot_name": bot.name, "bot_status": bot.status, "pid": bot.pid,
            "desired_state": bot.desired_state, "detail": bot.status_detail, "restart_count": bot.restart_count,
            "started_at": bot.started_at, "last_heartbeat": bot.last_heartbeat,
        })  # fmt: skip

    @action(detail=True, methods=["get"])
    def logs(self, request: Request, pk: str) -> Response:
        query = LinesQuery(data=request.query_params)
        if not query.is_valid():
            raise QueryValidationError(query.errors)
        bot = self.get_object()
        lines = workspace.log_tail(bot.pk, query.validated_data["lines"])
        return Response({"bot_name": bot.name, "logs": [bot.mask_secrets(line) for line in lines]})

    def _fleet(self, command: Command) -> Response:
        bots = bot_lifecycle_list(user=self.request.user)
        results = services.fleet_command(actor=Actor.from_request(self.request), bots=bots, command=command)
        return Response({"results": results, "total": len(results)}, status=202)

    @action(detail=False, methods=["post"], url_path="start-all")
    def start_all(self, request: Request) -> Response:
        return self._fleet(Command.START)

    @action(detail=False, methods=["post"], url_path="stop-all")
    def stop_all(self, request: Request) -> Response:
        return self._fleet(Command.STOP)

    @action(detail=False, methods=["post"], url_path="restart-all")
    def restart_all(self, request: Request) -> Response:
        return self._fleet(Command.RESTART)


class LinesQuery(serializers.Serializer):
    lines = serializers.IntegerField(min_value=1, max_value=5000, default=100)


class BotProcessApi(APIView):
    """GET /bots/{id or name}/process: the bot's process as the operating system sees it."""

    def get(self, request: Request, bot: str) -> Response:
        found = bot_by_id_or_name(user=request.user, key=bot)
        return Response({"bot_id": found.pk, "bot_name": found.name, **process_info(found)})


class BotEmergencyStopApi(APIView):
    """POST /bots/{id or name}/emergency-stop: SIGKILL to the bot's process group, through the gateway."""

    audit_action = AuditLog.Action.BOT_KILL
    audit_resource = Kind.BOT
    rate_limit_exempt = True  # the kill switch: see multibot.ratelimit

    def post(self, request: Request, bot: str) -> Response:
        found = bot_by_id_or_name(user=request.user, key=bot)
        return Response(services.bot_command(actor=Actor.from_request(request), bot=found, command=Command.KILL),
                        status=202)  # fmt: skip


class EmergencyInput(serializers.Serializer):
    force_exit = serializers.BooleanField(default=False)


class EmergencyStopAllApi(APIView):
    """POST /emergency/stop-all: the caller's bots (every bot for a superuser), at once."""

    audit_action = AuditLog.Action.EMERGENCY_STOP_ALL
    rate_limit_exempt = True  # the kill switch: see multibot.ratelimit

    def post(self, request: Request) -> Response:
        given = EmergencyInput(data=request.data)
        given.is_valid(raise_exception=True)
        outcome = services.emergency_stop_all(actor=Actor.from_request(request), bots=bot_list(user=request.user),
                                              force_exit=given.validated_data["force_exit"])  # fmt: skip
        return Response({"message": "Emergency stop command sent.", "timestamp": timezone.now().isoformat(), **outcome},
                        status=202)  # fmt: skip

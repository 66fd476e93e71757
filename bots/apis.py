"""/api/v1/bots/: CRUD over the user's own bots."""

from __future__ import annotations

import re

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import AuditLog
from audit.resources import Kind
from audit.services import Actor
from bots import services, validation, workspace
from bots.commands import Command, DesiredState
from bots.models import Bot
from bots.predictions import bot_prediction
from bots.processes import process_info
from bots.selectors import bot_by_id_or_name, bot_full_by_id_or_name, bot_lifecycle_list, bot_list, host_list
from bots.serializers import STATUS_HELP, BotSerializer, TextField
from marketdata import vocabulary
from multibot.errors import ForbiddenError, QueryValidationError
from multibot.openapi import ErrorOutput, ValidationErrorOutput
from multibot.permissions import IsSuperuser


class LinesQuery(serializers.Serializer):
    lines = serializers.IntegerField(min_value=1, max_value=5000, default=100)


# -- response shapes, for the schema ------------------------------------------------------------
class BotCommandOutput(serializers.Serializer):
    status = serializers.CharField(help_text="start_command_sent, stop_command_sent, restart_command_sent, ...")
    bot_name = serializers.CharField()
    bot_id = serializers.IntegerField()
    host = serializers.CharField(required=False, allow_blank=True, help_text=(
        "The host whose gateway the command goes to (a first start places the bot); \"\" when no host is live "
        "yet, and the first gateway to take it claims it."))  # fmt: skip
    waiting_for_host = serializers.BooleanField(
        required=False, help_text="Present (true) when the host's gateway is not answering: the command waits for it."
    )
    detail = serializers.CharField(required=False)


class FleetResultOutput(BotCommandOutput):
    status = serializers.CharField(help_text="The command sent, or 'refused' (then detail says why).")


class FleetOutput(serializers.Serializer):
    results = FleetResultOutput(many=True)
    total = serializers.IntegerField()


class BotDeletingOutput(serializers.Serializer):
    status = serializers.CharField()
    bot_name = serializers.CharField()
    detail = serializers.CharField()


class BotStatusOutput(serializers.Serializer):
    status = serializers.CharField()
    bot_name = serializers.CharField()
    bot_status = serializers.ChoiceField(choices=Bot.Status.choices, help_text=STATUS_HELP)
    pid = serializers.IntegerField(allow_null=True)
    desired_state = serializers.ChoiceField(choices=DesiredState.choices)
    detail = serializers.CharField(help_text="What the gateway last said about the bot; may be empty.")
    restart_count = serializers.IntegerField()
    started_at = serializers.DateTimeField(allow_null=True)
    gateway_seen_at = serializers.DateTimeField(
        allow_null=True, help_text="The gateway's heartbeat: when its snapshot last listed the bot's process."
    )
    api_answered_at = serializers.DateTimeField(
        allow_null=True, help_text="The bot's own heartbeat: when its freqtrade API last answered the gateway's probe."
    )


class BotLogsOutput(serializers.Serializer):
    bot_name = serializers.CharField()
    logs = serializers.ListField(child=serializers.CharField(allow_blank=True))


class ProcessOutput(serializers.Serializer):
    bot_id = serializers.IntegerField()
    bot_name = serializers.CharField()
    pid = serializers.IntegerField(allow_null=True)
    status = serializers.CharField(help_text="The operating system's process status, or not_running.")
    host = serializers.CharField(required=False, help_text="Only when the bot runs on another host.")
    detail = serializers.CharField(required=False)
    start_time = serializers.DateTimeField(required=False)
    memory_usage_mb = serializers.FloatField(required=False)
    cpu_percent = serializers.FloatField(required=False)
    children = serializers.IntegerField(required=False)


class EmergencyStoppedBotOutput(serializers.Serializer):
    bot_id = serializers.IntegerField()
    bot_name = serializers.CharField()
    status = serializers.CharField(help_text="emergency_stop_command_sent")
    was = serializers.ChoiceField(choices=Bot.Status.choices, help_text="The bot's status when the stop was sent.")
    pid = serializers.IntegerField(allow_null=True)
    host = serializers.CharField(allow_blank=True)


class EmergencyHostOutput(serializers.Serializer):
    host = serializers.CharField()
    answering = serializers.BooleanField(help_text="Its gateway's heartbeat is fresh.")


class EmergencyStopAllOutput(serializers.Serializer):
    message = serializers.CharField()
    timestamp = serializers.DateTimeField()
    bot_ids = serializers.ListField(child=serializers.IntegerField())
    force_exit = serializers.BooleanField()
    bots = EmergencyStoppedBotOutput(many=True, help_text="Every bot stopped, a bot whose row cannot be loaded too.")
    total = serializers.IntegerField()
    hosts = EmergencyHostOutput(many=True, help_text="Every host the stop goes to.")
    hosts_not_answering = serializers.ListField(child=serializers.CharField(), help_text=(
        "The hosts whose gateway has not beaten within MULTIBOT_HOST_DOWN_AFTER_SECONDS: their bots "
        "stop when it returns (the command waits for it), or must be stopped on the host itself."))  # fmt: skip


@extend_schema_field({"type": "integer", "anyOf": [{"enum": [-1]}, {"minimum": 1, "maximum": 1000}]})
class _MaxOpenTradesDoc(serializers.IntegerField):
    """1 to 1000 open trades, or -1 for no limit."""


# JSON Schema's regular expressions have no (?P<name>...) groups.
_PAIR_PATTERN = re.sub(r"\(\?P<\w+>", "(", vocabulary.PAIR.pattern)


# For the schema only (the view validates with BotSerializer): the rules of bots.validation that
# JSON Schema can state, so that a client sees them before it sends a bot.
class BotInputDoc(BotSerializer):
    """A bot's configuration. Rules across fields (pairs quoted in the stake currency, live trading with
    exchange keys, one name per owner) and names that must exist are answered with a 422."""

    name = serializers.RegexField(validation.BOT_NAME.pattern, max_length=64)
    strategy_name = serializers.RegexField(validation.STRATEGY_NAME.pattern, max_length=100)
    exchange = serializers.RegexField(validation.EXCHANGE_ID.pattern, required=False,
                                      help_text="'replay', or a ccxt exchange id like 'binance'.")  # fmt: skip
    stake_currency = serializers.RegexField(validation.CURRENCY.pattern, required=False)
    timeframe = serializers.ChoiceField(choices=validation.TIMEFRAMES, required=False)
    pair_whitelist = serializers.ListField(child=serializers.RegexField(_PAIR_PATTERN), max_length=500, required=False)
    max_open_trades = _MaxOpenTradesDoc(required=False)

    class Meta(BotSerializer.Meta):
        ref_name = "Bot"


_REFUSED = OpenApiResponse(ErrorOutput, description="The command would change nothing or cannot work now.")
_COMMANDED = {202: BotCommandOutput, 409: _REFUSED}
_BOT_KEY = OpenApiParameter("bot", str, OpenApiParameter.PATH, description="The bot's id, or its name.")


_PLACEMENT_REFUSED = OpenApiResponse(ErrorOutput, description="host is given by a user who is not a superuser.")


@extend_schema_view(
    create=extend_schema(request=BotInputDoc, responses={201: BotSerializer, 403: _PLACEMENT_REFUSED}),
    partial_update=extend_schema(
        request=BotInputDoc, responses={200: BotSerializer, 403: _PLACEMENT_REFUSED, 409: _REFUSED}
    ),
)
class BotViewSet(viewsets.ModelViewSet):
    serializer_class = BotSerializer
    queryset = Bot.objects.none()  # the model, for the schema; get_queryset() scopes to the user
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

    def _placement_by_superusers_only(self, serializer: BotSerializer) -> None:
        current = serializer.instance.host if serializer.instance is not None else ""
        if serializer.validated_data.get("host", current) != current and not self.request.user.is_superuser:
            raise ForbiddenError("Only a superuser places bots on hosts; leave host out and its first start places it.")

    def perform_create(self, serializer: BotSerializer) -> None:
        self._placement_by_superusers_only(serializer)
        serializer.instance = services.bot_create(
            actor=Actor.from_request(self.request), owner=self.request.user, **serializer.validated_data
        )

    @extend_schema(request=BotInputDoc(partial=True),
                   responses={200: BotSerializer, 403: _PLACEMENT_REFUSED, 409: _REFUSED})  # fmt: skip
    def update(self, request: Request, *args: object, **kwargs: object) -> Response:
        # The API document updates with PUT and a partial body: PUT and PATCH both merge.
        kwargs["partial"] = True
        return super().update(request, *args, **kwargs)

    def perform_update(self, serializer: BotSerializer) -> None:
        self._placement_by_superusers_only(serializer)
        serializer.instance = services.bot_update(
            actor=Actor.from_request(self.request), bot=serializer.instance, **serializer.validated_data
        )

    @extend_schema(
        responses={
            204: OpenApiResponse(description="Deleted."),
            202: OpenApiResponse(BotDeletingOutput, description="Running: it is stopped first, then deleted."),
        }
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

    @extend_schema(request=None, responses=_COMMANDED)
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str) -> Response:
        return self._command(Command.START)

    @extend_schema(request=None, responses=_COMMANDED)
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str) -> Response:
        return self._command(Command.STOP)

    @extend_schema(request=None, responses=_COMMANDED)
    @action(detail=True, methods=["post"])
    def restart(self, request: Request, pk: str) -> Response:
        return self._command(Command.RESTART)

    @extend_schema(responses=BotStatusOutput)
    @action(detail=True, methods=["get"], url_path="status")
    def bot_status(self, request: Request, pk: str) -> Response:
        bot = self.get_object()
        return Response({
            "status": "success", "bot_name": bot.name, "bot_status": bot.status, "pid": bot.pid,
            "desired_state": bot.desired_state, "detail": bot.status_detail, "restart_count": bot.restart_count,
            "started_at": bot.started_at, "gateway_seen_at": bot.gateway_seen_at,
            "api_answered_at": bot.api_answered_at,
        })  # fmt: skip

    @extend_schema(parameters=[LinesQuery], responses=BotLogsOutput)
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

    @extend_schema(request=None, responses={202: FleetOutput})
    @action(detail=False, methods=["post"], url_path="start-all")
    def start_all(self, request: Request) -> Response:
        return self._fleet(Command.START)

    @extend_schema(request=None, responses={202: FleetOutput})
    @action(detail=False, methods=["post"], url_path="stop-all")
    def stop_all(self, request: Request) -> Response:
        return self._fleet(Command.STOP)

    @extend_schema(request=None, responses={202: FleetOutput})
    @action(detail=False, methods=["post"], url_path="restart-all")
    def restart_all(self, request: Request) -> Response:
        return self._fleet(Command.RESTART)


@extend_schema(parameters=[_BOT_KEY], responses={200: ProcessOutput, 409: _REFUSED})
class BotProcessApi(APIView):
    """GET /bots/{id or name}/process: the bot's process as the operating system sees it."""

    def get(self, request: Request, bot: str) -> Response:
        found = bot_by_id_or_name(user=request.user, key=bot)
        return Response({"bot_id": found.pk, "bot_name": found.name, **process_info(found)})


@extend_schema(parameters=[_BOT_KEY], request=None, responses=_COMMANDED)
class BotEmergencyStopApi(APIView):
    """POST /bots/{id or name}/emergency-stop: SIGKILL to the bot's process group, through the gateway."""

    audit_action = AuditLog.Action.BOT_KILL
    audit_resource = Kind.BOT
    rate_limit_exempt = True  # the kill switch: see multibot.ratelimit

    def post(self, request: Request, bot: str) -> Response:
        found = bot_by_id_or_name(user=request.user, key=bot)
        return Response(services.bot_command(actor=Actor.from_request(request), bot=found, command=Command.KILL),
                        status=202)  # fmt: skip


class PredictionsQuery(serializers.Serializer):
    pair = TextField(required=False, max_length=40, help_text="One of the bot's pairs (default: its first).")
    timeframe = serializers.ChoiceField(choices=validation.TIMEFRAMES, required=False,
                                        help_text="The bot's timeframe, when given.")  # fmt: skip
    strategy = TextField(required=False, max_length=100, help_text="The bot's strategy, when given.")


class PredictionOutput(serializers.Serializer):
    prediction = serializers.FloatField(allow_null=True, help_text="The model's first target on the latest candle.")
    targets = serializers.DictField(child=serializers.FloatField(allow_null=True),
                                    help_text="Every target the model predicts (its &-prefixed columns).")  # fmt: skip
    confidence = serializers.FloatField(allow_null=True, help_text=(
        "0..1: 0 when FreqAI flagged the candle an outlier (do_predict not 1), else 1 - DI / DI_threshold."
    ))  # fmt: skip
    do_predict = serializers.FloatField(allow_null=True)
    DI_values = serializers.FloatField(allow_null=True, help_text="FreqAI's dissimilarity index of the candle.")
    features_used = serializers.ListField(child=serializers.CharField())


class PredictionParametersOutput(serializers.Serializer):
    pair = serializers.CharField()
    timeframe = serializers.CharField()
    strategy = serializers.CharField()


class BotPredictionsOutput(serializers.Serializer):
    status = serializers.CharField()
    bot_name = serializers.CharField()
    bot_id = serializers.IntegerField()
    model_id = serializers.IntegerField()
    model_version = serializers.IntegerField(help_text="The version the bot's process runs.")
    model_path = serializers.CharField(help_text="The model file it predicts with, relative to MULTIBOT_HOME.")
    trained_timestamp = serializers.IntegerField(help_text="The end of that model's training data (epoch seconds).")
    candle_date = serializers.CharField(allow_null=True)
    predictions = PredictionOutput()
    parameters = PredictionParametersOutput()


class ReloadModelOutput(serializers.Serializer):
    status = serializers.CharField(help_text="model_reloaded")
    bot_name = serializers.CharField()
    bot_id = serializers.IntegerField()
    model_id = serializers.IntegerField()
    model_version = serializers.IntegerField(help_text="The version the bot is pinned to now: the newest ready one.")
    previous_version = serializers.IntegerField(allow_null=True)
    reload_time = serializers.DateTimeField()
    restart = BotCommandOutput(allow_null=True, help_text="The restart sent when the bot runs (or is to); else null.")


_NOT_NOW = OpenApiResponse(ErrorOutput, description="The bot runs no FreqAI model, or is not running.")
_ELSEWHERE = OpenApiResponse(ErrorOutput, description="The bot runs on another host (or its API did not answer).")


_PREDICTIONS = {200: BotPredictionsOutput, 409: _NOT_NOW, 422: ValidationErrorOutput, 503: _ELSEWHERE}


@extend_schema(parameters=[_BOT_KEY, PredictionsQuery], responses=_PREDICTIONS)
class BotPredictionsApi(APIView):
    """GET /bots/{id or name}/predictions: what the bot's FreqAI model predicted on its latest candle."""

    def get(self, request: Request, bot: str) -> Response:
        query = PredictionsQuery(data=request.query_params)
        if not query.is_valid():
            raise QueryValidationError(query.errors)
        found = bot_full_by_id_or_name(user=request.user, key=bot)
        return Response(bot_prediction(bot=found, **query.validated_data))


_NO_MODEL = OpenApiResponse(ErrorOutput, description="The bot runs no FreqAI model, or it has no ready version.")


@extend_schema(parameters=[_BOT_KEY], request=None,
               responses={202: ReloadModelOutput, 200: ReloadModelOutput, 409: _NO_MODEL})  # fmt: skip
class BotReloadModelApi(APIView):
    """POST /bots/{id or name}/reload-model: the bot takes its model's newest ready version; a running bot is
    restarted on it (202), a stopped one starts on it next time (200)."""

    audit_action = AuditLog.Action.BOT_RELOAD_MODEL
    audit_resource = Kind.BOT

    def post(self, request: Request, bot: str) -> Response:
        found = bot_by_id_or_name(user=request.user, key=bot)
        outcome = services.bot_model_reload(actor=Actor.from_request(request), bot=found)
        return Response(outcome, status=202 if outcome["restart"] else 200)


class EmergencyInput(serializers.Serializer):
    force_exit = serializers.BooleanField(default=False)


@extend_schema(request=EmergencyInput, responses={202: EmergencyStopAllOutput})
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


class MoveInput(serializers.Serializer):
    host = TextField(max_length=255, help_text="A registered host (GET /hosts/).")


@extend_schema(parameters=[_BOT_KEY], request=MoveInput,
               responses={200: BotSerializer, 409: _REFUSED, 403: ErrorOutput, 422: ValidationErrorOutput})  # fmt: skip
class BotMoveApi(APIView):
    """POST /bots/{id or name}/move: place a stopped bot on another host (superusers). Its next start runs
    there; its directory on the old host (its dry-run trades database, its logs) stays behind."""

    permission_classes = [IsSuperuser]
    audit_action = AuditLog.Action.BOT_UPDATE
    audit_resource = Kind.BOT

    def post(self, request: Request, bot: str) -> Response:
        given = MoveInput(data=request.data)
        given.is_valid(raise_exception=True)
        found = bot_by_id_or_name(user=request.user, key=bot)
        moved = services.bot_move(actor=Actor.from_request(request), bot=found, host=given.validated_data["host"])
        return Response(BotSerializer(bot_list(user=request.user).get(pk=moved.pk)).data)


class HostCapacityOutput(serializers.Serializer):
    bot_slots = serializers.IntegerField(help_text="Bots the host takes (MULTIBOT_GATEWAY_BOT_SLOTS, or 1 per GiB).")
    free_slots = serializers.IntegerField(help_text="Slots not held by a bot that runs there or should.")
    memory_total_mb = serializers.IntegerField()
    memory_available_mb = serializers.IntegerField()
    cpus = serializers.IntegerField()


class HostBotOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Bot.Status.choices)


class HostOutput(serializers.Serializer):
    name = serializers.CharField(help_text="The gateway's MULTIBOT_GATEWAY_HOST (default: the machine's hostname).")
    status = serializers.ChoiceField(choices=["live", "down"], help_text="live: its gateway beat lately.")
    last_seen_at = serializers.DateTimeField(help_text="Its gateway's last heartbeat.")
    registered_at = serializers.DateTimeField()
    gateway_started_at = serializers.DateTimeField(allow_null=True)
    capacity = HostCapacityOutput()
    bots = HostBotOutput(many=True, help_text="The bots placed on this host.")


class HostListOutput(serializers.Serializer):
    hosts = HostOutput(many=True)
    total = serializers.IntegerField()


@extend_schema(responses=HostListOutput)
class HostListApi(APIView):
    """The bot hosts (each with a gateway), their capacity, bots and health. Superusers only."""

    permission_classes = [IsSuperuser]

    def get(self, request: Request) -> Response:
        hosts = host_list()
        return Response({"hosts": HostOutput(hosts, many=True).data, "total": len(hosts)})

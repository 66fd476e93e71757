"""/api/v1/streams/ and /api/v1/health/streams: the bus as Redis reports it, and dead-letter handling."""

from __future__ import annotations

import time

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import AuditLog
from audit.resources import Kind
from audit.services import Actor
from multibot.errors import QueryValidationError
from multibot.permissions import IsSuperuser
from streams import health, services
from streams.catalog import UnknownStream, stream_config, stream_names
from streams.selectors import dead_letter_list

SERVICE = "management_server"


# -- response shapes, for the schema ------------------------------------------------------------
class GroupOutput(serializers.Serializer):
    consumers = serializers.IntegerField()
    pending = serializers.IntegerField()
    lag = serializers.IntegerField(allow_null=True)
    last_delivered_id = serializers.CharField(allow_null=True)
    entries_read = serializers.IntegerField(allow_null=True)
    lost_pending = serializers.IntegerField()
    lost_unread = serializers.IntegerField()


class DeadLetterCountsOutput(serializers.Serializer):
    total_messages = serializers.IntegerField()
    error_types = serializers.DictField(child=serializers.IntegerField(), help_text="Dead letters per reason.")


class StreamLossOutput(serializers.Serializer):
    lost_entries = serializers.IntegerField()
    reason = serializers.CharField()


class ThroughputOutput(serializers.Serializer):
    messages_per_minute = serializers.FloatField()


class StreamHealthOutput(serializers.Serializer):
    name = serializers.CharField()
    exists = serializers.BooleanField()
    length = serializers.IntegerField()
    maxlen = serializers.IntegerField()
    groups_count = serializers.IntegerField()
    total_lag = serializers.IntegerField()
    total_pending = serializers.IntegerField()
    groups = serializers.DictField(child=GroupOutput(), help_text="By consumer group name.")
    dlq = DeadLetterCountsOutput()
    throughput = ThroughputOutput()
    errors = serializers.DictField(child=StreamLossOutput(), help_text="Entries lost, by consumer group name.")
    last_updated = serializers.FloatField(help_text="Unix time.")


class SystemHealthOutput(serializers.Serializer):
    overall_status = serializers.ChoiceField(choices=["healthy", "degraded", "unhealthy"])
    issues = serializers.ListField(child=serializers.CharField())
    total_streams = serializers.IntegerField()
    total_groups = serializers.IntegerField()
    total_lag = serializers.IntegerField()
    total_dlq_messages = serializers.IntegerField()


class BusMetricsOutput(serializers.Serializer):
    system_health = SystemHealthOutput()
    streams = serializers.DictField(child=StreamHealthOutput(), help_text="By stream name.")


class StreamsHealthOutput(serializers.Serializer):
    service = serializers.CharField()
    timestamp = serializers.FloatField(help_text="Unix time.")
    status = serializers.ChoiceField(choices=["healthy", "degraded", "unhealthy"])
    redis_connected = serializers.BooleanField()
    active_listeners = serializers.IntegerField()
    issues = serializers.ListField(child=serializers.CharField())
    metrics = BusMetricsOutput()


class StreamListOutput(serializers.Serializer):
    streams = serializers.ListField(child=serializers.CharField())
    total = serializers.IntegerField()


class StreamFiguresOutput(serializers.Serializer):
    throughput = ThroughputOutput()
    lag = serializers.DictField(child=serializers.IntegerField(allow_null=True), help_text="By consumer group.")
    pending = serializers.DictField(child=serializers.IntegerField(), help_text="By consumer group.")
    length = serializers.IntegerField()
    dlq_messages = serializers.IntegerField()
    errors = serializers.DictField(child=StreamLossOutput())


class StreamMetricsOutput(serializers.Serializer):
    timestamp = serializers.FloatField(help_text="Unix time.")
    service = serializers.CharField()
    redis_connected = serializers.BooleanField()
    active_listeners = serializers.IntegerField()
    streams = serializers.DictField(child=StreamFiguresOutput(), help_text="By stream name.")
    system_health = SystemHealthOutput()


class StreamConfigOutput(serializers.Serializer):
    name = serializers.CharField()
    maxlen = serializers.IntegerField()
    approximate = serializers.BooleanField()
    consumer_groups = serializers.ListField(child=serializers.CharField(), help_text=(
        "The groups that read the stream; trading_consumers@<host> stands for one group per bot host, made by "
        "its gateway (the stream's health lists those that exist, each with its lag: commands waiting)."))  # fmt: skip
    routing = serializers.ChoiceField(choices=["shared", "per_host"], help_text=(
        "per_host: every host's gateway reads every entry in its own group and acts on its own bots' commands, "
        "so a command waits for its host and no other host acknowledges it; shared: one group."))  # fmt: skip
    description = serializers.CharField()


class DeadLetterStatsOutput(DeadLetterCountsOutput):
    stream = serializers.CharField(help_text="The dead-letter stream's name.")
    last_updated = serializers.FloatField(help_text="Unix time.")


class DeadLetterOutput(serializers.Serializer):
    id = serializers.CharField()
    data = serializers.DictField(help_text="The entry's fields; payload decoded when it is JSON.")
    timestamp = serializers.CharField(help_text="When it was dead-lettered; may be empty.")


class ReplayedOutput(serializers.Serializer):
    dead_letter_id = serializers.CharField()
    message_id = serializers.CharField()


class DeadLetterReplayOutput(serializers.Serializer):
    stream = serializers.CharField()
    replayed = serializers.IntegerField()
    messages = ReplayedOutput(many=True)
    not_found = serializers.ListField(child=serializers.CharField())
    not_replayable = serializers.ListField(child=serializers.CharField())


class DeadLetterPurgeOutput(serializers.Serializer):
    stream = serializers.CharField()
    purged = serializers.IntegerField()


# Any other name is a 404; the schema lists the ones that exist.
_STREAM_NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, enum=stream_names())


def _known(name: str) -> str:
    try:
        stream_config(name)
    except UnknownStream:
        raise NotFound("Stream not found") from None
    return name


@extend_schema(responses=StreamsHealthOutput)
class StreamsHealthApi(APIView):
    def get(self, request: Request) -> Response:
        bus = health.bus_health()
        system = bus["system_health"]
        return Response(
            {
                "service": SERVICE,
                "timestamp": time.time(),
                "status": system["overall_status"],
                "redis_connected": bus["redis_connected"],
                "active_listeners": bus["active_listeners"],
                "issues": system["issues"],
                "metrics": {"system_health": system, "streams": bus["streams"]},
            }
        )


@extend_schema(responses=StreamListOutput)
class StreamListApi(APIView):
    def get(self, request: Request) -> Response:
        names = stream_names()
        return Response({"streams": names, "total": len(names)})


@extend_schema(responses=StreamMetricsOutput)
class StreamMetricsApi(APIView):
    def get(self, request: Request) -> Response:
        bus = health.bus_health()
        streams = {
            name: {
                "throughput": figures["throughput"],
                "lag": {group: g["lag"] for group, g in figures["groups"].items()},
                "pending": {group: g["pending"] for group, g in figures["groups"].items()},
                "length": figures["length"],
                "dlq_messages": figures["dlq"]["total_messages"],
                "errors": figures["errors"],
            }
            for name, figures in bus["streams"].items()
        }
        return Response(
            {
                "timestamp": time.time(),
                "service": SERVICE,
                "redis_connected": bus["redis_connected"],
                "active_listeners": bus["active_listeners"],
                "streams": streams,
                "system_health": bus["system_health"],
            }
        )


@extend_schema(parameters=[_STREAM_NAME], responses=StreamHealthOutput)
class StreamHealthApi(APIView):
    def get(self, request: Request, name: str) -> Response:
        health.sample_throughput([_known(name)])
        return Response(health.stream_health(name))


@extend_schema(parameters=[_STREAM_NAME], responses=StreamConfigOutput)
class StreamConfigApi(APIView):
    def get(self, request: Request, name: str) -> Response:
        return Response(stream_config(_known(name)).as_dict())


@extend_schema(parameters=[_STREAM_NAME], responses=DeadLetterStatsOutput)
class DeadLetterStatsApi(APIView):
    def get(self, request: Request, name: str) -> Response:
        stats = health.dead_letter_stats(_known(name))
        return Response({"stream": stream_config(name).dead_letter, **stats, "last_updated": time.time()})


class LimitQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=10)


@extend_schema(parameters=[_STREAM_NAME, LimitQuery], responses=DeadLetterOutput(many=True))
class DeadLetterMessagesApi(APIView):
    """Dead letters carry other users' commands: superusers only."""

    permission_classes = [IsSuperuser]

    def get(self, request: Request, name: str) -> Response:
        query = LimitQuery(data=request.query_params)
        if not query.is_valid():
            raise QueryValidationError(query.errors)
        return Response(dead_letter_list(stream=_known(name), limit=query.validated_data["limit"]))


class DeadLetterSelection(serializers.Serializer):
    message_ids = serializers.ListField(
        # Entry ids as Redis reads them: two 64-bit numbers (19 digits always fit).
        child=serializers.RegexField(r"^[0-9]{1,19}-[0-9]{1,19}$"),
        required=False,
        allow_empty=False,
        max_length=1000,
    )
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)


@extend_schema(parameters=[_STREAM_NAME], request=DeadLetterSelection, responses=DeadLetterReplayOutput)
class DeadLetterReplayApi(APIView):
    permission_classes = [IsSuperuser]
    audit_action = AuditLog.Action.DEAD_LETTER_REPLAY
    audit_resource = Kind.STREAM

    def post(self, request: Request, name: str) -> Response:
        given = DeadLetterSelection(data=request.data)
        given.is_valid(raise_exception=True)
        result = services.dead_letter_replay(
            actor=Actor.from_request(request), stream=_known(name),
            message_ids=given.validated_data.get("message_ids"), limit=given.validated_data["limit"],
        )  # fmt: skip
        return Response(result)


@extend_schema(parameters=[_STREAM_NAME], request=DeadLetterSelection, responses=DeadLetterPurgeOutput)
class DeadLetterPurgeApi(APIView):
    permission_classes = [IsSuperuser]
    audit_action = AuditLog.Action.DEAD_LETTER_PURGE
    audit_resource = Kind.STREAM

    def post(self, request: Request, name: str) -> Response:
        given = DeadLetterSelection(data=request.data)
        given.is_valid(raise_exception=True)
        result = services.dead_letter_purge(
            actor=Actor.from_request(request), stream=_known(name), message_ids=given.validated_data.get("message_ids")
        )
        return Response(result)

"""/api/v1/streams/ and /api/v1/health/streams: the bus as Redis reports it, and dead-letter handling."""

from __future__ import annotations

import time

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


def _known(name: str) -> str:
    try:
        stream_config(name)
    except UnknownStream:
        raise NotFound("Stream not found") from None
    return name


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


class StreamListApi(APIView):
    def get(self, request: Request) -> Response:
        names = stream_names()
        return Response({"streams": names, "total": len(names)})


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


class StreamHealthApi(APIView):
    def get(self, request: Request, name: str) -> Response:
        health.sample_throughput([_known(name)])
        return Response(health.stream_health(name))


class StreamConfigApi(APIView):
    def get(self, request: Request, name: str) -> Response:
        return Response(stream_config(_known(name)).as_dict())


class DeadLetterStatsApi(APIView):
    def get(self, request: Request, name: str) -> Response:
        stats = health.dead_letter_stats(_known(name))
        return Response({"stream": stream_config(name).dead_letter, **stats, "last_updated": time.time()})


class LimitQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=10)


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
        child=serializers.RegexField(r"^\d+-\d+$"), required=False, allow_empty=False, max_length=1000
    )
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)


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

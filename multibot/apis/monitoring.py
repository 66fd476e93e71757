"""/api/v1/monitoring/: public health for load balancers, authenticated status for operators."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.selectors import bot_statistics
from multibot import health

_STATUSES = [health.HEALTHY, health.DEGRADED, health.UNHEALTHY]


class ComponentOutput(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=_STATUSES)
    details = serializers.DictField(help_text="What was measured: latency, version, instances, or the error.")


class HealthOutput(serializers.Serializer):
    timestamp = serializers.DateTimeField()
    overall_status = serializers.ChoiceField(choices=_STATUSES)
    component_health = ComponentOutput(many=True)


class UsageOutput(serializers.Serializer):
    total_gb = serializers.FloatField()
    used_gb = serializers.FloatField()
    free_gb = serializers.FloatField()
    usage_percent = serializers.FloatField()


class CpuOutput(serializers.Serializer):
    usage_percent = serializers.FloatField()
    cores = serializers.IntegerField(allow_null=True)
    cores_logical = serializers.IntegerField(allow_null=True)


class SystemMetricsOutput(serializers.Serializer):
    cpu = CpuOutput()
    memory = UsageOutput()
    disk = UsageOutput()


class BotStatisticsOutput(serializers.Serializer):
    total_bots = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField(), help_text="Bots per status.")
    running_bots = serializers.IntegerField()


class StatusOutput(serializers.Serializer):
    timestamp = serializers.DateTimeField()
    system_metrics = SystemMetricsOutput()
    component_health = ComponentOutput(many=True)
    bot_statistics = BotStatisticsOutput()
    overall_status = serializers.ChoiceField(choices=_STATUSES)


@extend_schema(
    responses={
        200: OpenApiResponse(HealthOutput, description="Healthy, or degraded (Redis or a component down)."),
        503: OpenApiResponse(HealthOutput, description="Unhealthy: the database is down."),
    }
)
class HealthApi(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    rate_scopes = ("health",)

    def get(self, request: Request) -> Response:
        report = health.health_report()
        # 503 lets a load balancer take an instance out without parsing the body; only for unhealthy,
        # so that a Redis outage (degraded: reads still answer) does not take the web out.
        return Response(report, status=503 if report["overall_status"] == health.UNHEALTHY else 200)


@extend_schema(responses=StatusOutput)
class StatusApi(APIView):
    def get(self, request: Request) -> Response:
        report = health.health_report()
        return Response(
            {
                "timestamp": report["timestamp"],
                "system_metrics": health.system_metrics(),
                "component_health": report["component_health"],
                "bot_statistics": bot_statistics(user=request.user),
                "overall_status": report["overall_status"],
            }
        )

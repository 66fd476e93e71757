"""/api/v1/monitoring/: public health for load balancers, authenticated status for operators."""

from __future__ import annotations

from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.selectors import bot_statistics
from multibot import health


class HealthApi(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    rate_scopes = ("health",)

    def get(self, request: Request) -> Response:
        report = health.health_report()
        # 503 lets a load balancer take an instance out without parsing the body.
        return Response(report, status=503 if report["overall_status"] == health.UNHEALTHY else 200)


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

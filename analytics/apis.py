"""/api/v1/analytics/: fleet-wide figures. Market data is shared by all users (it is not theirs)."""

from __future__ import annotations

from datetime import UTC, datetime

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata.market import market_overview


class MarketApi(APIView):
    def get(self, request: Request) -> Response:
        return Response({"data": market_overview(), "source": "replay", "timestamp": datetime.now(UTC).isoformat()})

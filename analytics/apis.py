"""/api/v1/analytics/: fleet-wide figures. Market data is shared by all users (it is not theirs)."""

from __future__ import annotations

from datetime import UTC, datetime

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata.market import market_overview


class PairMarketOutput(serializers.Serializer):
    pair = serializers.CharField()
    price = serializers.FloatField()
    change_24h = serializers.FloatField(help_text="Percent.")
    volume_24h = serializers.FloatField(help_text="In the quote currency.")
    high_24h = serializers.FloatField()
    low_24h = serializers.FloatField()


class MarketOutput(serializers.Serializer):
    data = serializers.DictField(child=PairMarketOutput(), help_text="By pair, written like btc_usdt.")
    source = serializers.CharField()
    timestamp = serializers.DateTimeField()


@extend_schema(responses=MarketOutput)
class MarketApi(APIView):
    def get(self, request: Request) -> Response:
        return Response({"data": market_overview(), "source": "replay", "timestamp": datetime.now(UTC).isoformat()})

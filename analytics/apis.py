"""/api/v1/analytics/: fleet-wide figures. Market data is shared by all users (it is not theirs).

Every figure but the market's is the caller's own (a superuser's: the whole fleet's), one entry per
``(stake_currency, dry_run)`` group: see analytics/selectors.py for the groups, the starting
capital and the portfolio's sources, analytics/metrics.py for the formulas.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import selectors
from analytics.selectors import DEFAULT_WINDOW, WINDOW_NAMES, Filters
from marketdata.market import market_overview
from multibot.errors import QueryValidationError
from multibot.openapi import ErrorOutput


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


# -- queries -------------------------------------------------------------------------------------
@extend_schema_field(OpenApiTypes.BOOL)
class QueryBoolean(serializers.Field):
    """``true`` or ``false``, as a query string writes a boolean; nothing else (no 0/1, yes/no)."""

    default_error_messages = {"invalid": 'Must be "true" or "false".'}

    def to_internal_value(self, data: Any) -> bool:
        if data not in ("true", "false"):
            self.fail("invalid")
        return data == "true"

    def to_representation(self, value: bool) -> str:
        return "true" if value else "false"


class AnalyticsQuery(serializers.Serializer):
    window = serializers.ChoiceField(choices=WINDOW_NAMES, default=DEFAULT_WINDOW,
                                     help_text="Closed trades count by close date within it.")  # fmt: skip
    bot = serializers.IntegerField(min_value=1, max_value=2**53 - 1, required=False,
                                   help_text="One of your bots (another user's: 404).")  # fmt: skip
    stake_currency = serializers.RegexField(r"^[A-Za-z0-9]{1,16}$", required=False, max_length=16,
                                            help_text="Like USDT (case does not matter).")  # fmt: skip
    dry_run = QueryBoolean(required=False, help_text="Only dry-run (true) or only live (false) figures.")

    def filters(self) -> Filters:
        data = self.validated_data
        currency = data.get("stake_currency")
        return Filters(window=data["window"], bot_id=data.get("bot"), dry_run=data.get("dry_run"),
                       stake_currency=currency.upper() if currency else None)  # fmt: skip


class TradesQuery(AnalyticsQuery):
    is_open = QueryBoolean(required=False, help_text="Only open (true) or only closed (false) trades.")
    # The largest integer a JSON client holds exactly; times per_page, an offset still within 64 bits.
    page = serializers.IntegerField(min_value=1, max_value=2**53 - 1, default=1)
    per_page = serializers.IntegerField(min_value=1, max_value=500, default=50)


def _query(serializer_class: type[AnalyticsQuery], request: Request) -> AnalyticsQuery:
    query = serializer_class(data=request.query_params)
    if not query.is_valid():
        raise QueryValidationError(query.errors)
    return query


# -- outputs -------------------------------------------------------------------------------------
class GroupOutput(serializers.Serializer):
    stake_currency = serializers.CharField()
    dry_run = serializers.BooleanField()


class PerformanceEntry(GroupOutput):
    total_trades = serializers.IntegerField(help_text="Closed trades in the window.")
    profitable_trades = serializers.IntegerField(help_text="Those with a profit above 0.")
    avg_profit = serializers.FloatField(allow_null=True, help_text="Mean profit per closed trade, percent.")
    win_rate = serializers.FloatField(help_text="Percent.")
    profit_abs = serializers.FloatField(allow_null=True, help_text="Realised, in the stake currency.")
    profit_pct = serializers.FloatField(allow_null=True, help_text="profit_abs over the starting capital, percent; "
                                        "null when the capital is unknown.")  # fmt: skip
    open_trades = serializers.IntegerField(help_text="Open now.")
    starting_capital = serializers.FloatField()


class RiskEntry(GroupOutput):
    max_drawdown = serializers.FloatField(allow_null=True, help_text="Percent of the account at its high.")
    max_drawdown_abs = serializers.FloatField(allow_null=True, help_text="In the stake currency.")
    sharpe_ratio = serializers.FloatField(allow_null=True)
    sortino_ratio = serializers.FloatField(allow_null=True)
    calmar_ratio = serializers.FloatField(allow_null=True)
    days = serializers.IntegerField(help_text="The days the ratios are computed over (at least 1 with trades).")
    trades = serializers.IntegerField(help_text="Closed trades in the window.")
    starting_capital = serializers.FloatField()


class AssetOutput(serializers.Serializer):
    symbol = serializers.CharField(help_text="A pair held by open trades, or the stake currency (its free balance).")
    amount = serializers.FloatField(allow_null=True)
    value = serializers.FloatField(allow_null=True, help_text="In the stake currency, at the current rate.")
    profit = serializers.FloatField(allow_null=True, help_text="Unrealised profit of the open trades.")


class PortfolioBotOutput(serializers.Serializer):
    bot_id = serializers.IntegerField()
    bot_name = serializers.CharField()
    balance_source = serializers.ChoiceField(
        choices=["bot", "starting_wallet", "none"],
        help_text="bot: its own /balance, read at read_at; starting_wallet: not read yet (a dry-run wallet); "
        "none: a live bot not read yet.",
    )
    total_value = serializers.FloatField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)


class PortfolioEntry(GroupOutput):
    total_value = serializers.FloatField(allow_null=True, help_text="freqtrade's total of each bot, summed.")
    total_profit = serializers.FloatField(allow_null=True, help_text="Realised in the window plus open profit.")
    profit_percentage = serializers.FloatField(allow_null=True, help_text="total_profit over the starting capital.")
    realised_profit = serializers.FloatField(allow_null=True)
    open_profit = serializers.FloatField(allow_null=True)
    starting_capital = serializers.FloatField()
    assets = AssetOutput(many=True)
    bots = PortfolioBotOutput(many=True)


class ProfitPoint(serializers.Serializer):
    date = serializers.DateField()
    profit_abs = serializers.FloatField(allow_null=True)


class ProfitSeries(serializers.Serializer):
    daily = ProfitPoint(many=True, help_text="Realised profit per UTC day of closing, quiet days included.")
    cumulative = ProfitPoint(many=True)


class BotProfitSeries(ProfitSeries):
    bot_id = serializers.IntegerField(allow_null=True, help_text="null: a deleted bot's trades.")
    bot_name = serializers.CharField()


class ProfitEntry(GroupOutput):
    combined = ProfitSeries()
    bots = BotProfitSeries(many=True)


def _figures_output(name: str, entry: type[serializers.Serializer]) -> type[serializers.Serializer]:
    return type(name, (serializers.Serializer,), {
        "data": entry(many=True, help_text="One entry per (stake_currency, dry_run), dry-run first."),
        "timeframe": serializers.ChoiceField(choices=WINDOW_NAMES),
    })  # fmt: skip


class TradeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    bot_id = serializers.IntegerField(allow_null=True, help_text="null: the bot was deleted since.")
    bot_name = serializers.CharField()
    trade_id = serializers.IntegerField(help_text="freqtrade's own id, within its bot.")
    pair = serializers.CharField()
    side = serializers.ChoiceField(choices=["long", "short"])
    is_open = serializers.BooleanField()
    amount = serializers.FloatField(allow_null=True)
    stake_amount = serializers.FloatField(allow_null=True)
    open_rate = serializers.FloatField(allow_null=True)
    close_rate = serializers.FloatField(allow_null=True)
    current_rate = serializers.FloatField(allow_null=True, help_text="An open trade's, as last read from its bot.")
    open_date = serializers.DateTimeField()
    close_date = serializers.DateTimeField(allow_null=True)
    profit_abs = serializers.FloatField(allow_null=True, help_text="Open: unrealised, at current_rate.")
    profit_ratio = serializers.FloatField(allow_null=True)
    exit_reason = serializers.CharField(allow_blank=True)
    stake_currency = serializers.CharField()
    dry_run = serializers.BooleanField()


class TradePageOutput(serializers.Serializer):
    trades = TradeOutput(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    per_page = serializers.IntegerField()


_NOT_YOUR_BOT = OpenApiResponse(ErrorOutput, description="`bot` names no bot of yours.")


def _figures(request: Request, build: Any) -> Response:
    query = _query(AnalyticsQuery, request)
    filters = query.filters()
    return Response({"data": build(user=request.user, filters=filters), "timeframe": filters.window})


@extend_schema(parameters=[AnalyticsQuery],
               responses={200: _figures_output("PerformanceOutput", PerformanceEntry), 404: _NOT_YOUR_BOT})  # fmt: skip
class PerformanceApi(APIView):
    """Closed trades, wins and profit in the window, and the trades open now."""

    def get(self, request: Request) -> Response:
        return _figures(request, selectors.performance_figures)


@extend_schema(parameters=[AnalyticsQuery],
               responses={200: _figures_output("RiskOutput", RiskEntry), 404: _NOT_YOUR_BOT})  # fmt: skip
class RiskApi(APIView):
    """Max drawdown, Sharpe, Sortino and Calmar of the window's closed trades, as freqtrade computes them."""

    def get(self, request: Request) -> Response:
        return _figures(request, selectors.risk_figures)


@extend_schema(parameters=[AnalyticsQuery],
               responses={200: _figures_output("PortfolioOutput", PortfolioEntry), 404: _NOT_YOUR_BOT})  # fmt: skip
class PortfolioApi(APIView):
    """What the bots hold now, valued by freqtrade itself, and the profit of the window plus open trades."""

    def get(self, request: Request) -> Response:
        return _figures(request, selectors.portfolio_figures)


@extend_schema(parameters=[AnalyticsQuery],
               responses={200: _figures_output("ProfitOutput", ProfitEntry), 404: _NOT_YOUR_BOT})  # fmt: skip
class ProfitApi(APIView):
    """Daily and cumulative realised profit, combined and per bot: chart series."""

    def get(self, request: Request) -> Response:
        return _figures(request, selectors.profit_series)


class TradeListApi(APIView):
    """Open trades across the fleet (at their current price) and the window's closed ones, open first."""

    @extend_schema(operation_id="analytics_trades_list", parameters=[TradesQuery],
                   responses={200: TradePageOutput, 404: _NOT_YOUR_BOT})  # fmt: skip
    def get(self, request: Request) -> Response:
        query = _query(TradesQuery, request)
        data = query.validated_data
        page, per_page = data["page"], data["per_page"]
        trades, total = selectors.trade_page(user=request.user, filters=query.filters(), is_open=data.get("is_open"),
                                             page=page, per_page=per_page)  # fmt: skip
        return Response({"trades": trades, "total": total, "page": page, "per_page": per_page})

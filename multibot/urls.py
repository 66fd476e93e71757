"""URL map: the REST API under /api/v1, its schema and docs, the admin, and the dashboard at /."""

from __future__ import annotations

from django.contrib import admin
from django.urls import converters, include, path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny
from rest_framework.routers import DefaultRouter

from analytics import apis as analytics
from audit.apis import AuditLogApi
from bots.apis import (
    BotEmergencyStopApi,
    BotMoveApi,
    BotPredictionsApi,
    BotProcessApi,
    BotReloadModelApi,
    BotViewSet,
    EmergencyStopAllApi,
    HostListApi,
)
from bots.passthrough import BotFreqtradeApi, BotFreqtradeLoginApi, BotFreqtradeRefreshApi
from dashboard.views import dashboard_page
from freqai import apis as freqai
from jobs import apis as jobs
from marketdata import apis as marketdata
from multibot.apis import auth, monitoring
from multibot.apis.users import UserViewSet
from realtime.apis import WsTicketApi
from strategies import apis as strategies
from streams import apis as streams


class TextConverter(converters.StringConverter):
    """A path segment without NUL: no name holds one, and PostgreSQL refuses it in a query (a 404, not a 500)."""

    regex = "[^/\x00]+"


class TextPathConverter(converters.PathConverter):
    regex = "[^\x00]+"


register_converter(TextConverter, "text")
register_converter(TextPathConverter, "textpath")

# Paths are served with or without a trailing slash: the API document uses both.
router = DefaultRouter()
# DefaultRouter(trailing_slash=...) only takes a boolean (any true value means "/"): set the pattern.
router.trailing_slash = "/?"
router.include_root_view = False
router.register("bots", BotViewSet, basename="bot")
router.register("users", UserViewSet, basename="user")

# A strategy is named by its class name: nothing else reaches the detail view.
STRATEGY_NAME_PATH = r"^strategies/(?P<name>[A-Za-z_][A-Za-z0-9_]{0,99})/?$"

api_v1 = [
    path("auth/login/json", auth.LoginJsonApi.as_view(), name="login-json"),
    path("auth/login", auth.LoginFormApi.as_view(), name="login"),
    path("auth/refresh", auth.RefreshApi.as_view(), name="token-refresh"),
    path("auth/logout", auth.LogoutApi.as_view(), name="logout"),
    path("hosts/", HostListApi.as_view(), name="hosts"),
    path("hosts", HostListApi.as_view()),
    path("monitoring/health", monitoring.HealthApi.as_view(), name="health"),
    path("monitoring/monitoring/status", monitoring.StatusApi.as_view(), name="monitoring-status"),
    path("ws/ticket", WsTicketApi.as_view(), name="ws-ticket"),
    path("audit/", AuditLogApi.as_view(), name="audit"),
    path("audit", AuditLogApi.as_view()),
    path("data/", marketdata.CandleSetListApi.as_view(), name="data"),
    path("data", marketdata.CandleSetListApi.as_view()),
    path("data/upload", marketdata.CandleUploadApi.as_view(), name="data-upload"),
    # <textpath:> because a URL-encoded BTC%2FUSDT arrives decoded, as BTC/USDT, in the path.
    path(
        "data/download/<textpath:pair>/<text:timeframe>", marketdata.CandleDownloadApi.as_view(), name="data-download"
    ),
    # For workers on other hosts, signed with the shared SECRET_KEY; not in the API document.
    path("internal/candles/<int:candle_set_id>", marketdata.CandleFileApi.as_view(), name="internal-candles"),
    re_path(
        r"^internal/strategy-code/(?P<sha256>[0-9a-f]{64})$",
        strategies.StrategyCodeFileApi.as_view(),
        name="internal-strategy-code",
    ),
    path("health/streams", streams.StreamsHealthApi.as_view(), name="streams-health"),
    path("streams/", streams.StreamListApi.as_view(), name="streams"),
    path("streams", streams.StreamListApi.as_view()),
    path("streams/metrics", streams.StreamMetricsApi.as_view(), name="streams-metrics"),
    path("streams/<str:name>/health", streams.StreamHealthApi.as_view(), name="stream-health"),
    path("streams/<str:name>/config", streams.StreamConfigApi.as_view(), name="stream-config"),
    path("streams/<str:name>/dlq/stats", streams.DeadLetterStatsApi.as_view(), name="dlq-stats"),
    path("streams/<str:name>/dlq/messages", streams.DeadLetterMessagesApi.as_view(), name="dlq-messages"),
    path("streams/<str:name>/dlq/replay", streams.DeadLetterReplayApi.as_view(), name="dlq-replay"),
    path("streams/<str:name>/dlq/purge", streams.DeadLetterPurgeApi.as_view(), name="dlq-purge"),
    path("strategies/", strategies.StrategyListApi.as_view(), name="strategies"),
    path("strategies", strategies.StrategyListApi.as_view()),
    path("strategies/upload", strategies.StrategyUploadApi.as_view(), name="strategy-upload"),
    path("analytics/market", analytics.MarketApi.as_view(), name="analytics-market"),
    path("analytics/performance", analytics.PerformanceApi.as_view(), name="analytics-performance"),
    path("analytics/risk", analytics.RiskApi.as_view(), name="analytics-risk"),
    path("analytics/portfolio", analytics.PortfolioApi.as_view(), name="analytics-portfolio"),
    path("analytics/profit", analytics.ProfitApi.as_view(), name="analytics-profit"),
    path("analytics/trades", analytics.TradeListApi.as_view(), name="analytics-trades"),
    path("freqai/models/", freqai.ModelListApi.as_view(), name="freqai-models"),
    path("freqai/models", freqai.ModelListApi.as_view()),
    path("freqai/models/<text:pk>", freqai.ModelDetailApi.as_view(), name="freqai-model"),
    path("freqai/models/<text:pk>/train", freqai.ModelTrainApi.as_view(), name="freqai-model-train"),
    path("freqai/models/<text:pk>/status", freqai.ModelStatusApi.as_view(), name="freqai-model-status"),
    path("freqai/models/<text:pk>/predictions", freqai.ModelPredictionsApi.as_view(), name="freqai-model-predictions"),
    path("freqai/cache/stats", freqai.CacheStatsApi.as_view(), name="freqai-cache-stats"),
    path("jobs/", jobs.JobListApi.as_view(), name="jobs"),
    path("jobs", jobs.JobListApi.as_view()),
    path("jobs/<text:pk>", jobs.JobDetailApi.as_view(), name="job"),
    path("jobs/<text:pk>/logs", jobs.JobLogsApi.as_view(), name="job-logs"),
    path("jobs/<text:pk>/cancel", jobs.JobCancelApi.as_view(), name="job-cancel"),
    # Before any strategies/<name> route: these words are not strategy names.
    path("strategies/backtest", jobs.BacktestStartApi.as_view(), name="backtest-start"),
    path("strategies/backtest/compare", jobs.BacktestCompareApi.as_view(), name="backtest-compare"),
    path("strategies/backtest/<text:task_id>", jobs.BacktestResultApi.as_view(), name="backtest-result"),
    path("hyperopt/losses", jobs.HyperoptLossesApi.as_view(), name="hyperopt-losses"),
    path("hyperopt/start", jobs.HyperoptStartApi.as_view(), name="hyperopt-start"),
    path("hyperopt/results/<text:task_id>", jobs.HyperoptResultApi.as_view(), name="hyperopt-result"),
    path("hyperopt/results/<text:task_id>/apply", jobs.HyperoptApplyApi.as_view(), name="hyperopt-apply"),
    path("hyperopt/strategies", jobs.HyperoptStrategiesApi.as_view(), name="hyperopt-strategies"),
    # Last of the strategies routes (strategies/backtest... go before it), and only a class name.
    re_path(STRATEGY_NAME_PATH, strategies.StrategyDetailApi.as_view(), name="strategy"),
    path("bots/<text:bot>/process", BotProcessApi.as_view(), name="bot-process"),
    path("bots/<text:bot>/emergency-stop", BotEmergencyStopApi.as_view(), name="bot-emergency-stop"),
    path("bots/<text:bot>/move", BotMoveApi.as_view(), name="bot-move"),
    path("bots/<text:bot>/predictions", BotPredictionsApi.as_view(), name="bot-predictions"),
    path("bots/<text:bot>/reload-model", BotReloadModelApi.as_view(), name="bot-reload-model"),
    path("emergency/stop-all", EmergencyStopAllApi.as_view(), name="emergency-stop-all"),
    # Before the router: everything under a bot's ft/ goes on to that bot's own freqtrade API, but
    # freqtrade's token login and refresh, which Multibot answers (FreqUI logs in with them).
    path("bots/<int:pk>/ft/api/v1/token/login", BotFreqtradeLoginApi.as_view(), name="bot-freqtrade-login"),
    path("bots/<int:pk>/ft/api/v1/token/refresh", BotFreqtradeRefreshApi.as_view(), name="bot-freqtrade-refresh"),
    path("bots/<int:pk>/ft/<path:ft_path>", BotFreqtradeApi.as_view(), name="bot-freqtrade-api"),
    path("", include(router.urls)),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(permission_classes=[AllowAny], authentication_classes=[]),
        name="schema",
    ),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[AllowAny], authentication_classes=[]),
        name="docs",
    ),
    path("admin/", admin.site.urls),
    path("", dashboard_page, name="dashboard"),
]

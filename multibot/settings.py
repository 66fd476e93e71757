"""Django settings: every value from the environment, defaults that work for ``make run``."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from marketdata.vocabulary import TIMEFRAMES
from multibot.embedded_redis import EmbeddedRedis
from multibot.env import env_bool, env_int, env_list, env_str
from multibot.files import write_private

# Everything this process writes (database and its WAL, Redis data, bot files, logs) is for this
# user only: files 0600, directories 0700. Set before anything is created; children inherit it.
os.umask(0o077)

BASE_DIR = Path(__file__).resolve().parent.parent
HOME = Path(env_str("MULTIBOT_HOME", str(BASE_DIR / "var"))).resolve()
HOME.mkdir(parents=True, exist_ok=True)
with contextlib.suppress(PermissionError):
    HOME.chmod(0o700)  # a home made by an older version was 0755

PRODUCTION = env_str("MULTIBOT_ENV", "development") == "production"
DEBUG = env_bool("MULTIBOT_DEBUG", False)


def _secret_key() -> str:
    configured = env_str("SECRET_KEY")
    if configured:
        return configured
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY is required when MULTIBOT_ENV=production")
    # Development: generate once and keep it, so tokens and encrypted fields survive restarts.
    path = HOME / "secret_key"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()

HOST = env_str("MULTIBOT_HOST", "127.0.0.1")
PORT = env_int("MULTIBOT_PORT", 8002)
ALLOWED_HOSTS = env_list("MULTIBOT_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", HOST])
CSRF_TRUSTED_ORIGINS = env_list("MULTIBOT_CSRF_TRUSTED_ORIGINS", [])

# -- database ----------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
_SQLITE_OPTIONS = {
    # WAL lets the web, gateway and listeners read while one of them writes;
    # IMMEDIATE avoids "database is locked" on read-then-write upgrades.
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(HOME / "multibot.sqlite3")}}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["OPTIONS"] = dict(_SQLITE_OPTIONS)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("MULTIBOT_DEBUG must be off when MULTIBOT_ENV=production")
    if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        raise ImproperlyConfigured("MULTIBOT_ENV=production needs DATABASE_URL (PostgreSQL), not SQLite")

# -- redis -------------------------------------------------------------------------------------
EMBEDDED_REDIS_DIR = HOME / "redis"
REDIS_URL = env_str("REDIS_URL") or EmbeddedRedis(EMBEDDED_REDIS_DIR).url
REDIS_EMBEDDED = not env_str("REDIS_URL")
REDIS_KEY_PREFIX = env_str("MULTIBOT_REDIS_PREFIX", "multibot:")
# What a request can do without Redis (rate limits, health: multibot.redis_client.request_redis) waits
# for it this long at most, and after a failure skips it for skip_seconds: reads keep their normal time.
REDIS_REQUEST = {
    "timeout_seconds": env_int("MULTIBOT_REDIS_REQUEST_TIMEOUT_MS", 100) / 1000,
    "skip_seconds": env_int("MULTIBOT_REDIS_REQUEST_SKIP_SECONDS", 5),
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX + "cache",
        "OPTIONS": {"socket_timeout": 1.0, "socket_connect_timeout": 1.0},
    }
}
# The WebSocket's fan-out (realtime/). MULTIBOT_CHANNEL_LAYER picks channels_redis' layer: "core"
# (a sorted set per channel, group members in sorted sets) or "pubsub" (Redis PUBLISH/SUBSCRIBE).
# pubsub by measurement (benchmarks/realtime.py: 100 sockets of 10 users, 200 trade events/s for 20 s
# through system:events, the listeners and /ws, 2 shared cores), event to client p50/p95/p99 in ms,
# 100 % delivered by both in every run:
#   quiet machine   pubsub 3.3 / 4.8 / 7.3    core 5.2 / 13.3 / 34.0   (bare Channels echo: 2.0 / 3.1 / 3.9)
#   busy machine    pubsub 4.1 / 7.8 / 14.4   core 9.8 / 186 / 395
# A group_send is one PUBLISH instead of several round trips and a Lua script per group, and nothing
# waits in Redis for a consumer: its at-most-once delivery loses only what a socket that is gone would
# not read, and each socket's own queue bounds a slow one (realtime/consumers.py).
CHANNEL_LAYER_BACKENDS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}
CHANNEL_LAYER = env_str("MULTIBOT_CHANNEL_LAYER", "pubsub")
if CHANNEL_LAYER not in CHANNEL_LAYER_BACKENDS:
    raise ImproperlyConfigured(f"MULTIBOT_CHANNEL_LAYER must be one of {', '.join(CHANNEL_LAYER_BACKENDS)}")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": CHANNEL_LAYER_BACKENDS[CHANNEL_LAYER],
        "CONFIG": {"hosts": [REDIS_URL], "prefix": REDIS_KEY_PREFIX + "channels"},
    }
}
REALTIME = {
    # A keepalive to every socket this often; each one also checks that the account's session still stands.
    "ping_seconds": env_int("MULTIBOT_WS_PING_SECONDS", 20),
    # Messages waiting for one client at most; a client that falls this far behind is closed (4008).
    "queue_size": env_int("MULTIBOT_WS_QUEUE_SIZE", 1000),
    # A ticket from POST /api/v1/ws/ticket opens one socket within this many seconds.
    "ticket_seconds": env_int("MULTIBOT_WS_TICKET_SECONDS", 30),
    # How long broadcast() waits for the channel layer before it drops the event.
    "send_timeout_seconds": env_int("MULTIBOT_WS_SEND_TIMEOUT_MS", 2000) / 1000,
    # system_metrics and stream_health go out this often (a beat task).
    "system_metrics_seconds": env_int("MULTIBOT_SYSTEM_METRICS_SECONDS", 10),
}

# -- celery ------------------------------------------------------------------------------------
JOBS = {
    # A job's freqtrade run is ended (its process group) past this; the Celery limits sit just above it.
    "time_limit_seconds": env_int("MULTIBOT_JOB_TIME_LIMIT_SECONDS", 2 * 3600),
    # Attempts a job gets when its worker is lost mid-run; then it fails with the reason.
    "max_attempts": env_int("MULTIBOT_JOB_MAX_ATTEMPTS", 3),
    # A running job whose worker has not written its heartbeat for this long is reaped.
    "heartbeat_seconds": env_int("MULTIBOT_JOB_HEARTBEAT_SECONDS", 2),
    "stale_seconds": env_int("MULTIBOT_JOB_STALE_SECONDS", 60),
    # A queued job that no worker took within this is published again (a web crash after commit).
    "redispatch_seconds": env_int("MULTIBOT_JOB_REDISPATCH_SECONDS", 60),
    # Seconds from SIGTERM to SIGKILL of a cancelled job's process group.
    "cancel_grace_seconds": env_int("MULTIBOT_JOB_CANCEL_GRACE_SECONDS", 3),
    "reap_every_seconds": env_int("MULTIBOT_JOB_REAP_SECONDS", 15),
    "dir": HOME / "jobs",
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
# Long jobs: acknowledged when done, one at a time per process, given back when the process dies
# (the job row's attempt cap, not Celery, decides whether it runs again).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = env_int("MULTIBOT_WORKER_CONCURRENCY", os.cpu_count() or 1)
CELERY_TASK_SOFT_TIME_LIMIT = JOBS["time_limit_seconds"] + 30
CELERY_TASK_TIME_LIMIT = JOBS["time_limit_seconds"] + 60
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "global_keyprefix": REDIS_KEY_PREFIX + "celery:",
    # An unacknowledged task goes back to the queue after this: above every time limit, or a long
    # job would be handed to a second worker while the first still runs it.
    "visibility_timeout": JOBS["time_limit_seconds"] + 3600,
}
CELERY_BEAT_SCHEDULE_FILENAME = str(HOME / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "jobs-reap": {"task": "jobs.tasks.jobs_reap_task", "schedule": float(JOBS["reap_every_seconds"])},
    "system-metrics": {
        "task": "realtime.tasks.system_metrics_broadcast_task",
        "schedule": float(REALTIME["system_metrics_seconds"]),
        # A sample older than its period is news nobody needs: a busy worker drops it.
        "options": {"expires": float(REALTIME["system_metrics_seconds"])},
    },
}

# -- apps --------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "corsheaders",
    "multibot",
    "audit",
    "bots",
    "strategies",
    "jobs",
    "analytics",
    "freqai",
    "marketdata",
    "streams",
    "realtime",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # First of ours: a preflight is answered before the rate limits count it, and every answer of the
    # pass-through (a 401 or a 429 included) carries the headers a FreqUI page needs to read it.
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "multibot.errors.ApiErrorMiddleware",
    "audit.middleware.AuditMiddleware",
    "multibot.ratelimit.RateLimitMiddleware",
    "multibot.limits.RequestLimitsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "multibot.urls"
ASGI_APPLICATION = "multibot.asgi.application"
AUTH_USER_MODEL = "multibot.User"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = HOME / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# Development serves static files straight from the apps; production runs collectstatic.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# -- FreqUI --------------------------------------------------------------------------------------
# Pages of these origins (FreqUI served from elsewhere: "http://127.0.0.1:3000,https://ui.example")
# may call the bots' freqtrade pass-through (/api/v1/bots/<id>/ft/...) and open its message WebSocket;
# nothing else of the API answers them with CORS headers. Empty: none.
FREQUI_ORIGINS = env_list("MULTIBOT_FREQUI_ORIGINS", [])
CORS_ALLOWED_ORIGINS = FREQUI_ORIGINS
CORS_URLS_REGEX = r"^/api/v1/bots/\d+/ft/"
CORS_ALLOW_METHODS = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT")
# What FreqUI sends: its token (or Basic at login) and JSON bodies.
CORS_ALLOW_HEADERS = ("authorization", "content-type")
# As freqtrade's own API server allows FreqUI (its CORS_origins with allow_credentials).
CORS_ALLOW_CREDENTIALS = True

# -- REST API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["multibot.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "multibot.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "multibot.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "COERCE_DECIMAL_TO_STRING": False,
    "DATETIME_FORMAT": "iso-8601",
}

ACCESS_TOKEN_MINUTES = env_int("MULTIBOT_ACCESS_TOKEN_MINUTES", 60)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=ACCESS_TOKEN_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("MULTIBOT_REFRESH_TOKEN_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "SIGNING_KEY": SECRET_KEY,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Multibot API",
    "DESCRIPTION": "Management server for fleets of freqtrade bots.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Both URL forms answer (`audit` and `audit/`); the schema names each operation once.
    "PREPROCESSING_HOOKS": ["multibot.openapi.one_path_per_operation"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "multibot.openapi.link_created_resources",
    ],
    "ENUM_NAME_OVERRIDES": {
        "BotStatusEnum": "bots.models.Bot.Status",
        "HealthStatusEnum": ["healthy", "degraded", "unhealthy"],
        # A bot may name any freqtrade timeframe; a job's candles have a fixed length (no "1M").
        "TimeframeEnum": "marketdata.vocabulary.TIMEFRAMES",
        "CandleTimeframeEnum": [tf for tf in TIMEFRAMES if tf != "1M"],
        "AnalyticsWindowEnum": "analytics.selectors.WINDOW_NAMES",
    },
}

# Rate limits: "<count>/<second|minute|hour|day>" per scope, counted in Redis (shared by every
# server process). MULTIBOT_RATE_LIMITS overrides any of them: "user=5/minute,health=50/minute".
RATE_LIMITS = {
    "user": "1000/hour",
    "anon": "300/hour",
    "health": "100/minute",
    "upload": "10/hour",
    "login": "30/minute",
    "internal": "600/minute",
}
for _item in env_list("MULTIBOT_RATE_LIMITS"):
    _scope, _, _rate = _item.partition("=")
    RATE_LIMITS[_scope.strip()] = _rate.strip()

# Login lockout (login and HTTP Basic alike), counted in Redis; a count lasts the window after
# its last failure. max_failures for one account from one address lock that address out of that
# account; max_account_failures for one account from anywhere lock it for every address it has
# not logged in from within known_address_days, so strangers never lock the owner out.
LOGIN_LOCKOUT = {
    "max_failures": env_int("MULTIBOT_LOGIN_MAX_FAILURES", 5),
    "max_account_failures": env_int("MULTIBOT_LOGIN_MAX_ACCOUNT_FAILURES", 50),
    "window_seconds": env_int("MULTIBOT_LOGIN_LOCKOUT_SECONDS", 900),
    "known_address_days": env_int("MULTIBOT_LOGIN_KNOWN_ADDRESS_DAYS", 30),
}

MONITORING = {
    # The long-running components this deployment runs besides the web server; each publishes
    # a heartbeat in Redis, and health reports a missing one as down. Later processes add theirs.
    "components": env_list("MULTIBOT_COMPONENTS", ["listeners", "gateway"]),
    "heartbeat_ttl_seconds": env_int("MULTIBOT_HEARTBEAT_TTL", 30),
    # A process manager that stops every process at once still lets a stopping gateway report its
    # bots stopped: the listeners wait this long at most for the local gateway to exit, the embedded
    # Redis for both. (`make run`'s supervisord stops the gateway first, so there they do not wait.)
    "shutdown_wait_seconds": env_int("MULTIBOT_SHUTDOWN_WAIT_SECONDS", 4),
}

# -- logging -----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("MULTIBOT_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # One line per request to a bot's API (the gateway polls every running bot) is noise.
        "httpx": {"level": env_str("MULTIBOT_HTTPX_LOG_LEVEL", "WARNING")},
    },
}

BOTS = {
    # Where this host's gateway keeps its bots' directories (config, trades database, logs); its own per
    # gateway, so that two gateways on one machine never take each other's processes for strays.
    "dir": Path(env_str("MULTIBOT_BOTS_DIR", str(HOME / "bots"))).resolve(),
    # Other bot hosts whose bots' APIs this machine reaches on 127.0.0.1 (gateways on this very machine
    # under other names); this machine's own gateway host (MULTIBOT_GATEWAY_HOST) always is one.
    "local_hosts": frozenset(env_list("MULTIBOT_LOCAL_BOT_HOSTS")),
    # Each bot's own freqtrade API server listens on 127.0.0.1 at a port from this range.
    "api_port_first": env_int("MULTIBOT_BOT_PORT_FIRST", 18100),
    "api_port_last": env_int("MULTIBOT_BOT_PORT_LAST", 18999),
}

STREAMS = {
    # Who we are when we publish or dead-letter (overridden by each long-running command).
    "service_name": env_str("MULTIBOT_SERVICE_NAME", "management_server"),
    # After this many deliveries a failing entry moves to <stream>:dead.
    "max_deliveries": env_int("MULTIBOT_STREAM_MAX_DELIVERIES", 5),
    # An entry pending this long with no keepalive belongs to a dead consumer: reclaim it.
    "claim_idle_ms": env_int("MULTIBOT_STREAM_CLAIM_IDLE_MS", 30_000),
    "retry_delay_ms": env_int("MULTIBOT_STREAM_RETRY_DELAY_MS", 500),
    "batch_size": env_int("MULTIBOT_STREAM_BATCH", 500),
    "block_ms": env_int("MULTIBOT_STREAM_BLOCK_MS", 1000),
    # Per-stream maxlen overrides, e.g. {"system:events": 1000}.
    "maxlen": {},
    # A report applies in milliseconds (a locked database waits out its busy timeout, 10 s, first):
    # a listener still busy after this many seconds is hung, not slow.
    "listener_time_limit": float(env_int("MULTIBOT_LISTENER_TIME_LIMIT_SECONDS", 30)),
    # The outbox (streams/outbox.py): how often the listeners' relay publishes what waits, and how long
    # a sent entry is kept.
    "outbox_relay_seconds": env_int("MULTIBOT_OUTBOX_RELAY_MS", 500) / 1000,
    "outbox_retention_seconds": env_int("MULTIBOT_OUTBOX_RETENTION_SECONDS", 7 * 86400),
}

# The model cache (freqai/cache.py): the predictor child process's LRU of loaded models, per web process.
FREQAI = {
    "cache_size": env_int("MULTIBOT_FREQAI_CACHE_SIZE", 5),
    # Predictors (one per owner, each with its own cache of cache_size) alive at once in a web process.
    "predictors": env_int("MULTIBOT_FREQAI_PREDICTORS", 2),
    # A prediction (a cold load included) that takes longer has the predictor killed and answers 503.
    "request_timeout_seconds": env_int("MULTIBOT_FREQAI_REQUEST_TIMEOUT_SECONDS", 60),
    # The latest stored candles a prediction's features are computed from (of the pair and each correlated pair).
    "prediction_candles": env_int("MULTIBOT_FREQAI_PREDICTION_CANDLES", 500),
}

MARKETDATA = {
    # freqtrade's datadir layout: <dir>/<exchange>/<BASE>_<QUOTE>-<timeframe>.feather
    "dir": HOME / "data",
    "max_upload_bytes": env_int("MULTIBOT_MAX_UPLOAD_BYTES", 50 * 1024 * 1024),
    # `make run` stores synthetic demo candles (marketdata/demo.py) for this many days up to today;
    # MULTIBOT_DEMO_DATA=0 skips it. `manage.py generate_demo_data` regenerates or extends them.
    "demo_on_bootstrap": env_bool("MULTIBOT_DEMO_DATA", True),
    "demo_days": env_int("MULTIBOT_DEMO_DAYS", 60),
    # About two years of 1m candles; a CSV upload with more rows is refused.
    "max_upload_rows": env_int("MULTIBOT_MAX_UPLOAD_ROWS", 1_000_000),
}

# The manager: the web host, whose disk holds the candle files and strategy code. A worker on another
# machine (sharing DATABASE_URL, REDIS_URL and SECRET_KEY, not the disk) fetches from it what a job
# needs and this host lacks (multibot.manager_client), its requests signed with SECRET_KEY.
MANAGER = {
    "url": env_str("MULTIBOT_MANAGER_URL", f"http://127.0.0.1:{PORT}").rstrip("/"),
    "fetch_timeout_seconds": env_int("MULTIBOT_MANAGER_FETCH_TIMEOUT_SECONDS", 60),
}

# Uploaded strategies (strategies/validation.py, strategies/sandbox.py): untrusted code, checked before it is stored.
STRATEGIES = {
    "max_upload_bytes": env_int("MULTIBOT_STRATEGY_MAX_BYTES", 512 * 1024),
    "max_parameters_bytes": env_int("MULTIBOT_STRATEGY_MAX_PARAMETERS_BYTES", 256 * 1024),
    # The dry load's wall-clock limit; freqtrade's own import takes about 2 s of it.
    "dry_load_seconds": env_int("MULTIBOT_STRATEGY_DRY_LOAD_SECONDS", 20),
    # Dry loads at once per web process (each a freqtrade import); more wait, then get a 503.
    "dry_load_concurrency": env_int("MULTIBOT_STRATEGY_DRY_LOADS", 2),
}

# Request bounds, checked before a body or query string is parsed (multibot/limits.py). A bigger
# body is a 413 before it is read; a view names its own cap with ``body_limit = "upload"``.
REQUEST_LIMITS = {
    "body_bytes": {
        "default": env_int("MULTIBOT_MAX_BODY_BYTES", 1024 * 1024),
        # A CSV of candles at its own cap, plus room for the multipart envelope and other fields.
        "upload": MARKETDATA["max_upload_bytes"] + 1024 * 1024,
    },
    "json_depth": env_int("MULTIBOT_MAX_JSON_DEPTH", 32),
    "form_fields": env_int("MULTIBOT_MAX_FORM_FIELDS", 1000),
    "files": env_int("MULTIBOT_MAX_FILES", 10),
}
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_LIMITS["body_bytes"]["default"]
DATA_UPLOAD_MAX_NUMBER_FIELDS = REQUEST_LIMITS["form_fields"]
DATA_UPLOAD_MAX_NUMBER_FILES = REQUEST_LIMITS["files"]

REPLAY = {
    "host": "127.0.0.1",
    "port": env_int("MULTIBOT_REPLAY_PORT", 8003),
    # History kept before the replay's start (indicators and FreqAI need it), and what happens
    # when the stored history runs out: "loop" back to the start, or "stop" at the last candle.
    "warmup_days": env_int("MULTIBOT_REPLAY_WARMUP_DAYS", 14),
    "on_end": env_str("MULTIBOT_REPLAY_ON_END", "loop"),
    "anchor_file": HOME / "replay" / "anchor.json",
}
REPLAY_EXCHANGE_URL = env_str("MULTIBOT_REPLAY_URL", f"http://127.0.0.1:{REPLAY['port']}")

GATEWAY = {
    # This gateway's host: its bots' `host`, its commands' route, its row in /api/v1/hosts/.
    "host": env_str("MULTIBOT_GATEWAY_HOST", socket.gethostname()),
    # How many bots this host takes (placement fills the host with the most free slots); 0: one per GiB
    # of memory (freqtrade's advice is a core and about 2 GB per live bot; a dry-run bot uses far less).
    "bot_slots": env_int("MULTIBOT_GATEWAY_BOT_SLOTS", 0),
    # A host whose gateway has not beaten for this long is down (its commands wait for it).
    "host_down_after_seconds": env_int("MULTIBOT_HOST_DOWN_AFTER_SECONDS", 15),
    "grace_seconds": env_int("MULTIBOT_BOT_STOP_GRACE_SECONDS", 10),
    # An emergency stop (every bot in parallel) leaves no process within 5 s: the bot's API gets this
    # budget for stop-entries, force-exit and a last trade read together, then SIGTERM, this grace, SIGKILL.
    "emergency_api_seconds": env_int("MULTIBOT_EMERGENCY_API_MS", 1500) / 1000,
    "emergency_grace_seconds": env_int("MULTIBOT_EMERGENCY_GRACE_SECONDS", 2),
    "restart_budget": env_int("MULTIBOT_BOT_RESTART_BUDGET", 5),
    "restart_window_seconds": env_int("MULTIBOT_BOT_RESTART_WINDOW_SECONDS", 600),
    "backoff_base_seconds": env_int("MULTIBOT_BOT_RESTART_BACKOFF_SECONDS", 1),
    # How often each running bot's trades are read from its API (new and changed ones are published).
    "trade_poll_seconds": env_int("MULTIBOT_TRADE_POLL_SECONDS", 10),
    # The gateway's heartbeat is the snapshot of its bots: a lost or stale report is healed within one period.
    "snapshot_seconds": env_int("MULTIBOT_GATEWAY_SNAPSHOT_MS", 3000) / 1000,
    # Reports Redis did not take, kept (the newest per bot) until it does: at most this many bots' worth.
    "report_backlog": env_int("MULTIBOT_GATEWAY_REPORT_BACKLOG", 10000),
    # At shutdown, how long the gateway keeps trying to hand its last reports to the bus.
    "shutdown_report_seconds": env_int("MULTIBOT_GATEWAY_SHUTDOWN_REPORT_SECONDS", 10),
    # Liveness: each running bot's own API is probed every interval with this timeout; after this many
    # misses in a row it is unresponsive, after that many it is killed and restarted (within the budget).
    "liveness_interval_seconds": env_int("MULTIBOT_LIVENESS_INTERVAL_MS", 2000) / 1000,
    "liveness_timeout_seconds": env_int("MULTIBOT_LIVENESS_TIMEOUT_MS", 1500) / 1000,
    "unresponsive_after_misses": env_int("MULTIBOT_UNRESPONSIVE_AFTER_MISSES", 3),
    "restart_after_misses": env_int("MULTIBOT_HUNG_RESTART_AFTER_MISSES", 12),
    # freqtrade's main loop ends an iteration every few seconds (/health's last_process): older than this is hung.
    "loop_stale_seconds": env_int("MULTIBOT_BOT_LOOP_STALE_SECONDS", 120),
}

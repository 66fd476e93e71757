"""The API's answers as TypedDicts: the JSON as the server sends it, typed (nothing is converted).

Large, open-ended shapes (analytics figures, stream metrics, freqtrade's own answers) are plain dicts.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

JobStatusName = Literal["queued", "running", "completed", "failed", "cancelled"]
JobKindName = Literal["backtest", "hyperopt", "freqai_training", "data_import"]
FINISHED_JOB_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


# -- auth ----------------------------------------------------------------------------------------
class User(TypedDict):
    id: int
    username: str
    email: str
    full_name: str
    is_active: bool
    is_superuser: bool


class TokenAnswer(TypedDict):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"]
    expires_in: int


class LoginAnswer(TokenAnswer):
    user: User


class Detail(TypedDict):
    detail: str


class Ticket(TypedDict):
    ticket: str
    expires_in: int


# -- bots ----------------------------------------------------------------------------------------
class Bot(TypedDict):
    id: int
    name: str
    strategy_name: str
    exchange: str
    stake_currency: str
    stake_amount: float | Literal["unlimited"]
    timeframe: str
    pair_whitelist: list[str]
    max_open_trades: int
    dry_run: bool
    status: str
    pid: int | None
    total_trades: int
    profitable_trades: int
    total_profit: float
    has_exchange_keys: bool
    gateway_seen_at: str | None
    api_answered_at: str | None
    created_at: str
    updated_at: str


class BotCommandAnswer(TypedDict):
    status: str  # start_command_sent, stop_command_sent, restart_command_sent, kill_command_sent, refused
    bot_name: str
    bot_id: int
    detail: NotRequired[str]


class FleetAnswer(TypedDict):
    results: list[BotCommandAnswer]
    total: int


class BotDeleting(TypedDict):
    status: str
    bot_name: str
    detail: str


class BotStatus(TypedDict):
    status: str
    bot_name: str
    bot_status: str
    pid: int | None
    desired_state: str
    detail: str
    restart_count: int
    started_at: str | None
    gateway_seen_at: str | None
    api_answered_at: str | None


class BotLogs(TypedDict):
    bot_name: str
    logs: list[str]


class BotProcess(TypedDict):
    bot_id: int
    bot_name: str
    pid: int | None
    status: str
    host: NotRequired[str]
    detail: NotRequired[str]
    start_time: NotRequired[str]
    memory_usage_mb: NotRequired[float]
    cpu_percent: NotRequired[float]
    children: NotRequired[int]


class EmergencyStoppedBot(TypedDict):
    bot_id: int
    bot_name: str
    status: str
    was: str
    pid: int | None
    host: str


class EmergencyStopAnswer(TypedDict):
    message: str
    timestamp: str
    bot_ids: list[int]
    force_exit: bool
    bots: list[EmergencyStoppedBot]
    total: int


class HostList(TypedDict):
    hosts: list[dict[str, Any]]
    total: int


# -- strategies, jobs ----------------------------------------------------------------------------
class StrategyVersion(TypedDict):
    sha256: str
    size: int
    uploaded_by: str | None
    created_at: str
    timeframe: str
    has_parameters: bool


class StrategyUploadAnswer(TypedDict):
    status: Literal["uploaded", "unchanged"]
    strategy_name: str
    new_version: bool
    version: StrategyVersion


class StrategyDetail(TypedDict):
    name: str
    class_name: str
    builtin: bool
    timeframe: str | None
    current_version: str | None
    versions: list[StrategyVersion]
    bots: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
    parameters: list[dict[str, Any]]
    parameter_file: Any
    source: NotRequired[str]


class Job(TypedDict):
    id: int
    task_id: str
    kind: JobKindName
    owner: str
    status: JobStatusName
    progress: float
    step: str
    parameters: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    attempt: int
    worker_host: str
    cancel_requested: bool
    error: str


class JobPage(TypedDict):
    jobs: list[Job]
    total: int
    page: int
    per_page: int


class JobLogs(TypedDict):
    job_id: int
    status: str
    logs: list[str]


class JobCancelled(TypedDict):
    status: Literal["cancelled", "cancel_requested"]
    job: Job


class JobStarted(TypedDict):
    status: str  # backtest_started, optimization_started
    task_id: str
    strategy_name: str


class Page(TypedDict):
    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int


class BacktestResult(TypedDict):
    task_id: str
    status: JobStatusName
    progress: float
    step: str
    strategy_name: str | None
    parameters: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    attempt: int
    error: str
    summary: dict[str, Any] | None  # freqtrade's own figures, by its own names
    results_per_pair: list[dict[str, Any]] | None
    exit_reason_summary: list[dict[str, Any]] | None
    equity_curve: Any
    trades: Page


class BacktestComparison(TypedDict):
    backtests: list[dict[str, Any]]
    total: int


class HyperoptResult(TypedDict):
    task_id: str
    status: JobStatusName
    progress: float
    step: str
    strategy_name: str | None
    parameters: dict[str, Any]
    epochs_done: int
    epochs_total: int | None
    best_result: dict[str, Any] | None
    error: str
    attempt: int
    epochs: Page
    created_at: str
    started_at: str | None
    finished_at: str | None


class HyperoptLosses(TypedDict):
    losses: list[str]
    default: str


class HyperoptApplied(TypedDict):
    status: Literal["applied", "unchanged"]
    task_id: str
    strategy_name: str
    new_version: bool
    sha256: str
    version: StrategyVersion
    parameters: Any


# -- data, audit ---------------------------------------------------------------------------------
class CandleSet(TypedDict):
    pair: str
    timeframe: str
    start_date: str
    end_date: str
    records: int
    exchange: str
    source: str
    synthetic: bool
    start: str
    end: str
    updated_at: str


class CandleSetList(TypedDict):
    data: list[CandleSet]


class DataUploadAnswer(TypedDict):
    status: Literal["uploaded"]
    added: int
    updated: int
    records: int
    data: CandleSet


class AuditEntry(TypedDict):
    id: int
    timestamp: str
    user: str
    action: str
    resource: str
    ip_address: str | None
    status: str
    details: dict[str, Any]


class AuditPage(TypedDict):
    logs: list[AuditEntry]
    total: int
    page: int
    per_page: int


# -- monitoring, streams -------------------------------------------------------------------------
class Component(TypedDict):
    name: str
    status: Literal["healthy", "degraded", "unhealthy"]
    details: dict[str, Any]


class Health(TypedDict):
    timestamp: str
    overall_status: Literal["healthy", "degraded", "unhealthy"]
    component_health: list[Component]


class MonitoringStatus(Health):
    system_metrics: dict[str, Any]
    bot_statistics: dict[str, Any]


class StreamList(TypedDict):
    streams: list[str]
    total: int


class StreamConfig(TypedDict):
    name: str
    maxlen: int
    approximate: bool
    consumer_groups: list[str]
    description: str


class DeadLetterStats(TypedDict):
    stream: str  # the dead-letter stream's name
    total_messages: int
    error_types: dict[str, int]
    last_updated: float


class DeadLetter(TypedDict):
    id: str
    data: dict[str, Any]
    timestamp: str


class DeadLetterReplayed(TypedDict):
    stream: str
    replayed: int
    messages: list[dict[str, str]]
    not_found: list[str]
    not_replayable: list[str]


class DeadLetterPurged(TypedDict):
    stream: str
    purged: int


class AnalyticsFigures(TypedDict):
    data: list[dict[str, Any]]  # one entry per (stake_currency, dry_run)
    timeframe: str


class TradePage(TypedDict):
    trades: list[dict[str, Any]]
    total: int
    page: int
    per_page: int

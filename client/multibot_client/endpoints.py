"""Every endpoint of the API, written once: each function builds the description of one request (a ``Call``).

``Client`` sends a Call over a blocking connection, ``AsyncClient`` over an asyncio one; both take
their methods from these functions (same names, same arguments), so an endpoint is added here only.
Paths are relative to ``/api/v1/`` and spelled as the API's schema spells them.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from multibot_client import types as t

T = TypeVar("T")

FileInput = str | os.PathLike[str] | bytes | IO[bytes]


def _json(response: httpx.Response) -> Any:
    return response.json() if response.content else None


def _json_or_text(response: httpx.Response) -> Any:
    """A bot's own answer: JSON when it says so, else its text."""
    if "json" in response.headers.get("content-type", ""):
        return _json(response)
    return response.text


def _nothing(response: httpx.Response) -> None:
    return None


def _bytes(response: httpx.Response) -> bytes:
    return response.content


_NO_BODY: Any = object()


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request: what to send, and how to read a successful answer."""

    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    json: Any = _NO_BODY
    data: Mapping[str, str] | None = None
    files: Mapping[str, tuple[str, bytes, str]] | None = None
    auth: bool = True  # send (and refresh) the access token
    headers: Mapping[str, str] = field(default_factory=dict)  # the call's own (freqtrade's token login)
    accept: tuple[int, ...] = ()  # error statuses whose body is still the answer (health's 503)
    parse: Callable[[httpx.Response], T] = _json

    @property
    def has_json(self) -> bool:
        return self.json is not _NO_BODY

    def request_arguments(self) -> dict[str, Any]:
        """httpx's ``request()`` arguments, but the URL's base and the headers."""
        arguments: dict[str, Any] = {"method": self.method, "url": self.path, "params": dict(self.params)}
        if self.has_json:
            arguments["json"] = self.json
        if self.data is not None:
            arguments["data"] = dict(self.data)
        if self.files is not None:
            arguments["files"] = dict(self.files)
        return arguments


def _segment(value: object) -> str:
    return quote(str(value), safe="")


def _query(**values: Any) -> dict[str, str]:
    """Query parameters as the API reads them: None left out, booleans as true/false."""
    query = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            query[name] = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            query[name] = ",".join(str(item) for item in value)
        else:
            query[name] = str(value)
    return query


def _body(**values: Any) -> dict[str, Any]:
    """A JSON body of the given fields; None means "not given" (the server's default applies)."""
    return {name: value for name, value in values.items() if value is not None}


def _file(value: FileInput, filename: str | None, content_type: str) -> tuple[str, bytes, str]:
    """A file part read into memory, so that the request can be sent again (after a token refresh)."""
    if isinstance(value, bytes):
        return filename or "upload", value, content_type
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        return filename or path.name, path.read_bytes(), content_type
    name = filename or Path(str(getattr(value, "name", "upload"))).name
    return name, value.read(), content_type


# -- auth ----------------------------------------------------------------------------------------
def auth_login(username: str, password: str) -> Call[t.LoginAnswer]:
    """Tokens for a username and password (the client keeps them: use ``Client.login``)."""
    return Call("POST", "auth/login/json", json={"username": username, "password": password}, auth=False)


def auth_refresh(refresh_token: str) -> Call[t.TokenAnswer]:
    """A new token pair; the refresh token given is spent (the client does this by itself)."""
    return Call("POST", "auth/refresh", json={"refresh_token": refresh_token}, auth=False)


def auth_logout(refresh_token: str) -> Call[t.Detail]:
    """Revokes the refresh token (use ``Client.logout``, which forgets the tokens too)."""
    return Call("POST", "auth/logout", json={"refresh_token": refresh_token})


def ws_ticket() -> Call[t.Ticket]:
    """A single-use ticket that opens one ``/ws`` socket, for clients that cannot send a token there."""
    return Call("POST", "ws/ticket")


# -- users (superusers) --------------------------------------------------------------------------
def users_list() -> Call[list[t.User]]:
    return Call("GET", "users/")


def user_get(user_id: int) -> Call[t.User]:
    return Call("GET", f"users/{_segment(user_id)}/")


def user_create(
    username: str, password: str, *, email: str | None = None, full_name: str | None = None,
    is_superuser: bool | None = None,
) -> Call[t.User]:  # fmt: skip
    body = _body(username=username, password=password, email=email, full_name=full_name, is_superuser=is_superuser)
    return Call("POST", "users/", json=body)


def user_activate(user_id: int) -> Call[t.User]:
    return Call("POST", f"users/{_segment(user_id)}/activate/")


def user_deactivate(user_id: int) -> Call[t.User]:
    return Call("POST", f"users/{_segment(user_id)}/deactivate/")


# -- monitoring ----------------------------------------------------------------------------------
def health() -> Call[t.Health]:
    """Component health (no login needed); an unhealthy server's 503 is returned as its report, not raised."""
    return Call("GET", "monitoring/health", auth=False, accept=(503,))


def monitoring_status() -> Call[t.MonitoringStatus]:
    return Call("GET", "monitoring/monitoring/status")


# -- bots ----------------------------------------------------------------------------------------
def bots_list() -> Call[list[t.Bot]]:
    return Call("GET", "bots/")


def bot_get(bot_id: int) -> Call[t.Bot]:
    return Call("GET", f"bots/{_segment(bot_id)}/")


def bot_create(
    name: str, strategy_name: str, *, exchange: str | None = None, stake_currency: str | None = None,
    stake_amount: float | str | None = None, timeframe: str | None = None, pair_whitelist: Iterable[str] | None = None,
    max_open_trades: int | None = None, dry_run: bool | None = None, exchange_key: str | None = None,
    exchange_secret: str | None = None,
) -> Call[t.Bot]:  # fmt: skip
    """A new bot (stopped). Fields left out take the server's defaults (dry run, the replay exchange)."""
    body = _body(name=name, strategy_name=strategy_name, exchange=exchange, stake_currency=stake_currency,
                 stake_amount=stake_amount, timeframe=timeframe,
                 pair_whitelist=None if pair_whitelist is None else list(pair_whitelist),
                 max_open_trades=max_open_trades, dry_run=dry_run, exchange_key=exchange_key,
                 exchange_secret=exchange_secret)  # fmt: skip
    return Call("POST", "bots/", json=body)


def bot_update(bot_id: int, **fields: Any) -> Call[t.Bot]:
    """Changes the given fields only (a stopped bot's; a running one is a Conflict)."""
    return Call("PATCH", f"bots/{_segment(bot_id)}/", json=fields)


def bot_delete(bot_id: int) -> Call[t.BotDeleting | None]:
    """None once deleted; a running bot answers that it is stopped first, then deleted."""
    return Call("DELETE", f"bots/{_segment(bot_id)}/")


def bot_start(bot_id: int) -> Call[t.BotCommandAnswer]:
    """Sends the start; the outcome arrives later (``bot_status``, or a ``bot_status_update`` event)."""
    return Call("POST", f"bots/{_segment(bot_id)}/start/")


def bot_stop(bot_id: int) -> Call[t.BotCommandAnswer]:
    return Call("POST", f"bots/{_segment(bot_id)}/stop/")


def bot_restart(bot_id: int) -> Call[t.BotCommandAnswer]:
    return Call("POST", f"bots/{_segment(bot_id)}/restart/")


def bot_status(bot_id: int) -> Call[t.BotStatus]:
    return Call("GET", f"bots/{_segment(bot_id)}/status/")


def bot_logs(bot_id: int, lines: int | None = None) -> Call[t.BotLogs]:
    return Call("GET", f"bots/{_segment(bot_id)}/logs/", params=_query(lines=lines))


def bot_process(bot: int | str) -> Call[t.BotProcess]:
    """The bot's process as the operating system sees it; ``bot`` is its id or its name."""
    return Call("GET", f"bots/{_segment(bot)}/process")


def bot_emergency_stop(bot: int | str) -> Call[t.BotCommandAnswer]:
    """SIGKILL to the bot's processes (by id or name), at once."""
    return Call("POST", f"bots/{_segment(bot)}/emergency-stop")


def bots_start_all() -> Call[t.FleetAnswer]:
    return Call("POST", "bots/start-all/")


def bots_stop_all() -> Call[t.FleetAnswer]:
    return Call("POST", "bots/stop-all/")


def bots_restart_all() -> Call[t.FleetAnswer]:
    return Call("POST", "bots/restart-all/")


def emergency_stop_all(force_exit: bool = False) -> Call[t.EmergencyStopAnswer]:
    """Every bot of yours (a superuser's: every bot) stopped at once; ``force_exit`` sells open trades first."""
    return Call("POST", "emergency/stop-all", json={"force_exit": force_exit})


def ft(bot_id: int, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None) -> Call[Any]:
    """Any call of the bot's own freqtrade API: ``ft(7, "GET", "profit")`` is its ``/api/v1/profit``.

    ``json`` is the body (None: no body). Its JSON answer (or text) is returned; its error statuses
    raise like the server's own.
    """
    ft_path = path.lstrip("/")
    if not ft_path.startswith("api/v1/"):
        ft_path = "api/v1/" + ft_path
    return Call(method.upper(), f"bots/{_segment(bot_id)}/ft/{quote(ft_path, safe='/')}",
                params=_query(**(params or {})), json=_NO_BODY if json is None else json,
                parse=_json_or_text)  # fmt: skip


def hosts() -> Call[t.HostList]:
    """The bot hosts, their capacity, bots and health (superusers)."""
    return Call("GET", "hosts/")


def bot_move(bot: int | str, host: str) -> Call[t.Bot]:
    """Place a stopped bot (by id or name) on another registered host (superusers); its next start runs there."""
    return Call("POST", f"bots/{_segment(bot)}/move", json={"host": host})


def bot_predictions(bot: int | str, *, pair: str | None = None, timeframe: str | None = None,
                    strategy: str | None = None) -> Call[dict[str, Any]]:  # fmt: skip
    """What the bot's FreqAI model predicted on its latest candle of ``pair`` (default its first): the
    prediction, its confidence (0..1) and the features used, with the model version and file it ran."""
    return Call("GET", f"bots/{_segment(bot)}/predictions",
                params=_query(pair=pair, timeframe=timeframe, strategy=strategy))  # fmt: skip


def bot_reload_model(bot: int | str) -> Call[dict[str, Any]]:
    """The bot takes its FreqAI model's newest ready version; a running bot is restarted on it."""
    return Call("POST", f"bots/{_segment(bot)}/reload-model")


def ft_token_login(bot_id: int, username: str, password: str) -> Call[dict[str, str]]:
    """freqtrade's token login for one bot, as FreqUI sends it (HTTP Basic with a Multibot account): tokens
    valid for that bot's ``/ft/`` API only."""
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    return Call("POST", f"bots/{_segment(bot_id)}/ft/api/v1/token/login", json={}, auth=False,
                headers={"Authorization": f"Basic {credentials}"})  # fmt: skip


def ft_token_refresh(bot_id: int, refresh_token: str) -> Call[dict[str, str]]:
    """freqtrade's token refresh for one bot: a new access token from ``ft_token_login``'s refresh token."""
    return Call("POST", f"bots/{_segment(bot_id)}/ft/api/v1/token/refresh", json={}, auth=False,
                headers={"Authorization": f"Bearer {refresh_token}"})  # fmt: skip


# -- freqai --------------------------------------------------------------------------------------
def freqai_models_list() -> Call[Any]:
    """Your FreqAI models."""
    return Call("GET", "freqai/models/")


def freqai_model_get(model_id: int) -> Call[dict[str, Any]]:
    return Call("GET", f"freqai/models/{_segment(model_id)}")


def freqai_model_create(name: str, model_type: str, strategy_name: str, **fields: Any) -> Call[dict[str, Any]]:
    """A new model: ``model_type`` one of freqtrade's FreqAI model classes, ``fields`` its feature and training
    parameters (the server's defaults for those left out)."""
    return Call("POST", "freqai/models/", json={"name": name, "model_type": model_type,
                                                "strategy_name": strategy_name, **fields})  # fmt: skip


def freqai_model_update(model_id: int, **fields: Any) -> Call[dict[str, Any]]:
    return Call("PATCH", f"freqai/models/{_segment(model_id)}", json=fields)


def freqai_model_delete(model_id: int) -> Call[None]:
    """Deletes the model and its artifacts (a Conflict while it trains)."""
    return Call("DELETE", f"freqai/models/{_segment(model_id)}", parse=_nothing)


def freqai_model_train(model_id: int, *, timerange: str | None = None) -> Call[dict[str, Any]]:
    """Starts a training job (a new version of the model); follow it with ``job_watch(task_id)``."""
    return Call("POST", f"freqai/models/{_segment(model_id)}/train", json=_body(timerange=timerange))


def freqai_model_status(model_id: int) -> Call[dict[str, Any]]:
    """Status, progress, trained pairs and windows, artifacts, metrics and versions."""
    return Call("GET", f"freqai/models/{_segment(model_id)}/status")


def freqai_model_predictions(model_id: int, *, pair: str | None = None,
                             timeframe: str | None = None) -> Call[dict[str, Any]]:  # fmt: skip
    """The newest trained version's prediction for the latest stored candle of ``pair`` (default: its first
    trained pair), served from the server's model cache (``cache``: ``hit`` or ``miss``)."""
    return Call("GET", f"freqai/models/{_segment(model_id)}/predictions", params=_query(pair=pair, timeframe=timeframe))


def freqai_cache_stats() -> Call[dict[str, Any]]:
    """The model cache's size, hit rate, evictions and access times."""
    return Call("GET", "freqai/cache/stats")


# -- strategies ----------------------------------------------------------------------------------
def strategies_list() -> Call[list[str]]:
    """The strategy names you may run: yours and the built-ins."""
    return Call("GET", "strategies/")


def strategy_upload(
    file: FileInput, *, parameters: FileInput | None = None, strategy_name: str | None = None,
    filename: str | None = None,
) -> Call[t.StrategyUploadAnswer]:  # fmt: skip
    """A strategy's .py (a path, bytes or a binary file), optionally with freqtrade's parameter file (.json)."""
    files = {"file": _file(file, filename, "text/x-python")}
    if parameters is not None:
        files["parameters"] = _file(parameters, None, "application/json")
    data = _body(strategy_name=strategy_name)
    return Call("POST", "strategies/upload", files=files, data=data)


def strategy_get(name: str, *, source: bool | None = None, owner: str | None = None) -> Call[t.StrategyDetail]:
    return Call("GET", f"strategies/{_segment(name)}/", params=_query(source=source, owner=owner))


def strategy_delete(name: str, *, owner: str | None = None) -> Call[None]:
    return Call("DELETE", f"strategies/{_segment(name)}/", params=_query(owner=owner), parse=_nothing)


def backtest_start(
    strategy_name: str, *, timerange: str, timeframe: str | None = None, pairs: Iterable[str] | None = None,
    bot_id: int | None = None, stake_currency: str | None = None, stake_amount: float | None = None,
    dry_run_wallet: float | None = None, max_open_trades: int | None = None, timeframe_detail: str | None = None,
    enable_protections: bool | None = None, fee: float | None = None,
) -> Call[t.JobStarted]:  # fmt: skip
    """A backtest job, queued; its ``task_id`` reads its progress and results (``backtest_result``)."""
    body = _body(strategy_name=strategy_name, timerange=timerange, timeframe=timeframe,
                 pairs=None if pairs is None else list(pairs), bot_id=bot_id, stake_currency=stake_currency,
                 stake_amount=stake_amount, dry_run_wallet=dry_run_wallet, max_open_trades=max_open_trades,
                 timeframe_detail=timeframe_detail, enable_protections=enable_protections, fee=fee)  # fmt: skip
    return Call("POST", "strategies/backtest", json=body)


def backtest_result(
    task_id: int | str, *, page: int | None = None, per_page: int | None = None
) -> Call[t.BacktestResult]:
    return Call("GET", f"strategies/backtest/{_segment(task_id)}", params=_query(page=page, per_page=per_page))


def backtest_compare(task_ids: Iterable[int | str]) -> Call[t.BacktestComparison]:
    return Call("GET", "strategies/backtest/compare", params=_query(ids=[str(task_id) for task_id in task_ids]))


# -- hyperopt ------------------------------------------------------------------------------------
def hyperopt_strategies() -> Call[list[str]]:
    """The strategy names you may run that have hyperoptable parameters."""
    return Call("GET", "hyperopt/strategies")


def hyperopt_losses() -> Call[t.HyperoptLosses]:
    return Call("GET", "hyperopt/losses")


def hyperopt_start(
    strategy_name: str, *, timerange: str, epochs: int | None = None, spaces: Iterable[str] | None = None,
    loss: str | None = None, min_trades: int | None = None, jobs: int | None = None, random_state: int | None = None,
    timeframe: str | None = None, pairs: Iterable[str] | None = None, stake_currency: str | None = None,
    stake_amount: float | None = None, dry_run_wallet: float | None = None, max_open_trades: int | None = None,
    fee: float | None = None,
) -> Call[t.JobStarted]:  # fmt: skip
    body = _body(strategy_name=strategy_name, timerange=timerange, epochs=epochs,
                 spaces=None if spaces is None else list(spaces), loss=loss, min_trades=min_trades, jobs=jobs,
                 random_state=random_state, timeframe=timeframe, pairs=None if pairs is None else list(pairs),
                 stake_currency=stake_currency, stake_amount=stake_amount, dry_run_wallet=dry_run_wallet,
                 max_open_trades=max_open_trades, fee=fee)  # fmt: skip
    return Call("POST", "hyperopt/start", json=body)


def hyperopt_result(
    task_id: int | str, *, page: int | None = None, per_page: int | None = None
) -> Call[t.HyperoptResult]:
    return Call("GET", f"hyperopt/results/{_segment(task_id)}", params=_query(page=page, per_page=per_page))


def hyperopt_apply(task_id: int | str) -> Call[t.HyperoptApplied]:
    """The best parameters of a completed hyperopt stored as the strategy's new version (bots start with it)."""
    return Call("POST", f"hyperopt/results/{_segment(task_id)}/apply")


# -- jobs ----------------------------------------------------------------------------------------
def jobs_list(
    *, kind: str | None = None, status: str | None = None, page: int | None = None, per_page: int | None = None
) -> Call[t.JobPage]:
    return Call("GET", "jobs/", params=_query(kind=kind, status=status, page=page, per_page=per_page))


def job_get(job_id: int | str) -> Call[t.Job]:
    return Call("GET", f"jobs/{_segment(job_id)}")


def job_logs(job_id: int | str) -> Call[t.JobLogs]:
    return Call("GET", f"jobs/{_segment(job_id)}/logs")


def job_cancel(job_id: int | str) -> Call[t.JobCancelled]:
    return Call("POST", f"jobs/{_segment(job_id)}/cancel")


# -- market data ---------------------------------------------------------------------------------
def data_list() -> Call[t.CandleSetList]:
    return Call("GET", "data/")


def data_upload(file: FileInput, *, pair: str, timeframe: str, filename: str | None = None) -> Call[t.DataUploadAnswer]:
    """Candles as CSV (a path, bytes or a binary file), merged into the stored ones of ``pair`` and ``timeframe``."""
    return Call("POST", "data/upload", files={"file": _file(file, filename, "text/csv")},
                data={"pair": pair, "timeframe": timeframe})  # fmt: skip


def data_download(pair: str, timeframe: str, *, exchange: str | None = None) -> Call[bytes]:
    """The stored candles as CSV, in the format uploads take."""
    return Call("GET", f"data/download/{_segment(pair.replace('/', '_'))}/{_segment(timeframe)}",
                params=_query(exchange=exchange), parse=_bytes)  # fmt: skip


# -- analytics -----------------------------------------------------------------------------------
def _analytics(
    what: str, window: str | None, bot: int | None, stake_currency: str | None, dry_run: bool | None
) -> Call[t.AnalyticsFigures]:
    return Call("GET", f"analytics/{what}",
                params=_query(window=window, bot=bot, stake_currency=stake_currency, dry_run=dry_run))  # fmt: skip


def analytics_performance(
    *, window: str | None = None, bot: int | None = None, stake_currency: str | None = None,
    dry_run: bool | None = None,
) -> Call[t.AnalyticsFigures]:  # fmt: skip
    return _analytics("performance", window, bot, stake_currency, dry_run)


def analytics_risk(
    *, window: str | None = None, bot: int | None = None, stake_currency: str | None = None,
    dry_run: bool | None = None,
) -> Call[t.AnalyticsFigures]:  # fmt: skip
    return _analytics("risk", window, bot, stake_currency, dry_run)


def analytics_portfolio(
    *, window: str | None = None, bot: int | None = None, stake_currency: str | None = None,
    dry_run: bool | None = None,
) -> Call[t.AnalyticsFigures]:  # fmt: skip
    return _analytics("portfolio", window, bot, stake_currency, dry_run)


def analytics_profit(
    *, window: str | None = None, bot: int | None = None, stake_currency: str | None = None,
    dry_run: bool | None = None,
) -> Call[t.AnalyticsFigures]:  # fmt: skip
    return _analytics("profit", window, bot, stake_currency, dry_run)


def analytics_market() -> Call[dict[str, Any]]:
    """Last price, 24h change and volume per pair, from the market source."""
    return Call("GET", "analytics/market")


def analytics_trades(
    *, window: str | None = None, bot: int | None = None, stake_currency: str | None = None,
    dry_run: bool | None = None, is_open: bool | None = None, page: int | None = None, per_page: int | None = None,
) -> Call[t.TradePage]:  # fmt: skip
    return Call("GET", "analytics/trades", params=_query(window=window, bot=bot, stake_currency=stake_currency,
                dry_run=dry_run, is_open=is_open, page=page, per_page=per_page))  # fmt: skip


# -- audit ---------------------------------------------------------------------------------------
def audit_logs(
    *, user: str | None = None, action: str | None = None, status: str | None = None, resource: str | None = None,
    start_date: str | None = None, end_date: str | None = None, page: int | None = None, per_page: int | None = None,
) -> Call[t.AuditPage]:  # fmt: skip
    """The audit log, newest first (yours; a superuser's: everyone's). Dates: YYYY-MM-DD or ISO 8601."""
    return Call("GET", "audit/", params=_query(user=user, action=action, status=status, resource=resource,
                start_date=start_date, end_date=end_date, page=page, per_page=per_page))  # fmt: skip


# -- streams -------------------------------------------------------------------------------------
def streams_health() -> Call[dict[str, Any]]:
    return Call("GET", "health/streams")


def streams_list() -> Call[t.StreamList]:
    return Call("GET", "streams/")


def streams_metrics() -> Call[dict[str, Any]]:
    return Call("GET", "streams/metrics")


def stream_health(name: str) -> Call[dict[str, Any]]:
    return Call("GET", f"streams/{_segment(name)}/health")


def stream_config(name: str) -> Call[t.StreamConfig]:
    return Call("GET", f"streams/{_segment(name)}/config")


def dlq_stats(name: str) -> Call[t.DeadLetterStats]:
    return Call("GET", f"streams/{_segment(name)}/dlq/stats")


def dlq_messages(name: str, *, limit: int | None = None) -> Call[list[t.DeadLetter]]:
    """The stream's dead letters (superusers: they carry other users' commands)."""
    return Call("GET", f"streams/{_segment(name)}/dlq/messages", params=_query(limit=limit))


def dlq_replay(
    name: str, *, message_ids: Iterable[str] | None = None, limit: int | None = None
) -> Call[t.DeadLetterReplayed]:
    """Dead letters sent again to their stream: the given ids, or the oldest ``limit`` (superusers)."""
    body = _body(message_ids=None if message_ids is None else list(message_ids), limit=limit)
    return Call("POST", f"streams/{_segment(name)}/dlq/replay", json=body)


def dlq_purge(name: str, *, message_ids: Iterable[str] | None = None) -> Call[t.DeadLetterPurged]:
    """Dead letters deleted: the given ids, or all of the stream's (superusers)."""
    body = _body(message_ids=None if message_ids is None else list(message_ids))
    return Call("POST", f"streams/{_segment(name)}/dlq/purge", json=body)


# Every builder above, by name: what Client and AsyncClient expose as methods.
ENDPOINTS: dict[str, Callable[..., Call[Any]]] = {
    name: value for name, value in dict(globals()).items()
    if callable(value) and not name.startswith("_") and getattr(value, "__module__", None) == __name__
    and name not in {"Call", "T"}
}  # fmt: skip

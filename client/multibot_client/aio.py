"""The asyncio client: ``AsyncClient``, the same methods as ``Client`` (from the same endpoint functions), awaited."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from multibot_client import endpoints as api
from multibot_client import types as t
from multibot_client.client import (
    DEFAULT_URL,
    JOB_POLL_SECONDS,
    bearer,
    http_options,
    job_moved,
    job_update,
    transport_failure,
    with_self_signature,
)
from multibot_client.endpoints import Call
from multibot_client.errors import AuthenticationError, ServerUnreachable, error_for
from multibot_client.events import AsyncEventStream, credential_protocols, ws_url
from multibot_client.tokens import MemoryTokenStore, Tokens, TokenStore

P = ParamSpec("P")
T = TypeVar("T")


def _async(build: Callable[P, Call[T]]) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]]:
    @functools.wraps(build)
    async def method(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.send(build(*args, **kwargs))

    with_self_signature(method, build)
    return method


class AsyncClient:
    """A session with one Multibot server, for asyncio code: ``async with AsyncClient(url) as client: ...``."""

    def __init__(
        self, url: str = DEFAULT_URL, *, access_token: str | None = None, refresh_token: str | None = None,
        store: TokenStore | None = None, timeout: float = 30.0, verify: bool = True,
    ) -> None:  # fmt: skip
        self.url = url.rstrip("/")
        self.store: TokenStore = store or MemoryTokenStore(
            Tokens.of(access_token, refresh_token) if access_token else None
        )
        self._http = httpx.AsyncClient(**http_options(self.url, timeout, verify))
        self._refreshing = asyncio.Lock()

    # -- the session -----------------------------------------------------------------------------
    @property
    def tokens(self) -> Tokens | None:
        return self.store.load()

    async def login(self, username: str, password: str) -> t.LoginAnswer:
        answer = await self.send(api.auth_login(username, password))
        self.store.save(Tokens.from_answer(answer))
        return answer

    async def refresh(self) -> Tokens:
        tokens = self.store.load()
        if tokens is None or not tokens.refresh_token:
            raise AuthenticationError(401, "Not logged in")
        return await self._refresh(stale=tokens)

    async def logout(self) -> None:
        tokens = await self._current_tokens()
        try:
            if tokens is not None and tokens.refresh_token:
                await self.send(api.auth_logout(tokens.refresh_token), refresh=False)
        finally:
            self.store.save(None)

    # -- sending ---------------------------------------------------------------------------------
    async def send(self, call: Call[T], *, refresh: bool = True) -> T:
        if not call.auth:
            tokens = None
        else:
            tokens = await self._current_tokens() if refresh else self.store.load()
        response = await self._request(call, tokens)
        if response.status_code == 401 and refresh and tokens is not None and tokens.refresh_token:
            response = await self._request(call, await self._refresh(stale=tokens))
        if response.status_code >= 400 and response.status_code not in call.accept:
            raise error_for(response)
        return call.parse(response)

    async def _request(self, call: Call[Any], tokens: Tokens | None) -> httpx.Response:
        try:
            return await self._http.request(**call.request_arguments(), headers={**bearer(tokens), **call.headers})
        except httpx.TransportError as exc:
            raise transport_failure(self.url, exc) from exc

    async def _current_tokens(self) -> Tokens | None:
        tokens = self.store.load()
        if tokens is not None and tokens.expired() and tokens.refresh_token:
            tokens = await self._refresh(stale=tokens)
        return tokens

    async def _refresh(self, *, stale: Tokens) -> Tokens:
        # Concurrent requests refused together refresh once: the others wait here and take the result.
        async with self._refreshing:
            with self.store.lock():
                current = self.store.load()
                if current is not None and current.access_token != stale.access_token and not current.expired():
                    return current
                refresh_token = (current or stale).refresh_token
                if not refresh_token:
                    raise AuthenticationError(401, "Not logged in")
                response = await self._request(api.auth_refresh(refresh_token), None)
                if response.status_code >= 400:
                    raise error_for(response)
                tokens = Tokens.from_answer(response.json())
                self.store.save(tokens)
                return tokens

    # -- events and jobs -------------------------------------------------------------------------
    def events(
        self, types: Iterable[str] | None = None, *, ticket: bool = False, reconnect: bool = True
    ) -> AsyncEventStream:
        """``async for event in client.events(["job_progress"])``: see ``Client.events``."""

        async def credentials(refresh: bool) -> list[str]:
            if ticket:
                return credential_protocols(ticket=(await self.ws_ticket())["ticket"])
            tokens = await self.refresh() if refresh else await self._current_tokens()
            if tokens is None:
                raise AuthenticationError(401, "Not logged in")
            return credential_protocols(access_token=tokens.access_token)

        return AsyncEventStream(ws_url(self.url), credentials, types, reconnect=reconnect)

    async def job_watch(
        self, job_id: int | str, *, events: bool = True, poll_seconds: float = JOB_POLL_SECONDS,
        timeout: float | None = None,
    ) -> AsyncIterator[t.Job]:  # fmt: skip
        """The job each time it moves, ending with its finished state: see ``Client.job_watch``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        stream: AsyncEventStream | None = None
        if events:
            try:
                stream = await self.events(["job_progress"]).open()
            except (ServerUnreachable, AuthenticationError):
                stream = None
        try:
            job = await self.job_get(job_id)
            yield job
            last_read = time.monotonic()
            while job["status"] not in t.FINISHED_JOB_STATUSES:
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"job {job_id} is still {job['status']} after {timeout:g} seconds")
                interval = poll_seconds if stream is not None else min(poll_seconds, 1.0)
                wait = max(0.0, last_read + interval - time.monotonic())
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - time.monotonic()))
                seen = job
                if stream is not None:
                    try:
                        event = await stream.next(timeout=wait)
                        if event.data.get("job_id") == job["id"]:
                            seen = job_update(job, event.data)
                    except TimeoutError:
                        pass
                    except ServerUnreachable:
                        await stream.close()
                        stream = None
                else:
                    await asyncio.sleep(wait)
                if time.monotonic() - last_read >= interval or seen["status"] in t.FINISHED_JOB_STATUSES:
                    seen, last_read = await self.job_get(job_id), time.monotonic()
                if job_moved(job, seen):
                    job = seen
                    yield job
        finally:
            if stream is not None:
                await stream.close()

    async def job_wait(self, job_id: int | str, *, timeout: float | None = None, events: bool = True) -> t.Job:
        """The job once it has finished; TimeoutError after ``timeout`` seconds."""
        last: t.Job | None = None
        async for job in self.job_watch(job_id, events=events, timeout=timeout):
            last = job
        assert last is not None
        return last

    # -- the connection --------------------------------------------------------------------------
    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- the endpoints (multibot_client.endpoints) ------------------------------------------------
    ws_ticket = _async(api.ws_ticket)
    users_list = _async(api.users_list)
    user_get = _async(api.user_get)
    user_create = _async(api.user_create)
    user_activate = _async(api.user_activate)
    user_deactivate = _async(api.user_deactivate)
    health = _async(api.health)
    monitoring_status = _async(api.monitoring_status)
    bots_list = _async(api.bots_list)
    bot_get = _async(api.bot_get)
    bot_create = _async(api.bot_create)
    bot_update = _async(api.bot_update)
    bot_delete = _async(api.bot_delete)
    bot_start = _async(api.bot_start)
    bot_stop = _async(api.bot_stop)
    bot_restart = _async(api.bot_restart)
    bot_status = _async(api.bot_status)
    bot_logs = _async(api.bot_logs)
    bot_process = _async(api.bot_process)
    bot_emergency_stop = _async(api.bot_emergency_stop)
    bots_start_all = _async(api.bots_start_all)
    bots_stop_all = _async(api.bots_stop_all)
    bots_restart_all = _async(api.bots_restart_all)
    emergency_stop_all = _async(api.emergency_stop_all)
    ft = _async(api.ft)
    hosts = _async(api.hosts)
    bot_move = _async(api.bot_move)
    bot_predictions = _async(api.bot_predictions)
    bot_reload_model = _async(api.bot_reload_model)
    ft_token_login = _async(api.ft_token_login)
    ft_token_refresh = _async(api.ft_token_refresh)
    freqai_models_list = _async(api.freqai_models_list)
    freqai_model_get = _async(api.freqai_model_get)
    freqai_model_create = _async(api.freqai_model_create)
    freqai_model_update = _async(api.freqai_model_update)
    freqai_model_delete = _async(api.freqai_model_delete)
    freqai_model_train = _async(api.freqai_model_train)
    freqai_model_status = _async(api.freqai_model_status)
    freqai_model_predictions = _async(api.freqai_model_predictions)
    freqai_cache_stats = _async(api.freqai_cache_stats)
    strategies_list = _async(api.strategies_list)
    strategy_upload = _async(api.strategy_upload)
    strategy_get = _async(api.strategy_get)
    strategy_delete = _async(api.strategy_delete)
    backtest_start = _async(api.backtest_start)
    backtest_result = _async(api.backtest_result)
    backtest_compare = _async(api.backtest_compare)
    hyperopt_strategies = _async(api.hyperopt_strategies)
    hyperopt_losses = _async(api.hyperopt_losses)
    hyperopt_start = _async(api.hyperopt_start)
    hyperopt_result = _async(api.hyperopt_result)
    hyperopt_apply = _async(api.hyperopt_apply)
    jobs_list = _async(api.jobs_list)
    job_get = _async(api.job_get)
    job_logs = _async(api.job_logs)
    job_cancel = _async(api.job_cancel)
    data_list = _async(api.data_list)
    data_upload = _async(api.data_upload)
    data_download = _async(api.data_download)
    analytics_performance = _async(api.analytics_performance)
    analytics_risk = _async(api.analytics_risk)
    analytics_portfolio = _async(api.analytics_portfolio)
    analytics_profit = _async(api.analytics_profit)
    analytics_market = _async(api.analytics_market)
    analytics_trades = _async(api.analytics_trades)
    audit_logs = _async(api.audit_logs)
    streams_health = _async(api.streams_health)
    streams_list = _async(api.streams_list)
    streams_metrics = _async(api.streams_metrics)
    stream_health = _async(api.stream_health)
    stream_config = _async(api.stream_config)
    dlq_stats = _async(api.dlq_stats)
    dlq_messages = _async(api.dlq_messages)
    dlq_replay = _async(api.dlq_replay)
    dlq_purge = _async(api.dlq_purge)

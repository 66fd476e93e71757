"""The blocking client: ``Client(url).login(username, password)``, then one method per endpoint.

The methods are the functions of ``multibot_client.endpoints`` (same names, same arguments), each
sent by ``Client.send``: the access token goes along, is refreshed once when the server refuses it
as expired (or before, when it is about to expire), and the request is sent again.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from multibot_client import endpoints as api
from multibot_client import types as t
from multibot_client.endpoints import Call
from multibot_client.errors import AuthenticationError, ServerUnreachable, error_for
from multibot_client.events import EventStream, credential_protocols, ws_url
from multibot_client.tokens import MemoryTokenStore, Tokens, TokenStore
from multibot_client.version import __version__

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8002"
USER_AGENT = f"multibot-client/{__version__}"
# Without events (or between them), a watched job is read this often.
JOB_POLL_SECONDS = 5.0


def with_self_signature(method: Callable[..., Any], build: Callable[..., Any]) -> None:
    """``help()`` and ``inspect`` show the endpoint's own arguments, after ``self``."""
    signature = inspect.signature(build)
    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    return_annotation = signature.return_annotation
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self_parameter, *signature.parameters.values()], return_annotation=return_annotation
    )


def _sync(build: Callable[P, Call[T]]) -> Callable[Concatenate[Client, P], T]:
    @functools.wraps(build)
    def method(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.send(build(*args, **kwargs))

    with_self_signature(method, build)
    return method


def transport_failure(url: str, exc: httpx.TransportError) -> ServerUnreachable:
    return ServerUnreachable(url, str(exc) or type(exc).__name__)


def http_options(url: str, timeout: float, verify: bool) -> dict[str, Any]:
    return {"base_url": f"{url}/api/v1/", "timeout": timeout, "verify": verify, "headers": {"User-Agent": USER_AGENT}}


def bearer(tokens: Tokens | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.access_token}"} if tokens is not None else {}


def job_update(job: t.Job, progress: dict[str, Any]) -> t.Job:
    """The job as a ``job_progress`` event says it is now."""
    changed = {key: progress[key] for key in ("status", "progress", "step", "attempt") if key in progress}
    return {**job, **changed}  # type: ignore[typeddict-item]


def job_moved(before: t.Job, after: t.Job) -> bool:
    return any(before.get(key) != after.get(key) for key in ("status", "progress", "step", "attempt"))


class Client:
    """A session with one Multibot server.

    ``access_token``/``refresh_token`` resume a session; ``store`` keeps the tokens elsewhere than in
    memory (the command line keeps them in a file). A refresh rotates both tokens: the store gets the
    new ones.
    """

    def __init__(
        self, url: str = DEFAULT_URL, *, access_token: str | None = None, refresh_token: str | None = None,
        store: TokenStore | None = None, timeout: float = 30.0, verify: bool = True,
    ) -> None:  # fmt: skip
        self.url = url.rstrip("/")
        self.store: TokenStore = store or MemoryTokenStore(
            Tokens.of(access_token, refresh_token) if access_token else None
        )
        self._http = httpx.Client(**http_options(self.url, timeout, verify))
        self._refreshing = threading.Lock()

    # -- the session -----------------------------------------------------------------------------
    @property
    def tokens(self) -> Tokens | None:
        return self.store.load()

    def login(self, username: str, password: str) -> t.LoginAnswer:
        """Log in; the tokens are kept (in the store) and sent with every request after."""
        answer = self.send(api.auth_login(username, password))
        self.store.save(Tokens.from_answer(answer))
        return answer

    def refresh(self) -> Tokens:
        """New tokens now (the client also does this by itself when the access token expires)."""
        tokens = self.store.load()
        if tokens is None or not tokens.refresh_token:
            raise AuthenticationError(401, "Not logged in")
        return self._refresh(stale=tokens)

    def logout(self) -> None:
        """Revoke the refresh token on the server and forget the tokens."""
        tokens = self._current_tokens()
        try:
            if tokens is not None and tokens.refresh_token:
                # Not retried after a refresh: the body names the refresh token that a refresh would spend.
                self.send(api.auth_logout(tokens.refresh_token), refresh=False)
        finally:
            self.store.save(None)

    # -- sending ---------------------------------------------------------------------------------
    def send(self, call: Call[T], *, refresh: bool = True) -> T:
        """Send one request; its answer, read, or the ApiError for its error status."""
        if not call.auth:
            tokens = None
        else:
            tokens = self._current_tokens() if refresh else self.store.load()
        response = self._request(call, tokens)
        if response.status_code == 401 and refresh and tokens is not None and tokens.refresh_token:
            response = self._request(call, self._refresh(stale=tokens))
        if response.status_code >= 400 and response.status_code not in call.accept:
            raise error_for(response)
        return call.parse(response)

    def _request(self, call: Call[Any], tokens: Tokens | None) -> httpx.Response:
        try:
            return self._http.request(**call.request_arguments(), headers={**bearer(tokens), **call.headers})
        except httpx.TransportError as exc:
            raise transport_failure(self.url, exc) from exc

    def _current_tokens(self) -> Tokens | None:
        tokens = self.store.load()
        if tokens is not None and tokens.expired() and tokens.refresh_token:
            tokens = self._refresh(stale=tokens)
        return tokens

    def _refresh(self, *, stale: Tokens) -> Tokens:
        with self._refreshing, self.store.lock():
            current = self.store.load()
            # Refreshed meanwhile (another thread, or another process sharing the store): use those.
            if current is not None and current.access_token != stale.access_token and not current.expired():
                return current
            refresh_token = (current or stale).refresh_token
            if not refresh_token:
                raise AuthenticationError(401, "Not logged in")
            response = self._request(api.auth_refresh(refresh_token), None)
            if response.status_code >= 400:
                raise error_for(response)
            tokens = Tokens.from_answer(response.json())
            self.store.save(tokens)
            return tokens

    # -- events and jobs -------------------------------------------------------------------------
    def events(
        self, types: Iterable[str] | None = None, *, ticket: bool = False, reconnect: bool = True
    ) -> EventStream:
        """``/ws`` events of ``types`` (all when None), as they arrive: ``for event in client.events([...])``.

        ``ticket=True`` opens each socket with a single-use ticket instead of the access token.
        """

        def credentials(refresh: bool) -> list[str]:
            if ticket:
                return credential_protocols(ticket=self.ws_ticket()["ticket"])
            tokens = self.refresh() if refresh else self._current_tokens()
            if tokens is None:
                raise AuthenticationError(401, "Not logged in")
            return credential_protocols(access_token=tokens.access_token)

        return EventStream(ws_url(self.url), credentials, types, reconnect=reconnect)

    def job_watch(
        self, job_id: int | str, *, events: bool = True, poll_seconds: float = JOB_POLL_SECONDS,
        timeout: float | None = None,
    ) -> Iterator[t.Job]:  # fmt: skip
        """The job each time it moves (status, progress, step), ending with its finished state.

        Progress comes from ``job_progress`` events; the job is also read every ``poll_seconds`` (and
        only read, every second, when ``events`` is off or the socket cannot open). TimeoutError when
        it has not finished within ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        stream: EventStream | None = None
        if events:
            try:
                stream = self.events(["job_progress"]).open()
            except (ServerUnreachable, AuthenticationError):
                stream = None
        try:
            job = self.job_get(job_id)
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
                        event = stream.next(timeout=wait)
                        if event.data.get("job_id") == job["id"]:
                            seen = job_update(job, event.data)
                    except TimeoutError:
                        pass
                    except ServerUnreachable:
                        stream.close()
                        stream = None
                else:
                    time.sleep(wait)
                if time.monotonic() - last_read >= interval or seen["status"] in t.FINISHED_JOB_STATUSES:
                    seen, last_read = self.job_get(job_id), time.monotonic()
                if job_moved(job, seen):
                    job = seen
                    yield job
        finally:
            if stream is not None:
                stream.close()

    def job_wait(self, job_id: int | str, *, timeout: float | None = None, events: bool = True) -> t.Job:
        """The job once it has finished (completed, failed or cancelled); TimeoutError after ``timeout`` seconds."""
        last: t.Job | None = None
        for job in self.job_watch(job_id, events=events, timeout=timeout):
            last = job
        assert last is not None
        return last

    # -- the connection --------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the endpoints (multibot_client.endpoints) ------------------------------------------------
    ws_ticket = _sync(api.ws_ticket)
    users_list = _sync(api.users_list)
    user_get = _sync(api.user_get)
    user_create = _sync(api.user_create)
    user_activate = _sync(api.user_activate)
    user_deactivate = _sync(api.user_deactivate)
    health = _sync(api.health)
    monitoring_status = _sync(api.monitoring_status)
    bots_list = _sync(api.bots_list)
    bot_get = _sync(api.bot_get)
    bot_create = _sync(api.bot_create)
    bot_update = _sync(api.bot_update)
    bot_delete = _sync(api.bot_delete)
    bot_start = _sync(api.bot_start)
    bot_stop = _sync(api.bot_stop)
    bot_restart = _sync(api.bot_restart)
    bot_status = _sync(api.bot_status)
    bot_logs = _sync(api.bot_logs)
    bot_process = _sync(api.bot_process)
    bot_emergency_stop = _sync(api.bot_emergency_stop)
    bots_start_all = _sync(api.bots_start_all)
    bots_stop_all = _sync(api.bots_stop_all)
    bots_restart_all = _sync(api.bots_restart_all)
    emergency_stop_all = _sync(api.emergency_stop_all)
    ft = _sync(api.ft)
    hosts = _sync(api.hosts)
    bot_move = _sync(api.bot_move)
    bot_predictions = _sync(api.bot_predictions)
    bot_reload_model = _sync(api.bot_reload_model)
    ft_token_login = _sync(api.ft_token_login)
    ft_token_refresh = _sync(api.ft_token_refresh)
    freqai_models_list = _sync(api.freqai_models_list)
    freqai_model_get = _sync(api.freqai_model_get)
    freqai_model_create = _sync(api.freqai_model_create)
    freqai_model_update = _sync(api.freqai_model_update)
    freqai_model_delete = _sync(api.freqai_model_delete)
    freqai_model_train = _sync(api.freqai_model_train)
    freqai_model_status = _sync(api.freqai_model_status)
    freqai_model_predictions = _sync(api.freqai_model_predictions)
    freqai_cache_stats = _sync(api.freqai_cache_stats)
    strategies_list = _sync(api.strategies_list)
    strategy_upload = _sync(api.strategy_upload)
    strategy_get = _sync(api.strategy_get)
    strategy_delete = _sync(api.strategy_delete)
    backtest_start = _sync(api.backtest_start)
    backtest_result = _sync(api.backtest_result)
    backtest_compare = _sync(api.backtest_compare)
    hyperopt_strategies = _sync(api.hyperopt_strategies)
    hyperopt_losses = _sync(api.hyperopt_losses)
    hyperopt_start = _sync(api.hyperopt_start)
    hyperopt_result = _sync(api.hyperopt_result)
    hyperopt_apply = _sync(api.hyperopt_apply)
    jobs_list = _sync(api.jobs_list)
    job_get = _sync(api.job_get)
    job_logs = _sync(api.job_logs)
    job_cancel = _sync(api.job_cancel)
    data_list = _sync(api.data_list)
    data_upload = _sync(api.data_upload)
    data_download = _sync(api.data_download)
    analytics_performance = _sync(api.analytics_performance)
    analytics_risk = _sync(api.analytics_risk)
    analytics_portfolio = _sync(api.analytics_portfolio)
    analytics_profit = _sync(api.analytics_profit)
    analytics_market = _sync(api.analytics_market)
    analytics_trades = _sync(api.analytics_trades)
    audit_logs = _sync(api.audit_logs)
    streams_health = _sync(api.streams_health)
    streams_list = _sync(api.streams_list)
    streams_metrics = _sync(api.streams_metrics)
    stream_health = _sync(api.stream_health)
    stream_config = _sync(api.stream_config)
    dlq_stats = _sync(api.dlq_stats)
    dlq_messages = _sync(api.dlq_messages)
    dlq_replay = _sync(api.dlq_replay)
    dlq_purge = _sync(api.dlq_purge)

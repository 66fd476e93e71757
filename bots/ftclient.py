"""A client for one bot's own freqtrade REST API (HTTP Basic with the bot's generated credentials).

freqtrade accepts Basic on every endpoint, so no freqtrade token is ever fetched or kept. The
bot's password lives only inside the httpx auth object: it is never in a message, a log line or
this client's repr.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

if TYPE_CHECKING:
    from bots.models import Bot

API = "/api/v1"


class FreqtradeApiError(Exception):
    """The bot answered with an error (``status_code`` set) or could not be reached (``None``)."""

    def __init__(self, message: str, *, status_code: int | None = None, timed_out: bool = False) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.timed_out = timed_out


class FreqtradeClient:
    def __init__(
        self, base_url: str, username: str, password: str, timeout: float = 5.0, *, deadline: float | None = None
    ) -> None:
        """``deadline`` (a ``time.monotonic()`` moment) bounds all calls together: an emergency stop spends
        one budget across several calls, and a call that would start after it is not sent."""
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.timeout, self.deadline = timeout, deadline
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=httpx.BasicAuth(username, password),
            timeout=timeout,
            follow_redirects=False,
            # The one retry in this module: a connection that could not be opened. Nothing was
            # sent, so it is safe for every method; anything else is the caller's decision.
            transport=httpx.HTTPTransport(retries=1),
        )

    def __repr__(self) -> str:
        return f"FreqtradeClient({self.base_url!r}, username={self.username!r})"

    def __enter__(self) -> FreqtradeClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request and return the bot's answer whatever its status; raise only when there is none."""
        url = "/" + path.lstrip("/")
        timeout = self.timeout
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - time.monotonic())
            if timeout <= 0:
                raise FreqtradeApiError(f"{method} {url}: not sent, the time allowed is spent", timed_out=True)
        try:
            return self._http.request(method, url, params=params, json=json, content=content, headers=headers,
                                      timeout=timeout)  # fmt: skip
        except httpx.TimeoutException as exc:
            raise FreqtradeApiError(f"{method} {url}: no answer from {self.base_url} in time", timed_out=True) from exc
        except httpx.HTTPError as exc:
            # httpx's messages name the URL and the OS error, never the Authorization header.
            raise FreqtradeApiError(f"{method} {url}: {self.base_url} not reachable ({exc})") from exc

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, f"{API}/{path}", **kwargs)
        if not response.is_success:
            raise FreqtradeApiError(
                f"{method} {API}/{path} answered {response.status_code}: {_detail(response)}",
                status_code=response.status_code,
            )
        try:
            return response.json()
        except ValueError:
            raise FreqtradeApiError(
                f"{method} {API}/{path} answered {response.status_code} without JSON", status_code=response.status_code
            ) from None

    def ping(self) -> dict[str, Any]:
        return self._call("GET", "ping")

    def status(self) -> list[dict[str, Any]]:
        """The open trades."""
        return self._call("GET", "status")

    def balance(self) -> dict[str, Any]:
        """The wallet: every currency held and its value in the stake currency, ``total`` among them."""
        return self._call("GET", "balance")

    def profit(self) -> dict[str, Any]:
        return self._call("GET", "profit")

    def trades(self, offset: int = 0, limit: int = 500) -> dict[str, Any]:
        """Closed and open trades by id, ``limit`` at most 500 (freqtrade's cap)."""
        return self._call("GET", "trades", params={"offset": offset, "limit": limit})

    def trade(self, trade_id: int) -> dict[str, Any] | None:
        """One trade by id, open or closed; None when the bot no longer has it (deleted)."""
        path = f"{API}/trade/{trade_id}"
        response = self.request("GET", path)
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise FreqtradeApiError(f"GET {path} answered {response.status_code}", status_code=response.status_code)
        try:
            return response.json()
        except ValueError:
            raise FreqtradeApiError(f"GET {path} answered without JSON", status_code=response.status_code) from None

    def stopentry(self) -> dict[str, Any]:
        # "stopbuy" before freqtrade 2022.x; the pinned freqtrade answers both.
        return self._call("POST", "stopentry")

    def stop(self) -> dict[str, Any]:
        """Stops trading; the process and its API keep running."""
        return self._call("POST", "stop")

    def forceexit(self, trade_id: int | str = "all") -> dict[str, Any]:
        return self._call("POST", "forceexit", json={"tradeid": str(trade_id)})

    def pair_candles(self, pair: str, timeframe: str, limit: int = 5) -> dict[str, Any]:
        """The newest ``limit`` analysed candles of a pair: ``columns`` (every column of the strategy's
        dataframe, FreqAI's predictions among them) and ``data`` (rows, oldest first)."""
        return self._call("GET", "pair_candles", params={"pair": pair, "timeframe": timeframe, "limit": limit})

    def show_config(self) -> dict[str, Any]:
        return self._call("GET", "show_config")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail", body) if isinstance(body, dict) else body)[:200]


def message_socket_url(bot: Bot) -> str:
    """The bot's own message WebSocket, opened with its ws_token: for the relay's use, never shown to anyone."""
    if bot.ws_token is None:
        raise FreqtradeApiError(f"the ws_token of bot {bot.name} cannot be decrypted (SECRET_KEY changed?)")
    return f"ws://127.0.0.1:{bot.api_port}{API}/message/ws?{urlencode({'token': bot.ws_token})}"


def client_for(bot: Bot, timeout: float = 5.0, *, deadline: float | None = None) -> FreqtradeClient:
    """A client for the bot's API server, which listens on this host only."""
    if bot.api_password is None:
        raise FreqtradeApiError(f"the API password of bot {bot.name} cannot be decrypted (SECRET_KEY changed?)")
    return FreqtradeClient(f"http://127.0.0.1:{bot.api_port}", bot.api_username, bot.api_password, timeout,
                           deadline=deadline)  # fmt: skip

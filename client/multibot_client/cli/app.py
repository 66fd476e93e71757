"""The ``multibot`` command group: the options every command takes, the session, errors turned into exit codes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from multibot_client.cli.credentials import FileTokenStore, config_dir, read_session
from multibot_client.cli.output import CliError, Exit, Output
from multibot_client.client import DEFAULT_URL, Client
from multibot_client.errors import MultibotError
from multibot_client.version import __version__

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Session:
    """What a command runs with: the server, how to answer, and the stored tokens."""

    url: str | None = None  # given (--url or MULTIBOT_URL); else the stored session's, else the default
    as_json: bool = False
    clients: list[Client] = field(default_factory=list)

    @property
    def store(self) -> FileTokenStore:
        return FileTokenStore(config_dir(), url=self.server_url)

    @property
    def server_url(self) -> str:
        if self.url:
            return self.url.rstrip("/")
        stored = read_session(config_dir()) or {}
        return str(stored.get("url") or DEFAULT_URL).rstrip("/")

    @property
    def output(self) -> Output:
        return Output(as_json=self.as_json)

    def client(self, *, login: bool = True) -> Client:
        """A client with the stored session (``login=False``: without one, for logging in)."""
        store = self.store
        if login and store.load() is None:
            stored_url = (store.read() or {}).get("url")
            elsewhere = f" (the stored session is for {stored_url})" if stored_url and stored_url != store.url else ""
            raise CliError(f"Not logged in to {store.url}{elsewhere}: run `multibot login`", code=Exit.AUTH,
                           as_json=self.as_json)  # fmt: skip
        client = Client(store.url, store=store) if login else Client(store.url)
        self.clients.append(client)
        return client


def session() -> Session:
    return click.get_current_context().ensure_object(Session)


def _set_url(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(Session).url = value


def _set_json(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(Session).as_json = True


def common_options(command: F) -> F:
    """``--url`` and ``--json``, taken by every command as well as by ``multibot`` itself."""
    command = click.option("--json", "as_json", is_flag=True, expose_value=False, callback=_set_json,
                           help="Print machine-readable JSON instead of tables.")(command)  # fmt: skip
    return click.option("--url", metavar="URL", expose_value=False, callback=_set_url,
                        help="The server (overrides MULTIBOT_URL and the logged-in server).")(command)  # fmt: skip


class MultibotGroup(click.Group):
    """Runs a command and turns the client's exceptions into a message on stderr and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MultibotError as exc:
            raise CliError.of(exc, as_json=ctx.ensure_object(Session).as_json) from exc
        finally:
            for client in ctx.ensure_object(Session).clients:
                client.close()


@click.group(cls=MultibotGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", metavar="URL", envvar="MULTIBOT_URL", expose_value=False, callback=_set_url,
              help=f"The server (or MULTIBOT_URL; default: the logged-in server, or {DEFAULT_URL}).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, expose_value=False, callback=_set_json,
              help="Print machine-readable JSON instead of tables.")  # fmt: skip
@click.version_option(__version__, prog_name="multibot")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Drive a Multibot server: bots, backtests, hyperopt, jobs, market data and live events.

    Exit codes: 0 ok, 1 API error (or a failed job), 2 usage error, 3 not logged in or refused
    credentials, 4 not found, 5 conflict, 6 server unreachable.
    """
    ctx.ensure_object(Session)

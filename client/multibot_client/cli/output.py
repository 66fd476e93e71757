"""How the command line answers: rich tables for people, JSON (``--json``) for scripts, meaningful exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from multibot_client.errors import (
    ApiError,
    AuthenticationError,
    Conflict,
    MultibotError,
    NotFound,
    RateLimited,
    ServerUnreachable,
)


class Exit(IntEnum):
    OK = 0
    API_ERROR = 1  # any other refusal of the server, a failed job, a declined confirmation
    USAGE = 2  # click's own: a wrong option or argument
    AUTH = 3  # not logged in, or the server refused the credentials
    NOT_FOUND = 4
    CONFLICT = 5
    UNREACHABLE = 6


def exit_code(exc: MultibotError) -> Exit:
    if isinstance(exc, AuthenticationError):
        return Exit.AUTH
    if isinstance(exc, NotFound):
        return Exit.NOT_FOUND
    if isinstance(exc, Conflict):
        return Exit.CONFLICT
    if isinstance(exc, ServerUnreachable):
        return Exit.UNREACHABLE
    return Exit.API_ERROR


class CliError(click.ClickException):
    """A failure to report on stderr (as JSON with ``--json``) with its exit code."""

    def __init__(self, message: str, *, code: int = Exit.API_ERROR, as_json: bool = False,
                 details: dict[str, Any] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.exit_code = int(code)
        self.as_json, self.details = as_json, details or {}

    @classmethod
    def of(cls, exc: MultibotError, *, as_json: bool) -> CliError:
        details: dict[str, Any] = {}
        if isinstance(exc, ApiError):
            details = {"status_code": exc.status_code, "detail": exc.detail}
            message = exc.message
            if isinstance(exc, AuthenticationError):
                message += " (run `multibot login`)"
            if isinstance(exc, RateLimited) and exc.retry_after is not None:
                details["retry_after"] = exc.retry_after
                message += f" (retry in {exc.retry_after} s)"
        else:
            message = str(exc)
        return cls(message, code=exit_code(exc), as_json=as_json, details=details)

    def show(self, file: Any = None) -> None:
        if self.as_json:
            click.echo(json.dumps({"error": {"message": self.message, "exit_code": self.exit_code, **self.details}},
                                  default=str), err=True)  # fmt: skip
        else:
            click.echo(f"Error: {self.message}", err=True)


class Output:
    """stdout for results (a table, or JSON), stderr for progress and messages."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)

    def json(self, data: Any) -> None:
        click.echo(json.dumps(data, indent=2, default=str))

    def message(self, text: str) -> None:
        """A sentence for people (on stdout; JSON mode prints the data instead)."""
        self.console.print(text, markup=False)

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> None:
        table = Table(*columns, title=title, title_justify="left")
        for row in rows:
            table.add_row(*(Text(cell_text(value)) for value in row))
        self.console.print(table)

    def facts(self, pairs: Iterable[tuple[str, Any]], *, title: str | None = None) -> None:
        """A two-column table of names and values."""
        table = Table(show_header=False, title=title, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        for name, value in pairs:
            table.add_row(name, Text(cell_text(value)))
        self.console.print(table)


def cell_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.2f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


def percent(ratio: Any) -> str:
    return "-" if ratio is None else f"{float(ratio) * 100:.2f}%"

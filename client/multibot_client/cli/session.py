"""``multibot login``, ``logout`` and ``events`` (a live tail of the server's /ws events)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
from rich.text import Text

from multibot_client.cli.app import cli, common_options, session
from multibot_client.cli.output import CliError, Exit
from multibot_client.errors import AuthenticationError
from multibot_client.events import EVENT_TYPES, Event


@cli.command()
@click.option("-u", "--username", prompt=True, help="Asked for when not given.")
@click.option("-p", "--password", help="Asked for when not given (better: a command line is visible to others).")
@common_options
def login(username: str, password: str | None) -> None:
    """Log in and keep the session (credentials.json, readable by you only, in your config directory)."""
    current = session()
    if password is None:
        password = click.prompt("Password", hide_input=True, err=True)
    client = current.client(login=False)
    try:
        answer = client.login(username, password)
    except AuthenticationError as exc:
        raise CliError(exc.message, code=Exit.AUTH, as_json=current.as_json,
                       details={"status_code": exc.status_code, "detail": exc.detail}) from exc  # fmt: skip
    store = current.store
    store.save(client.tokens, username=answer["user"]["username"])
    output = current.output
    if output.as_json:
        output.json({"url": store.url, "user": answer["user"], "expires_in": answer["expires_in"]})
        return
    role = " (superuser)" if answer["user"]["is_superuser"] else ""
    output.message(f"Logged in to {store.url} as {answer['user']['username']}{role}.")


@cli.command()
@common_options
def logout() -> None:
    """End the session on the server and forget it here."""
    current = session()
    store = current.store
    if store.load() is None:
        current.output.message(f"Not logged in to {store.url}.")
        return
    current.client().logout()
    if current.as_json:
        current.output.json({"url": store.url, "logged_out": True})
    else:
        current.output.message(f"Logged out of {store.url}.")


def _summary(event: Event) -> str:
    data: Any = event.data if isinstance(event.data, dict) else {}
    if event.type == "bot_status_update":
        name = data.get("bot_name") or f"bot {data.get('bot_id')}"
        detail = f" ({data['detail']})" if data.get("detail") else ""
        return f"{name} (id {data.get('bot_id')}): {data.get('status')}{detail}"
    if event.type == "job_progress":
        progress = float(data.get("progress") or 0) * 100
        step = f" {data['step']}" if data.get("step") else ""
        return f"{data.get('kind')} {data.get('job_id')}: {data.get('status')} {progress:.0f}%{step}"
    if event.type == "trade_notification":
        return f"bot {data.get('bot_id')} {data.get('event')} {data.get('pair')} at {data.get('price')}"
    if event.type == "audit_event":
        resource = ":".join(str(part) for part in (data.get("resource_type"), data.get("resource_id")) if part)
        return f"{data.get('user') or '-'} {data.get('action')} {resource} {data.get('status') or ''}".rstrip()
    return json.dumps(event.data, default=str, separators=(",", ":"))


@cli.command()
@click.option("-t", "--type", "types", multiple=True, type=click.Choice(EVENT_TYPES),
              help="Only events of this type (repeat for several; default: all).")  # fmt: skip
@common_options
def events(types: tuple[str, ...]) -> None:
    """Print the server's live events as they arrive (one JSON object per line with --json); Ctrl-C ends."""
    current = session()
    output = current.output
    stream = current.client().events(types or None)
    try:
        with stream:
            # On stderr in every mode: a script knows from it that the socket is open.
            chosen = ", ".join(types) if types else "all events"
            click.echo(f"Listening for {chosen} on {current.server_url} (Ctrl-C to stop)", err=True)
            for event in stream:
                if output.as_json:
                    click.echo(json.dumps({"type": event.type, "data": event.data, "at": event.at}, default=str))
                    continue
                line = Text(datetime.fromtimestamp(event.at).strftime("%H:%M:%S "), style="dim")
                line.append(f"{event.type:<18} ", style="bold cyan")
                line.append(_summary(event))
                output.console.print(line)
    except KeyboardInterrupt:
        pass

"""``multibot bots ...`` and ``multibot emergency-stop``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click

from multibot_client import types as t
from multibot_client.cli.app import cli, common_options, session
from multibot_client.cli.output import Output
from multibot_client.client import Client
from multibot_client.errors import NotFound

BOT_COLUMNS = ("ID", "Name", "Status", "Strategy", "Exchange", "Pairs", "Timeframe", "Dry run", "Trades", "Profit")


def bot_id(client: Client, key: str) -> int:
    """A bot named by its id or its name."""
    if key.isdigit():
        return int(key)
    for bot in client.bots_list():
        if bot["name"] == key:
            return bot["id"]
    raise NotFound(404, f"No bot of yours is named {key!r}.")


def _rows(bots: Iterable[t.Bot]) -> list[list[Any]]:
    return [[bot["id"], bot["name"], bot["status"], bot["strategy_name"], bot["exchange"], bot["pair_whitelist"],
             bot["timeframe"], bot["dry_run"], bot["total_trades"], f"{bot['total_profit']} {bot['stake_currency']}"]
            for bot in bots]  # fmt: skip


def _answer(output: Output, answer: t.BotCommandAnswer) -> None:
    if output.as_json:
        output.json(answer)
    else:
        output.message(f"{answer['status']}: {answer['bot_name']} (id {answer['bot_id']})")


@cli.group()
@common_options
def bots() -> None:
    """List, create, start, stop and read your bots."""


@bots.command("list")
@common_options
def bots_list() -> None:
    """Your bots (a superuser's: every bot)."""
    current = session()
    found = current.client().bots_list()
    output = current.output
    if output.as_json:
        output.json(found)
    elif not found:
        output.message("No bots yet: `multibot bots create NAME --strategy STRATEGY`.")
    else:
        output.table(BOT_COLUMNS, _rows(found))


@bots.command("create")
@click.argument("name")
@click.option("-s", "--strategy", "strategy_name", required=True, help="A strategy you may run (see its name).")
@click.option("--exchange", help="'replay' (the default: stored candles as a live market) or a ccxt exchange id.")
@click.option("-p", "--pair", "pairs", multiple=True, help="A pair to trade, like BTC/USDT (repeat for several).")
@click.option("--timeframe", help="Like 5m.")
@click.option("--stake-currency", help="Like USDT.")
@click.option("--stake-amount", help="Per trade, or 'unlimited'.")
@click.option("--max-open-trades", type=int)
@click.option("--live", is_flag=True, help="Trade for real (needs exchange keys); the default is a dry run.")
@common_options
def bots_create(name: str, strategy_name: str, exchange: str | None, pairs: tuple[str, ...], timeframe: str | None,
                stake_currency: str | None, stake_amount: str | None, max_open_trades: int | None,
                live: bool) -> None:  # fmt: skip
    """Create a bot (stopped)."""
    current = session()
    stake: float | str | None = stake_amount
    if stake_amount is not None and stake_amount != "unlimited":
        try:
            stake = float(stake_amount)
        except ValueError:
            raise click.BadParameter("a number, or 'unlimited'", param_hint="--stake-amount") from None
    bot = current.client().bot_create(
        name, strategy_name, exchange=exchange, pair_whitelist=list(pairs) or None, timeframe=timeframe,
        stake_currency=stake_currency, stake_amount=stake, max_open_trades=max_open_trades,
        dry_run=False if live else None,
    )  # fmt: skip
    output = current.output
    if output.as_json:
        output.json(bot)
    else:
        output.table(BOT_COLUMNS, _rows([bot]), title=f"Created bot {bot['name']}")


def _lifecycle(name: str, help_text: str) -> None:
    @bots.command(name, help=help_text)
    @click.argument("bot")
    @common_options
    def command(bot: str) -> None:
        current = session()
        client = current.client()
        send = {"start": client.bot_start, "stop": client.bot_stop, "restart": client.bot_restart}[name]
        _answer(current.output, send(bot_id(client, bot)))


_lifecycle("start", "Start BOT (its id or name); the outcome follows (`bots status`, `events`).")
_lifecycle("stop", "Stop BOT (its id or name).")
_lifecycle("restart", "Restart BOT (its id or name).")


@bots.command("status")
@click.argument("bot")
@common_options
def bots_status(bot: str) -> None:
    """What the gateway last said of BOT: its status, process and heartbeats."""
    current = session()
    client = current.client()
    found = client.bot_status(bot_id(client, bot))
    output = current.output
    if output.as_json:
        output.json(found)
        return
    output.facts([("Bot", found["bot_name"]), ("Status", found["bot_status"]), ("Desired", found["desired_state"]),
                  ("PID", found["pid"]), ("Detail", found["detail"] or None), ("Restarts", found["restart_count"]),
                  ("Started", found["started_at"]), ("Gateway saw it", found["gateway_seen_at"]),
                  ("Its API answered", found["api_answered_at"])])  # fmt: skip


@bots.command("logs")
@click.argument("bot")
@click.option("-n", "--lines", type=click.IntRange(1, 5000), default=100, show_default=True)
@common_options
def bots_logs(bot: str, lines: int) -> None:
    """The last lines of BOT's freqtrade log."""
    current = session()
    client = current.client()
    found = client.bot_logs(bot_id(client, bot), lines=lines)
    if current.as_json:
        current.output.json(found)
        return
    for line in found["logs"]:
        click.echo(line)


@bots.command("delete")
@click.argument("bot")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@common_options
def bots_delete(bot: str, yes: bool) -> None:
    """Delete BOT (a running bot is stopped first)."""
    current = session()
    client = current.client()
    key = bot_id(client, bot)
    if not yes:
        click.confirm(f"Delete bot {bot}, its trades database and its logs?", abort=True, err=True)
    answer = client.bot_delete(key)
    output = current.output
    if output.as_json:
        output.json(answer or {"status": "deleted", "bot_id": key})
    else:
        output.message(answer["detail"] if answer else f"Deleted bot {bot}.")


@cli.command("emergency-stop")
@click.argument("bot", required=False)
@click.option("--force-exit", is_flag=True, help="Sell the open trades before stopping (all bots only).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@common_options
def emergency_stop(bot: str | None, force_exit: bool, yes: bool) -> None:
    """Stop every bot of yours at once (a superuser: every bot), or kill one BOT (SIGKILL)."""
    if bot is not None and force_exit:
        raise click.UsageError("--force-exit applies to the stop of all bots, not to killing one.")
    current = session()
    client = current.client()
    output = current.output
    if bot is not None:
        if not yes:
            click.confirm(f"Kill bot {bot} now (SIGKILL, no clean shutdown)?", abort=True, err=True)
        _answer(output, client.bot_emergency_stop(bot))
        return
    if not yes:
        trades = " and sell their open trades" if force_exit else ""
        click.confirm(f"Emergency stop: stop ALL your bots{trades} now?", abort=True, err=True)
    answer = client.emergency_stop_all(force_exit=force_exit)
    if output.as_json:
        output.json(answer)
        return
    output.message(f"{answer['message']} {answer['total']} bot(s).")
    if answer["bots"]:
        output.table(("ID", "Name", "Was", "PID", "Host", "Status"),
                     [[b["bot_id"], b["bot_name"], b["was"], b["pid"], b["host"] or None, b["status"]]
                      for b in answer["bots"]])  # fmt: skip

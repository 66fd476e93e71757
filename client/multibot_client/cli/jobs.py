"""``multibot backtest``, ``multibot hyperopt`` (with a live progress bar) and ``multibot jobs ...``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn

from multibot_client import types as t
from multibot_client.cli.app import Session, cli, common_options, session
from multibot_client.cli.output import CliError, Exit, Output, cell_text, percent
from multibot_client.client import Client

# Of a job that failed: the end of its freqtrade log, where the reason usually is.
FAILED_LOG_LINES = 15


class JobProgress:
    """A job's progress on stderr: a rich progress bar on a terminal, a line per change elsewhere (logs, CI)."""

    def __init__(self, output: Output, label: str) -> None:
        self.console, self.label = output.err, label
        self.live = self.console.is_interactive
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.last_line = ""

    def __enter__(self) -> JobProgress:
        if self.live:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                TextColumn("{task.fields[state]}"), TimeElapsedColumn(), console=self.console,
            )  # fmt: skip
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=100, state="queued")
        return self

    def update(self, job: t.Job) -> None:
        done = max(0.0, min(100.0, float(job.get("progress") or 0) * 100))
        step = job.get("step") or ""
        state = job["status"] if step in ("", job["status"]) else f"{job['status']} · {step}"
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=done, state=state, refresh=True)  # every state drawn
            return
        line = f"{self.label}: {state} {done:.0f}%"
        if line != self.last_line:
            click.echo(line, err=True)
            self.last_line = line

    def __exit__(self, *exc_info: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def _watch(client: Client, output: Output, task_id: str, label: str) -> t.Job:
    """Follow the job to its end, showing its progress (not with --json); the finished job."""
    job: t.Job | None = None
    try:
        if output.as_json:
            return client.job_wait(task_id)
        with JobProgress(output, label) as progress:
            for job in client.job_watch(task_id):
                progress.update(job)
    except KeyboardInterrupt:
        raise CliError(f"Stopped watching; job {task_id} goes on (`multibot jobs cancel {task_id}` ends it).",
                       as_json=output.as_json) from None  # fmt: skip
    assert job is not None
    return job


def _failed(current: Session, client: Client, kind: str, result: dict[str, Any]) -> None:
    """A job that did not complete: its answer (with --json; else the end of its log), then exit code 1 and why."""
    if current.as_json:
        current.output.json(result)
    else:
        tail = client.job_logs(result["task_id"])["logs"][-FAILED_LOG_LINES:]
        if tail:
            click.echo("The last lines of its log:\n" + "\n".join(tail), err=True)
    reason = result.get("error") or "no reason given"
    details = {"task_id": result["task_id"], "status": result["status"]}
    raise CliError(f"{kind} {result['task_id']} {result['status']}: {reason}", code=Exit.API_ERROR,
                   as_json=current.as_json, details=details)  # fmt: skip


def _number(value: Any, suffix: str = "") -> str:
    return "-" if value is None else f"{cell_text(float(value))}{suffix}"


def _profit(figures: dict[str, Any], currency: str) -> str:
    return f"{_number(figures.get('profit_total_abs'), ' ' + currency)} ({percent(figures.get('profit_total'))})"


def show_backtest(output: Output, result: t.BacktestResult) -> None:
    summary = result.get("summary") or {}
    currency = summary.get("stake_currency") or result["parameters"].get("stake_currency") or ""
    output.facts([
        ("Backtest", result["task_id"]), ("Strategy", result["strategy_name"]),
        ("Timerange", summary.get("timerange") or result["parameters"].get("timerange")),
        ("Timeframe", summary.get("timeframe") or result["parameters"].get("timeframe")),
        ("Trades", summary.get("total_trades")),
        ("Wins / draws / losses", f"{summary.get('wins')} / {summary.get('draws')} / {summary.get('losses')}"),
        ("Win rate", percent(summary.get("winrate"))),
        ("Profit", _profit(summary, currency)),
        ("Max drawdown", percent(summary.get("max_drawdown_account"))),
        ("Sharpe", summary.get("sharpe")), ("Sortino", summary.get("sortino")), ("Calmar", summary.get("calmar")),
        ("Final balance", _number(summary.get("final_balance"), " " + currency)),
    ], title="Backtest result")  # fmt: skip
    pairs = result.get("results_per_pair") or []
    if pairs:
        output.table(("Pair", "Trades", "Avg profit", "Total profit", "Win rate"), [
            [row.get("key"), row.get("trades"), percent(row.get("profit_mean")),
             _number(row.get("profit_total_abs"), " " + currency), percent(row.get("winrate"))]
            for row in pairs
        ], title="Per pair")  # fmt: skip


def show_hyperopt(output: Output, result: t.HyperoptResult) -> None:
    best = result.get("best_result") or {}
    figures = best.get("results") or {}
    currency = result["parameters"].get("stake_currency") or ""
    output.facts([
        ("Hyperopt", result["task_id"]), ("Strategy", result["strategy_name"]),
        ("Epochs", f"{result['epochs_done']} / {result['epochs_total']}"),
        ("Best epoch", best.get("epoch")), ("Loss", best.get("loss")), ("Trades", figures.get("total_trades")),
        ("Profit", _profit(figures, currency)),
        ("Max drawdown", percent(figures.get("max_drawdown_account"))), ("Sharpe", figures.get("sharpe")),
    ], title="Hyperopt result")  # fmt: skip
    by_space: dict[str, Any] = best.get("params_details") or {"": best.get("params") or {}}
    rows = []
    for space, values in by_space.items():
        if isinstance(values, dict) and space not in ("roi",):
            rows += [[space, name, value] for name, value in values.items()]
        else:
            rows.append([space, "", json.dumps(values, default=str)])
    if rows:
        output.table(("Space", "Parameter", "Value"), rows, title="Best parameters")


def _pairs(values: tuple[str, ...]) -> list[str] | None:
    return list(values) or None


def _job_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """What a backtest and a hyperopt both take."""
    for option in reversed([
        click.argument("strategy"),
        click.option("--timerange", required=True, help="freqtrade's, like 20250101-20250201."),
        click.option("--timeframe", help="Like 5m (default 5m)."),
        click.option("-p", "--pair", "pairs", multiple=True, help="A pair, like BTC/USDT (repeat for several)."),
        click.option("--stake-currency"), click.option("--stake-amount", type=float),
        click.option("--wallet", "dry_run_wallet", type=float, help="The starting balance."),
        click.option("--max-open-trades", type=int), click.option("--fee", type=float),
        click.option("--no-wait", is_flag=True, help="Print the started job and return at once."),
    ]):  # fmt: skip
        command = option(command)
    return command


@cli.command()
@_job_options
@click.option("--bot", "bot_id", type=int, help="Take the pairs and stake of this bot of yours.")
@common_options
def backtest(strategy: str, no_wait: bool, **fields: Any) -> None:
    """Backtest STRATEGY: start the job, follow its progress, print its results."""
    current = session()
    client = current.client()
    output = current.output
    fields["pairs"] = _pairs(fields["pairs"])
    started = client.backtest_start(strategy, **fields)
    if no_wait:
        output.json(started) if output.as_json else output.message(f"Backtest {started['task_id']} started.")
        return
    _watch(client, output, started["task_id"], f"backtest {started['task_id']} {strategy}")
    result = client.backtest_result(started["task_id"])
    if result["status"] != "completed":
        _failed(current, client, "Backtest", dict(result))
    output.json(result) if output.as_json else show_backtest(output, result)


@cli.command()
@_job_options
@click.option("--epochs", type=click.IntRange(1, 10_000), help="Default 100.")
@click.option("--spaces", multiple=True, help="A space to optimise: buy, sell, roi, stoploss, ... (repeat).")
@click.option("--loss", help="A loss function (see the server's hyperopt losses).")
@click.option("--min-trades", type=int)
@click.option("--random-state", type=int)
@click.option("--apply", is_flag=True, help="Once completed, store the best parameters as the strategy's new version.")
@common_options
def hyperopt(strategy: str, no_wait: bool, apply: bool, **fields: Any) -> None:
    """Hyperopt STRATEGY: start the job, follow its epochs, print the best result."""
    current = session()
    client = current.client()
    output = current.output
    fields["pairs"] = _pairs(fields["pairs"])
    fields["spaces"] = list(fields["spaces"]) or None
    started = client.hyperopt_start(strategy, **fields)
    if no_wait:
        output.json(started) if output.as_json else output.message(f"Hyperopt {started['task_id']} started.")
        return
    _watch(client, output, started["task_id"], f"hyperopt {started['task_id']} {strategy}")
    result = client.hyperopt_result(started["task_id"])
    if result["status"] != "completed":
        _failed(current, client, "Hyperopt", dict(result))
    applied = client.hyperopt_apply(started["task_id"]) if apply else None
    if output.as_json:
        output.json({**result, "applied": applied} if apply else result)
        return
    show_hyperopt(output, result)
    if applied is not None:
        output.message(f"Parameters {applied['status']}: {applied['strategy_name']} version {applied['sha256'][:12]}.")


# -- jobs ------------------------------------------------------------------------------------------
JOB_COLUMNS = ("ID", "Kind", "Status", "Progress", "Step", "Strategy", "Created", "Error")


@cli.group(invoke_without_command=True)
@common_options
@click.pass_context
def jobs(ctx: click.Context) -> None:
    """Your jobs (backtests, hyperopts, ...); without a subcommand, the newest ones."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(jobs_list)


@jobs.command("list")
@click.option("--kind", type=click.Choice(["backtest", "hyperopt", "freqai_training", "data_import"]))
@click.option("--status", type=click.Choice(["queued", "running", "completed", "failed", "cancelled"]))
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--per-page", type=click.IntRange(1, 500), default=20, show_default=True)
@common_options
def jobs_list(kind: str | None = None, status: str | None = None, page: int = 1, per_page: int = 20) -> None:
    """Your jobs, newest first."""
    current = session()
    found = current.client().jobs_list(kind=kind, status=status, page=page, per_page=per_page)
    output = current.output
    if output.as_json:
        output.json(found)
        return
    rows = [[job["id"], job["kind"], job["status"], percent(job["progress"]), job["step"] or None,
             job["parameters"].get("strategy_name"), job["created_at"][:19].replace("T", " "), job["error"] or None]
            for job in found["jobs"]]  # fmt: skip
    shown = f"{len(rows)} of {found['total']}" if found["total"] > len(rows) else str(found["total"])
    output.table(JOB_COLUMNS, rows, title=f"Jobs ({shown})")


@jobs.command("show")
@click.argument("job_id")
@common_options
def jobs_show(job_id: str) -> None:
    """One job: its state, parameters and error."""
    current = session()
    job = current.client().job_get(job_id)
    output = current.output
    if output.as_json:
        output.json(job)
        return
    output.facts([(name.replace("_", " ").capitalize(), value) for name, value in job.items()])


@jobs.command("logs")
@click.argument("job_id")
@common_options
def jobs_logs(job_id: str) -> None:
    """The last lines of the job's freqtrade output."""
    current = session()
    found = current.client().job_logs(job_id)
    if current.as_json:
        current.output.json(found)
        return
    for line in found["logs"]:
        click.echo(line)


@jobs.command("cancel")
@click.argument("job_id")
@common_options
def jobs_cancel(job_id: str) -> None:
    """Cancel a job: a queued one never starts, a running one is ended."""
    current = session()
    answer = current.client().job_cancel(job_id)
    output = current.output
    if output.as_json:
        output.json(answer)
    else:
        output.message(f"Job {answer['job']['id']}: {answer['status']}.")

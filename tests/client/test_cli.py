"""The ``multibot`` command line against the real running system: as a real process (login, a table, the
backtest's progress bar on a terminal) and through click's runner (exit codes, prompts, the other commands)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import stat
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from audit.models import AuditLog
from bots.models import Bot
from tests.client.conftest import CLIENT_ROOT, System
from tests.factories import PASSWORD
from tests.jobs.conftest import CROSSING, TUNABLE, timerange
from tests.support.processes import ROOT, free_port, wait_for

from multibot_client import Client  # isort: skip - importable once tests/client/conftest.py put client/ on the path
from multibot_client.cli import cli

# The client and its command line against the running system: the server behind them is tested on both databases.
pytestmark = [pytest.mark.slow, pytest.mark.embedded_only, pytest.mark.django_db(transaction=True)]

CSV = (
    "date,open,high,low,close,volume\n2025-01-01 00:00:00,1.0,1.2,0.9,1.1,10\n2025-01-01 00:05:00,1.1,1.3,1.0,1.2,12\n"
)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return tmp_path / "config"


def _env(config_dir: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("MULTIBOT_", "TTY_", "FORCE_COLOR", "NO_COLOR", "DJANGO_"))}  # fmt: skip
    env.update({"PYTHONPATH": str(CLIENT_ROOT), "MULTIBOT_CONFIG_DIR": str(config_dir), "COLUMNS": "200",
                "TERM": "xterm-256color", **extra})  # fmt: skip
    return env


def multibot(config_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """The ``multibot`` entry point (``multibot_client.cli:main``) as a process of its own."""
    return subprocess.run([sys.executable, "-m", "multibot_client.cli", *args], cwd=ROOT, env=_env(config_dir, **extra),
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def invoke(config_dir: Path, *args: str, input: str | None = None, **extra: str) -> Result:
    """The same command in this process (click's runner)."""
    env = {"MULTIBOT_CONFIG_DIR": str(config_dir), "MULTIBOT_URL": None, "COLUMNS": "200", **extra}
    return CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)


@pytest.fixture
def logged_in(system: System, account: Any, config_dir: Path) -> Path:
    result = invoke(config_dir, "login", "--url", system.url, "-u", account.username, "-p", PASSWORD)
    assert result.exit_code == 0, result.output
    return config_dir


# -- the session -----------------------------------------------------------------------------------
def test_login_keeps_a_private_session_that_every_command_then_uses(system, account, client, market, config_dir):
    # when: logged in by the installed command
    login = multibot(config_dir, "login", "--url", system.url, "-u", account.username, "-p", PASSWORD)

    # then: the session is in the config directory, readable by the user only, without the password
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == f"Logged in to {system.url} as {account.username}."
    stored = config_dir / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_dir.stat().st_mode) == 0o700
    session = json.loads(stored.read_text())
    assert (session["url"], session["username"]) == (system.url, account.username)
    assert session["access_token"] and session["refresh_token"] and PASSWORD not in stored.read_text()

    # when: a bot exists, and the user lists the bots (no --url: the session's server)
    bot = client.bot_create("lister", client.strategy_upload(CROSSING.encode(), filename="c.py")["strategy_name"],
                            stake_amount=100, pair_whitelist=["BTC/USDT", "ETH/USDT"])  # fmt: skip
    table = multibot(config_dir, "bots", "list")

    # then: a table of it
    assert table.returncode == 0, table.stderr
    header = next(line for line in table.stdout.splitlines() if "Name" in line)
    assert re.findall(r"\w[\w ]*\w", header)[:4] == ["ID", "Name", "Status", "Strategy"]
    row = next(line for line in table.stdout.splitlines() if "lister" in line)
    assert re.split(r"\s*│\s*", row.strip("│ ")) == [str(bot["id"]), "lister", "stopped", "Crossing", "replay",
                                                       "BTC/USDT, ETH/USDT", "5m", "yes", "0", "0.0 USDT"]  # fmt: skip
    listed = multibot(config_dir, "bots", "list", "--json")
    assert [found["id"] for found in json.loads(listed.stdout)] == [bot["id"]]

    # when: logged out, the session is gone here and on the server
    refresh_token = session["refresh_token"]
    assert multibot(config_dir, "logout").returncode == 0
    assert not stored.exists()
    after = invoke(config_dir, "bots", "list")
    assert after.exit_code == 3 and "Not logged in" in after.stderr
    with Client(system.url, access_token=session["access_token"], refresh_token=refresh_token) as stale:
        with pytest.raises(Exception, match="revoked"):
            stale.refresh()


def test_login_asks_for_the_password_and_a_wrong_one_exits_3(system, account, tmp_path):
    # given: no MULTIBOT_CONFIG_DIR: the XDG config directory
    xdg = tmp_path / "xdg"
    env = {"MULTIBOT_CONFIG_DIR": None, "XDG_CONFIG_HOME": str(xdg), "MULTIBOT_URL": system.url}
    wrong = CliRunner().invoke(cli, ["login", "-u", account.username], input="nope\n", env=env)
    assert wrong.exit_code == 3
    assert "Incorrect username or password" in wrong.stderr
    assert not (xdg / "multibot" / "credentials.json").exists()

    right = CliRunner().invoke(cli, ["login"], input=f"{account.username}\n{PASSWORD}\n", env=env)
    assert right.exit_code == 0, right.output
    assert PASSWORD not in right.output  # the password prompt does not echo
    assert json.loads((xdg / "multibot" / "credentials.json").read_text())["url"] == system.url


def test_exit_codes_say_what_went_wrong(system, client, market, logged_in, config_dir):
    bot = client.bot_create("quiet", client.strategy_upload(CROSSING.encode(), filename="c.py")["strategy_name"],
                            stake_amount=100, pair_whitelist=["BTC/USDT"])  # fmt: skip
    missing = invoke(config_dir, "bots", "start", "999999")
    assert (missing.exit_code, missing.stderr.strip()) == (4, "Error: Bot not found")
    assert invoke(config_dir, "bots", "logs", "no-such-bot").exit_code == 4
    conflict = invoke(config_dir, "bots", "stop", "quiet")
    assert (conflict.exit_code, conflict.stderr.strip()) == (5, "Error: Bot quiet is already stopped.")
    as_json = invoke(config_dir, "--json", "bots", "stop", str(bot["id"]))
    assert as_json.exit_code == 5
    said = "Bot quiet is already stopped."
    assert json.loads(as_json.stderr)["error"] == {"message": said, "exit_code": 5, "status_code": 409, "detail": said}
    refused = invoke(config_dir, "bots", "create", "bad", "-s", "Crossing", "--stake-amount", "1", "--timeframe", "7m")
    assert refused.exit_code == 1 and "timeframe: " in refused.stderr
    assert invoke(config_dir, "bots", "frobnicate").exit_code == 2
    assert invoke(config_dir, "bots", "create", "x", "-s", "Crossing", "--stake-amount", "lots").exit_code == 2
    elsewhere = invoke(config_dir, "--url", f"http://127.0.0.1:{free_port()}", "bots", "list")
    assert elsewhere.exit_code == 3 and f"the stored session is for {system.url}" in elsewhere.stderr
    unreachable = invoke(config_dir, "login", "--url", f"http://127.0.0.1:{free_port()}", "-u", "a", "-p", "b")
    assert unreachable.exit_code == 6 and "Cannot reach" in unreachable.stderr


# -- bots -----------------------------------------------------------------------------------------
def test_bots_are_created_started_read_and_emergency_stopped_after_a_confirmation(client, market, logged_in,
                                                                                 config_dir):  # fmt: skip
    client.strategy_upload(CROSSING.encode(), filename="c.py")
    created = invoke(config_dir, "bots", "create", "clied", "-s", "Crossing", "-p", "BTC/USDT", "--stake-amount", "100")
    assert created.exit_code == 0 and "Created bot clied" in created.stdout and "stopped" in created.stdout
    bot_id = client.bots_list()[0]["id"]

    started = invoke(config_dir, "bots", "start", "clied")
    assert (started.exit_code, started.stdout.strip()) == (0, f"start_command_sent: clied (id {bot_id})")
    wait_for(lambda: Bot.objects.get(pk=bot_id).pid is not None, 30, "the gateway to start the bot")
    status = invoke(config_dir, "bots", "status", "clied")
    assert status.exit_code == 0 and "Desired" in status.stdout and "running" in status.stdout

    # when: an emergency stop of everything, declined
    declined = invoke(config_dir, "emergency-stop", input="n\n")
    # then: nothing stopped, exit 1
    assert declined.exit_code == 1 and "Aborted" in declined.stderr
    assert not AuditLog.objects.filter(action=AuditLog.Action.EMERGENCY_STOP_ALL).exists()
    assert Bot.objects.get(pk=bot_id).desired_state == "running"

    # when: confirmed
    stopped = invoke(config_dir, "emergency-stop", input="y\n")
    assert stopped.exit_code == 0, stopped.output
    assert re.search(rf"│\s*{bot_id}\s*│\s*clied\s*│", stopped.stdout)
    assert AuditLog.objects.filter(action=AuditLog.Action.EMERGENCY_STOP_ALL).count() == 1
    wait_for(lambda: Bot.objects.get(pk=bot_id).status == "stopped", 30, "the bot to stop")
    logs = invoke(config_dir, "bots", "logs", "clied", "-n", "20")
    assert logs.exit_code == 0 and logs.stdout.splitlines() == client.bot_logs(bot_id, lines=20)["logs"]
    killed = invoke(config_dir, "emergency-stop", "clied", "--yes", "--json")
    assert json.loads(killed.stdout)["status"] == "emergency_stop_command_sent"


# -- jobs ------------------------------------------------------------------------------------------
def _run_on_a_terminal(config_dir: Path, *args: str) -> tuple[int, str, str]:
    """The command with its stderr on a pseudo-terminal (where the progress bar goes): exit code, stdout, terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "multibot_client.cli", *args], cwd=ROOT,
                               env=_env(config_dir), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=slave)  # fmt: skip
    os.close(slave)
    screen: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the process closed its terminal
                return
            if not data:
                return
            screen.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    stdout = process.stdout.read().decode()
    code = process.wait(120)
    reader.join(10)
    os.close(master)
    return code, stdout, b"".join(screen).decode(errors="replace")


def test_a_backtest_shows_a_live_progress_bar_then_its_results(client, market, logged_in, config_dir):
    # given: the user's strategy
    client.strategy_upload(CROSSING.encode(), filename="crossing.py")

    # when: a backtest from a terminal
    code, stdout, screen = _run_on_a_terminal(config_dir, "backtest", "Crossing", "--timerange", timerange(1),
                                              "-p", "BTC/USDT")  # fmt: skip

    # then: a progress bar redrawn as the job moved, up to its end
    assert code == 0, stdout + screen
    task_id = re.search(r"backtest (\d+) Crossing", screen)[1]
    shown = [int(value) for value in re.findall(r"(\d+)%", screen)]
    assert shown[-1] == 100 and shown == sorted(shown), shown
    assert any(0 < value < 100 for value in shown), shown
    assert "━" in screen and "completed" in screen and "\x1b[" in screen  # drawn, and redrawn, on a terminal

    # and the results, as the API has them
    result = client.backtest_result(task_id)
    summary = result["summary"]
    facts = dict(re.findall(r"│ (\S[^│]*?)\s+│ (\S[^│]*?)\s+│", stdout))
    assert facts["Backtest"] == task_id and facts["Strategy"] == "Crossing"
    assert facts["Trades"] == str(summary["total_trades"]) and summary["total_trades"] > 0
    assert facts["Wins / draws / losses"] == f"{summary['wins']} / {summary['draws']} / {summary['losses']}"
    assert facts["Profit"].endswith(f"({summary['profit_total'] * 100:.2f}%)")
    assert re.search(r"│ BTC/USDT\s+│\s+" + str(summary["total_trades"]) + r"\s+│", stdout)
    compared = client.backtest_compare([task_id, 999_999])["backtests"]
    assert [item["found"] for item in compared] == [True, False]

    # and the job in the job list
    jobs = invoke(config_dir, "jobs")
    assert jobs.exit_code == 0 and re.search(rf"│ {task_id}\s+│ backtest\s+│ completed\s+│ 100.00%", jobs.stdout)
    assert invoke(config_dir, "jobs", "logs", task_id).stdout.splitlines() == client.job_logs(task_id)["logs"]


def test_a_failed_hyperopt_exits_1_and_says_why(client, market, crossing, logged_in, config_dir):
    # when: a hyperopt of the buy space of a strategy without buy parameters (freqtrade refuses it)
    result = invoke(config_dir, "hyperopt", crossing, "--timerange", timerange(1), "-p", "BTC/USDT", "--epochs", "2",
                    "--spaces", "buy")  # fmt: skip

    # then: exit 1, the server's reason, and the end of freqtrade's log
    assert result.exit_code == 1
    assert re.search(r"^hyperopt \d+ Crossing: (queued|running)\b.* 0%$", result.stderr, re.M)  # not a terminal: lines
    [error] = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    said = re.match(r"Error: Hyperopt (\d+) failed: freqtrade exited with 2: .* The 'buy' space is included", error)
    assert said, error
    assert "The last lines of its log:" in result.stderr
    assert client.job_get(said[1])["status"] == "failed"


def test_a_hyperopt_runs_and_its_best_parameters_are_applied(client, market, logged_in, config_dir):
    client.strategy_upload(TUNABLE.encode(), filename="tunable.py")
    result = invoke(config_dir, "hyperopt", "Tunable", "--timerange", timerange(1), "-p", "BTC/USDT", "--epochs", "2",
                    "--spaces", "buy", "--random-state", "1", "--apply", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert (answer["status"], answer["epochs_done"], answer["epochs_total"]) == ("completed", 2, 2)
    assert answer["applied"]["status"] == "applied" and answer["applied"]["strategy_name"] == "Tunable"
    detail = client.strategy_get("Tunable")
    assert detail["current_version"] == answer["applied"]["sha256"]
    assert detail["parameter_file"]["params"]["buy"] == answer["best_result"]["params_details"]["buy"]


# -- data, events -----------------------------------------------------------------------------------
def test_candles_are_uploaded_listed_and_downloaded_as_they_were(client, logged_in, config_dir, tmp_path):
    source = tmp_path / "sol.csv"
    source.write_text(CSV)
    uploaded = invoke(config_dir, "data", "upload", str(source), "-p", "SOL/USDT", "-t", "5m")
    assert uploaded.exit_code == 0 and "2 new, 0 updated; 2 candles stored" in uploaded.stdout
    assert re.search(r"│ SOL/USDT\s+│ 5m\s+│ replay", invoke(config_dir, "data", "list").stdout)
    target = tmp_path / "back.csv"
    downloaded = invoke(config_dir, "data", "download", "SOL/USDT", "5m", "-o", str(target))
    assert downloaded.exit_code == 0 and target.read_bytes() == client.data_download("SOL/USDT", "5m")
    rows = [line.split(",")[1:5] for line in target.read_text().splitlines()[1:]]
    assert rows == [line.split(",")[1:5] for line in CSV.splitlines()[1:]]
    (tmp_path / "bad.csv").write_text("date,open\nyesterday,1\n")
    refused = invoke(config_dir, "data", "upload", str(tmp_path / "bad.csv"), "-p", "SOL/USDT", "-t", "5m")
    assert refused.exit_code == 1 and refused.stderr.startswith("Error: file")


def test_events_prints_the_live_events_until_interrupted(system, client, account, logged_in, config_dir):
    process = subprocess.Popen([sys.executable, "-m", "multibot_client.cli", "events", "--json", "-t", "audit_event"],
                               cwd=ROOT, env=_env(config_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    try:
        # given: it listens
        assert "Listening for audit_event" in process.stderr.readline()
        # when: the user does something
        client.ws_ticket()
        # then: one JSON line for it
        event = json.loads(process.stdout.readline())
        assert (event["type"], event["data"]["action"], event["data"]["user"]) == ("audit_event", "ws_ticket",
                                                                                   account.username)  # fmt: skip
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(20)
    assert code == 0
    assert time.time() - event["at"] < 60

"""The replay exchange and freqtrade bots as real processes, for end-to-end tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bots.workspace import Workspace
from tests.support.processes import ROOT, free_port, server_env, wait_for


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def replay_exchange(home: Path) -> Iterator[str]:
    """``manage.py run_replay_exchange`` serving the candles stored under ``home/data/replay``; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_replay_exchange", "--port", str(port)],
        cwd=ROOT, env=server_env(MULTIBOT_HOME=str(home)),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or answers(f"{url}/api/v3/ping"), 60, "the replay exchange")
        assert process.poll() is None, "the replay exchange exited at start"
        yield url
    finally:
        stop(process)


@contextmanager
def freqtrade_bot(workspace: Workspace, api_port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``freqtrade trade`` on a prepared workspace, once its API answers /api/v1/ping; stopped on exit."""
    process = subprocess.Popen(
        workspace.command(sys.executable), cwd=workspace.root, env=server_env(), start_new_session=True
    )
    try:
        ping = f"http://127.0.0.1:{api_port}/api/v1/ping"
        wait_for(lambda: process.poll() is not None or answers(ping), 120, "the bot's API to answer")
        assert process.poll() is None, f"freqtrade exited {process.returncode}; see {workspace.log}"
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], grace: float = 30) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

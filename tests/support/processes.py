"""Start and stop real server processes (uvicorn, `make run`) for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = str(Path(sys.executable).parent)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def server_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DJANGO_SETTINGS_MODULE": "multibot.settings", "PATH": f"{VENV_BIN}:{env.get('PATH', '')}"})
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update(extra)
    return env


def uvicorn_process(env: dict[str, str], port: int, *, output: IO[str] | None = None) -> subprocess.Popen[bytes]:
    """One real ASGI server process on ``port``, listening when this returns."""
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "multibot.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--lifespan", "off", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT if output else None,
    )  # fmt: skip
    try:
        wait_for(lambda: process.poll() is not None or port_accepts(port), 30, "uvicorn to listen")
        assert process.poll() is None, "uvicorn exited at start"
    except AssertionError:
        process.kill()
        process.wait()
        raise
    return process


@contextmanager
def uvicorn_server(env: dict[str, str], *, output: IO[str] | None = None) -> Iterator[str]:
    """One real ASGI server process on a free port; yields its base URL. ``output`` takes its log."""
    port = free_port()
    process = uvicorn_process(env, port, output=output)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, timeout=10, **kwargs)


def database_url() -> str:
    """The URL of the database this test runs on (the test database), for server subprocesses."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"

"""Tiny real child processes that stand in for freqtrade in the supervisor and gateway step tests.

Each is ``python -c <program> --config <path>``: the config path on the command line is the marker
by which the supervisor recognises its bot, exactly as with ``freqtrade trade --config``.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

# freqtrade's words on a strategy it cannot load, then its "configuration or strategy error" exit.
EXIT_2 = "print('x - freqtrade.resolvers - ERROR - Impossible to load Strategy Nope', flush=True); raise SystemExit(2)"
EXIT_0 = "raise SystemExit(0)"
CRASH = "raise SystemExit(1)"
SLEEP = "import time; print('ready', flush=True); time.sleep(120)"
IGNORE_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(120)"
)


def answers_ping(port: int) -> str:
    """A program that answers GET /api/v1/ping with 200 on ``port``, as a started bot's API does."""
    return (
        "import http.server\n"
        "class Ping(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200 if self.path == '/api/v1/ping' else 404)\n"
        "        self.end_headers()\n"
        "    def log_message(self, *args):\n"
        "        pass\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), Ping).serve_forever()\n"
    )


def answers_health(port: int, *, loop_ran_ago: float | None, username: str, password: str) -> str:
    """A bot API that answers /api/v1/ping, and /api/v1/health as freqtrade does (HTTP Basic, 401 without it):
    its main loop last ran ``loop_ran_ago`` seconds ago (None: no iteration has ended yet)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    last = "None" if loop_ran_ago is None else f"int(time.time() - {loop_ran_ago})"
    return (
        "import http.server, json, time\n"
        "class Api(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        if self.path == '/api/v1/ping':\n"
        "            self.send_response(200); self.end_headers(); return\n"
        f"        if self.headers.get('Authorization') != 'Basic {token}':\n"
        "            self.send_response(401); self.end_headers(); return\n"
        f"        body = json.dumps({{'last_process': None, 'last_process_ts': {last}}}).encode()\n"
        "        self.send_response(200); self.send_header('Content-Type', 'application/json'); self.end_headers()\n"
        "        self.wfile.write(body)\n"
        "    def log_message(self, *args):\n"
        "        pass\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), Api).serve_forever()\n"
    )


def command(program: str, config: Path) -> list[str]:
    return [sys.executable, "-c", program, "--config", str(config)]


def spawn(args: list[str], *, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """A process in its own group (a stray kill signals the whole group: never the test's own)."""
    process = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the kernel shows its final command line
        try:
            if psutil.Process(process.pid).cmdline()[1:] == args[1:]:
                return process
        except psutil.Error:
            pass
        time.sleep(0.02)
    raise AssertionError(f"{args} did not start")


def fake_freqtrade(directory: Path) -> Path:
    """A ``freqtrade`` package that only sleeps: ``python -m freqtrade trade ...`` run from ``directory``
    has the very command line of a bot, without being one."""
    package = directory / "freqtrade"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text("import time\ntime.sleep(120)\n")
    return directory


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_group(pid: int) -> None:
    try:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def freeze(pid: int) -> int:
    """SIGSTOP: the process is frozen whole (its API's threads too), as a hung or swapped-out bot is."""
    os.kill(pid, signal.SIGSTOP)
    return pid


def resume(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass

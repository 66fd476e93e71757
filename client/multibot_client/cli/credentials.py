"""Where the command line keeps its session: ``credentials.json`` (mode 0600) in the user's config directory.

The directory is ``$MULTIBOT_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/multibot``, else ``~/.config/multibot``.
The file names the server its tokens belong to: they are never sent to another one. Every command
that refreshes them does so under a lock on ``credentials.lock``, so that two commands running at
once never both spend the same refresh token (the server would take that for theft).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from multibot_client.tokens import Tokens

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; commands there do not run concurrently as often
    fcntl = None  # type: ignore[assignment]

FILE_NAME = "credentials.json"
LOCK_NAME = "credentials.lock"


def config_dir() -> Path:
    explicit = os.environ.get("MULTIBOT_CONFIG_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "multibot"


def _write_private(path: Path, text: str) -> None:
    """Written whole or not at all, readable by its owner only, from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)  # an existing temporary file keeps its mode through O_CREAT
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_session(directory: Path) -> dict[str, Any] | None:
    """What ``credentials.json`` holds (whichever server it names); None when there is none, or it is unreadable."""
    try:
        content = json.loads((directory / FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


class FileTokenStore:
    """The tokens of one server, kept in ``credentials.json`` (a TokenStore)."""

    def __init__(self, directory: Path, *, url: str) -> None:
        self.directory, self.path = directory, directory / FILE_NAME
        self.url = url.rstrip("/")

    def read(self) -> dict[str, Any] | None:
        return read_session(self.directory)

    def load(self) -> Tokens | None:
        content = self.read()
        if not content or content.get("url") != self.url or not content.get("access_token"):
            return None
        return Tokens(access_token=content["access_token"], refresh_token=content.get("refresh_token"),
                      expires_at=content.get("expires_at"), issued_at=content.get("issued_at"))  # fmt: skip

    def save(self, tokens: Tokens | None, *, username: str | None = None) -> None:
        if tokens is None:
            self.path.unlink(missing_ok=True)
            return
        previous = self.read() or {}
        if username is None and previous.get("url") == self.url:
            username = previous.get("username")
        content = {"url": self.url, "username": username, **tokens.as_dict()}
        _write_private(self.path, json.dumps(content, indent=2) + "\n")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(self.path.with_name(LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

"""Files only this user may read, replaced whole (write to a temporary name, then rename)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600; a concurrent reader sees the old or the new file, never half."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)


def make_private(*paths: Path) -> None:
    """Files that exist among ``paths`` become 0600 (directories 0700) if anyone else could read them."""
    for path in paths:
        try:
            mode = path.stat().st_mode
        except (FileNotFoundError, NotADirectoryError, ValueError):
            continue
        if mode & 0o077:
            with contextlib.suppress(PermissionError):  # not ours: nothing we can tighten
                path.chmod(0o700 if path.is_dir() else 0o600)

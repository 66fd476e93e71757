"""Reading the end of a bot's log without reading the whole file (no Django here)."""

from __future__ import annotations

import os
from pathlib import Path


def tail_lines(path: Path, *, max_bytes: int = 256 * 1024) -> list[str] | None:
    """The lines in the last ``max_bytes`` of the file; None when there is no file to read."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - max_bytes))
            return handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None

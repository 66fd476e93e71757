"""A worker host's client of the manager: files this host lacks, fetched over HTTP and put in place only if verified.

Workers on other machines share the database, Redis and SECRET_KEY with the manager (the web host),
not its disk. What a job needs from that disk (candle files, strategy code) the manager serves on
``/api/v1/internal/...``, signed by host (multibot.host_signature). A file is streamed into a
temporary file beside its place, synced, and renamed into place only when its sha256 (and size, if
known) are the ones the database records: a reader never sees half a file or a wrong one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from pathlib import Path

import httpx
from django.conf import settings

from multibot.host_signature import signed_headers

logger = logging.getLogger(__name__)


class ManagerFetchError(Exception):
    """A file could not be fetched from the manager whole and as recorded (the message says why)."""


def fetch_verified(
    path: str, target: Path, *, sha256: str, size: int | None = None, what: str, mode: int = 0o600
) -> None:
    """GET ``path`` (``/api/v1/internal/...``) from the manager into ``target``, if its bytes have ``sha256``.
    ``what`` names the file in the errors ("the replay BTC/USDT 5m candles")."""
    manager = settings.MANAGER["url"]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    try:
        got_sha256, got_size = _download(manager + path, signed_headers(path), partial, what=what)
        if got_sha256 != sha256 or (size is not None and got_size != size):
            recorded = f"{sha256[:12]}…" + ("" if size is None else f", {size} bytes")
            raise ManagerFetchError(
                f"{_capitalized(what)} from {manager} do not match their checksum (got sha256 {got_sha256[:12]}…, "
                f"{got_size} bytes; recorded {recorded}): the file was not used."
            )  # fmt: skip
        partial.chmod(mode)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    logger.info("fetched %s (%d bytes) from the manager", what, got_size)


def _download(url: str, headers: dict[str, str], partial: Path, *, what: str) -> tuple[str, int]:
    """Stream ``url`` into ``partial`` (0600, synced); its sha256 and size, as received."""
    digest, size = hashlib.sha256(), 0
    try:
        with httpx.stream("GET", url, headers=headers, timeout=settings.MANAGER["fetch_timeout_seconds"]) as answer:
            if answer.status_code != 200:
                answer.read()
                raise ManagerFetchError(f"The manager refused {what} ({answer.status_code}: {_detail(answer)}).")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                for chunk in answer.iter_bytes(1024 * 1024):
                    handle.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
    except httpx.HTTPError as exc:
        manager = settings.MANAGER["url"]
        raise ManagerFetchError(f"{_capitalized(what)} could not be fetched from the manager at {manager}: "
                                f"{type(exc).__name__}: {exc}") from exc  # fmt: skip
    return digest.hexdigest(), size


def _capitalized(what: str) -> str:
    return what[:1].upper() + what[1:]


def _detail(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("detail", ""))[:200]
    except ValueError:
        return answer.text[:200]

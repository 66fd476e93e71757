"""Candle files for a job on a host that does not store them: fetched from the manager, checked, put in place.

Workers on other machines share the database and SECRET_KEY with the manager, not its disk. Before a
job runs freqtrade, ``ensure_candles`` makes this host's file of each candle set the job reads the
one its row describes (sha256 and size): a file that is there and matches is used as it is (on the
manager host, nothing is fetched); one that is missing or differs is fetched from the manager
(/api/v1/internal/candles/<id>, signed with SECRET_KEY), checked while it is written to a temporary
file beside its place, and renamed into place only if its bytes are the row's. Anything else is a
CandleFetchError: a job never runs on a missing, half-written or different file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

import httpx
from django.conf import settings
from django.urls import reverse

from marketdata.models import CandleSet
from marketdata.selectors import candle_set_file, candle_set_get
from marketdata.storage import file_checksum
from multibot.host_signature import signed_headers

logger = logging.getLogger(__name__)


class CandleFetchError(Exception):
    """A candle file the job needs is not here and could not be fetched whole and as recorded."""


def ensure_candles(*, pairs: Iterable[str], timeframes: Iterable[str], exchange: str = "replay") -> list[CandleSet]:
    """Every (pair, timeframe) set's file on this host, as its row records it; returns the sets fetched."""
    fetched = []
    for pair in pairs:
        for timeframe in dict.fromkeys(timeframes):
            candle_set = candle_set_get(pair=pair, timeframe=timeframe, exchange=exchange)
            if candle_set is None:
                raise CandleFetchError(f"No {timeframe} candles are stored for {pair}.")
            if not _is_current(candle_set):
                candle_set_fetch(candle_set)
                fetched.append(candle_set)
    return fetched


def _is_current(candle_set: CandleSet) -> bool:
    path = candle_set_file(candle_set)
    if not path.exists():
        return False
    if not candle_set.sha256:
        # A row written before checksums whose file the migration did not find: only its own host has it.
        return True
    return file_checksum(path) == (candle_set.sha256, candle_set.size)


def candle_set_fetch(candle_set: CandleSet) -> Path:
    """Download the set's file from the manager into place; CandleFetchError unless its bytes are the row's."""
    if not candle_set.sha256:
        raise CandleFetchError(f"The {candle_set} candles have no checksum: store them again on the manager.")
    path = reverse("internal-candles", kwargs={"candle_set_id": candle_set.pk})
    url = settings.MARKETDATA["manager_url"] + path
    final = candle_set_file(candle_set)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
    try:
        sha256, size = _download(url, signed_headers(path), partial, what=str(candle_set))
        if (sha256, size) != (candle_set.sha256, candle_set.size):
            raise CandleFetchError(
                f"The {candle_set} candles from {settings.MARKETDATA['manager_url']} do not match their checksum "
                f"(got sha256 {sha256[:12]}…, {size} bytes; recorded {candle_set.sha256[:12]}…, "
                f"{candle_set.size} bytes): the file was not used."
            )  # fmt: skip
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    logger.info("fetched the %s candles (%d bytes) from the manager", candle_set, size)
    return final


def _download(url: str, headers: dict[str, str], target: Path, *, what: str) -> tuple[str, int]:
    """Stream ``url`` into ``target`` (0600, synced); its sha256 and size, as received."""
    digest, size = hashlib.sha256(), 0
    try:
        with httpx.stream("GET", url, headers=headers, timeout=settings.MARKETDATA["fetch_timeout_seconds"]) as answer:
            if answer.status_code != 200:
                answer.read()
                raise CandleFetchError(f"The manager refused the {what} candles ({answer.status_code}: "
                                       f"{_detail(answer)}).")  # fmt: skip
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                for chunk in answer.iter_bytes(1024 * 1024):
                    handle.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
    except httpx.HTTPError as exc:
        manager = settings.MARKETDATA["manager_url"]
        raise CandleFetchError(f"The {what} candles could not be fetched from the manager at {manager}: "
                               f"{type(exc).__name__}: {exc}") from exc  # fmt: skip
    return digest.hexdigest(), size


def _detail(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("detail", ""))[:200]
    except ValueError:
        return answer.text[:200]

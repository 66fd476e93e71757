"""Candle files for a job on a host that does not store them: fetched from the manager, checked, put in place.

Workers on other machines share the database and SECRET_KEY with the manager, not its disk. Before a
job runs freqtrade, ``ensure_candles`` makes this host's file of each candle set the job reads the
one its row describes (sha256 and size): a file that is there and matches is used as it is (on the
manager host, nothing is fetched); one that is missing or differs is fetched from the manager
(/api/v1/internal/candles/<id>, through multibot.manager_client: verified, then renamed into place).
Anything else is a CandleFetchError: a job never runs on a missing, half-written or different file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from django.urls import reverse

from marketdata.models import CandleSet
from marketdata.selectors import candle_set_file, candle_set_get
from marketdata.storage import file_checksum
from multibot.manager_client import ManagerFetchError, fetch_verified


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
    final = candle_set_file(candle_set)
    path = reverse("internal-candles", kwargs={"candle_set_id": candle_set.pk})
    try:
        fetch_verified(path, final, sha256=candle_set.sha256, size=candle_set.size, what=f"the {candle_set} candles")
    except ManagerFetchError as exc:
        raise CandleFetchError(str(exc)) from exc
    return final

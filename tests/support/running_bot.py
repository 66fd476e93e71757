"""A real freqtrade bot process for a test module, and the credentials its config holds (see tests/bots/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from bots.models import Bot


@dataclass(frozen=True)
class BotProcess:
    """A running freqtrade bot and the API credentials its config holds."""

    api_port: int
    api_username: str
    api_password: str
    jwt_secret_key: str
    ws_token: str

    @classmethod
    def credentials_of(cls, source: Bot | BotProcess) -> dict[str, Any]:
        return {name: getattr(source, name) for name in cls.__dataclass_fields__}

    @property
    def secrets(self) -> list[str]:
        return [self.api_username, self.api_password, self.jwt_secret_key, self.ws_token]


def settings_for(home: Path, replay_url: str, market_home: Path | None = None) -> dict[str, Any]:
    """Bot workspaces and the strategy library under ``home``; the market is the replay exchange's."""
    market = {**settings.MARKETDATA, "dir": (market_home or home) / "data"}
    return {"HOME": home, "REPLAY_EXCHANGE_URL": replay_url, "MARKETDATA": market}

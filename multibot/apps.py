"""The project app: users, auth endpoints, monitoring, first-run bootstrap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.db.backends.signals import connection_created

from multibot.files import make_private


def _database_files_private(sender: Any, connection: Any, **kwargs: Any) -> None:
    """A SQLite database and its WAL are this user's only, also when an older version made them 0644."""
    if connection.vendor != "sqlite":
        return
    name = str(connection.settings_dict["NAME"])
    make_private(Path(name), Path(f"{name}-wal"), Path(f"{name}-shm"))


class MultibotConfig(AppConfig):
    name = "multibot"
    verbose_name = "Multibot"

    def ready(self) -> None:
        connection_created.connect(_database_files_private, dispatch_uid="multibot.private_database_files")

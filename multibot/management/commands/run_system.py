"""Run every process of the system under supervisord in the foreground (`make run`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

CONFIG = Path(__file__).resolve().parents[2] / "supervisord.conf"


class Command(BaseCommand):
    help = "Run Redis, the web, the listeners, the replay exchange, the workers and the gateway, supervised."

    def handle(self, *args: object, **options: object) -> None:
        # supervisord's own log and pid file live with the rest of our files, not in the repository.
        (settings.HOME / "supervisor").mkdir(mode=0o700, exist_ok=True)
        # The configuration takes its values from here: the settings' own defaults, resolved once.
        bin_dir = str(Path(sys.executable).parent)
        env = {
            **os.environ,
            "MULTIBOT_HOME": str(settings.HOME),
            "MULTIBOT_HOST": settings.HOST,
            "MULTIBOT_PORT": str(settings.PORT),
            "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        }
        supervisord = os.path.join(bin_dir, "supervisord")
        sys.stdout.flush()
        # exec: supervisord becomes this process, so a terminal's Ctrl-C reaches it directly.
        os.execve(supervisord, [supervisord, "--configuration", str(CONFIG)], env)  # noqa: S606 - our own binary

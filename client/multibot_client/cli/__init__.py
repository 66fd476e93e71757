"""The ``multibot`` command line (click and rich): ``multibot --help``."""

from __future__ import annotations

from multibot_client.cli import bots, data, jobs, session  # noqa: F401 - each adds its commands to the group
from multibot_client.cli.app import cli


def main() -> None:
    cli(prog_name="multibot")


__all__ = ["cli", "main"]

"""Where strategy code lives on disk, and which file a bot of a given owner runs under a class name.

Accepted versions are stored once each, by the sha256 of their bytes, as
``MULTIBOT_HOME/strategies/versions/<sha256>.py`` (0400, never rewritten). A name resolves to the
latest version of the owner's own strategy, else of the built-in of that name; failing both, to a
file an operator placed directly in ``MULTIBOT_HOME/strategies/`` (parsed, never imported here).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

from multibot.files import write_private

if TYPE_CHECKING:
    from multibot.models import User
    from strategies.models import StrategyVersion


def library_dir() -> Path:
    path = Path(settings.HOME) / "strategies"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def versions_dir() -> Path:
    path = library_dir() / "versions"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def version_path(sha256: str) -> Path:
    return versions_dir() / f"{sha256}.py"


def store_code(data: bytes) -> str:
    """Store ``data`` under its sha256 unless already there; the file is never written twice."""
    sha256 = hashlib.sha256(data).hexdigest()
    target = version_path(sha256)
    if target.exists():
        return sha256
    tmp = target.with_name(f".{sha256}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.chmod(0o400)
    try:
        os.link(tmp, target)  # fails if another upload of the same bytes got there first: same content
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return sha256


@dataclass(frozen=True)
class StrategyCode:
    """What a bot copies: the code file, its parameter file's content if any, and the version's sha256."""

    name: str
    source: Path
    parameters: dict[str, Any] | None = None
    sha256: str = ""
    version_id: int | None = None  # None: a file an operator placed, on this host only

    @classmethod
    def of_version(cls, version: StrategyVersion) -> StrategyCode:
        return cls(name=version.strategy.name, source=version_path(version.sha256), parameters=version.parameters,
                   sha256=version.sha256, version_id=version.pk)  # fmt: skip


def version_code_ensure(sha256: str) -> Path:
    """The version's code file on this host: a worker on another host than the manager's (where versions are
    stored) fetches it from the manager, verified by its sha256. ManagerFetchError when it cannot."""
    from django.urls import reverse

    from multibot.manager_client import fetch_verified

    target = version_path(sha256)
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
        return target
    path = reverse("internal-strategy-code", kwargs={"sha256": sha256})
    fetch_verified(path, target, sha256=sha256, what=f"the strategy code {sha256[:12]}…", mode=0o400)
    return target


def _classes(path: Path) -> tuple[str, ...]:
    stat = path.stat()
    return _parsed_classes(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=512)
def _parsed_classes(path: Path, mtime_ns: int, size: int) -> tuple[str, ...]:
    # Keyed by mtime and size: a start-all over many bots parses each file once, a changed file again.
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return ()
    return tuple(node.name for node in tree.body if isinstance(node, ast.ClassDef) and node.bases)


def operator_files() -> dict[str, Path]:
    """Class name -> file, for the files an operator placed in the library directory itself."""
    found: dict[str, Path] = {}
    for path in sorted(library_dir().glob("*.py")):
        for name in _classes(path):
            found.setdefault(name, path)
    return found


def strategy_code(name: str, *, owner: User | None) -> StrategyCode | None:
    """The code a bot of ``owner`` runs under ``name`` now: the latest version it may use."""
    from strategies.selectors import strategy_latest_version

    version = strategy_latest_version(name=name, owner=owner)
    if version is not None:
        return StrategyCode.of_version(version)
    placed = operator_files().get(name)
    return None if placed is None else StrategyCode(name=name, source=placed)


def strategy_file(name: str, *, owner: User | None = None) -> Path | None:
    code = strategy_code(name, owner=owner)
    return None if code is None else code.source


def copy_strategy(code: StrategyCode, directory: Path) -> Path:
    """``directory`` holds only this version now: the code read-only, named after its class (freqtrade reads
    a parameter file by the strategy file's stem), and its parameter file if it has one. A bot or a job
    runs from its own copy, so a later upload changes nothing it runs."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in [*directory.glob("*.py"), *directory.glob("*.json")]:
        old.chmod(0o600)
        old.unlink()
    copy = directory / (f"{code.name}.py" if code.sha256 else code.source.name)
    shutil.copyfile(code.source, copy)
    copy.chmod(0o400)
    if code.parameters is not None:
        write_private(copy.with_suffix(".json"), json.dumps(code.parameters, indent=2))
    return copy


def install_builtin_strategies() -> list[str]:
    """freqtrade's template strategies as built-ins, through the upload checks; the names newly installed."""
    from strategies.services import strategy_install_builtins

    return strategy_install_builtins()

"""The strategy files bots can use: ``MULTIBOT_HOME/strategies/*.py``, found by class name.

freqtrade resolves a strategy by its class name; here the same: each file is parsed (never
imported in this process) and its IStrategy-looking classes listed.
"""

from __future__ import annotations

import ast
import functools
import shutil
from pathlib import Path

from django.conf import settings


def library_dir() -> Path:
    path = Path(settings.HOME) / "strategies"
    path.mkdir(parents=True, exist_ok=True)
    return path


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


def strategy_names() -> dict[str, Path]:
    """Class name -> file, for every strategy file in the library."""
    found: dict[str, Path] = {}
    for path in sorted(library_dir().glob("*.py")):
        for name in _classes(path):
            found.setdefault(name, path)
    return found


def strategy_file(name: str) -> Path | None:
    return strategy_names().get(name)


def install_builtin_strategies() -> list[str]:
    """freqtrade's own sample strategy, from the installed package, so a first bot has one to run."""
    import freqtrade

    templates = Path(freqtrade.__file__).parent / "templates"
    installed = []
    for source in (templates / "sample_strategy.py",):
        target = library_dir() / source.name
        if not target.exists():
            shutil.copyfile(source, target)
            installed.append(source.name)
    return installed

"""The static checks of an uploaded strategy and its parameter file: names, size, encoding, syntax, shape.

Pure: no Django, nothing imported from the upload. Each refusal is an ``UploadError`` naming the
field and the problem; the dry load (strategies/sandbox.py) comes after these pass.
"""

from __future__ import annotations

import ast
import functools
import json
import keyword
import pkgutil
import re
import sys
from dataclasses import dataclass
from typing import Any

# The methods freqtrade calls on every strategy; entry and exit under their current or legacy names.
INDICATORS = "populate_indicators"
SIGNAL_METHODS = (("populate_entry_trend", "populate_exit_trend"), ("populate_buy_trend", "populate_sell_trend"))
# The top-level keys of freqtrade's parameter file (what ``freqtrade hyperopt`` writes next to a strategy).
# Path words under /strategies/: a strategy of that name could not be reached by its own.
RESERVED_NAMES = frozenset({"upload", "backtest", "compare"})
TIMEFRAME = re.compile(r"[1-9][0-9]{0,3}[smhdwMy]")
PARAMETER_FILE_KEYS = frozenset({"strategy_name", "params", "ft_stratparam_v", "export_time"})
PARAMETER_SPACES = frozenset({"buy", "sell", "enter", "exit", "protection", "roi", "stoploss", "trailing",
                              "max_open_trades"})  # fmt: skip


class UploadError(Exception):
    """One reason an upload is refused; ``field`` is the form field it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class StrategySource:
    """An upload that passed the static checks: its text and the strategy class it defines."""

    class_name: str
    text: str


@functools.cache
def importable_modules() -> frozenset[str]:
    """Top-level names Python or an installed package answers to: a strategy file must not shadow one."""
    names = set(sys.stdlib_module_names) | set(sys.builtin_module_names)
    names.update(module.name for module in pkgutil.iter_modules())
    return frozenset(names)


def check_name(field: str, name: str, *, what: str) -> None:
    if ":" in name:
        raise UploadError(field, f"{what} {name!r} is freqtrade's inline 'Name:base64' form; upload the file itself.")
    if not name.isidentifier() or not name.isascii() or keyword.iskeyword(name) or name.startswith("__"):
        raise UploadError(field, f"{what} {name!r} is not a plain Python identifier (letters, digits, '_').")
    if name in RESERVED_NAMES:
        raise UploadError(field, f"{what} {name!r} is a word the strategies API uses in its paths; rename it.")
    if name in importable_modules():
        raise UploadError(field, f"{what} {name!r} would shadow the Python module {name!r}; rename it.")


def check_filename(filename: str) -> str:
    """The file's stem: ``MyStrategy.py`` -> ``MyStrategy``."""
    stem, dot, suffix = filename.rpartition(".")
    if not dot or suffix != "py":
        raise UploadError("file", f"{filename!r} is not a Python file: upload a '.py' file.")
    check_name("file", stem, what="The file name")
    return stem


def decode_text(field: str, data: bytes, *, max_bytes: int) -> str:
    if not data:
        raise UploadError(field, "The file is empty.")
    if len(data) > max_bytes:
        raise UploadError(field, f"The file is larger than {max_bytes} bytes.")
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise UploadError(field, f"The file is not UTF-8 text (byte {exc.start} cannot be read).") from None
    if "\x00" in text:
        raise UploadError(field, "The file holds a NUL character: it is not source text.")
    return text


def _base_names(node: ast.ClassDef) -> list[str]:
    names = []
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.append(base.id)
        elif isinstance(base, ast.Attribute):
            names.append(base.attr)
    return names


def _methods(node: ast.ClassDef) -> set[str]:
    return {item.name for item in node.body if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)}


def strategy_classes(tree: ast.Module) -> dict[str, set[str]]:
    """Top-level classes deriving from IStrategy (directly or through a class of the same file) -> their
    methods, inherited ones from the file's own classes included."""
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}

    @functools.cache
    def lineage(name: str, depth: int = 0) -> tuple[bool, frozenset[str]]:
        node = classes.get(name)
        if node is None or depth > 20:
            return False, frozenset()
        derives, methods = False, set(_methods(node))
        for base in _base_names(node):
            if base == "IStrategy":
                derives = True
            elif base in classes and base != name:
                base_derives, base_methods = lineage(base, depth + 1)
                derives, methods = derives or base_derives, methods | base_methods
        return derives, frozenset(methods)

    return {name: set(lineage(name)[1]) for name in classes if lineage(name)[0]}


def check_source(text: str, *, filename: str, class_name: str | None) -> StrategySource:
    """Syntax and shape: a class (``class_name``, or the file's only strategy class) deriving from
    IStrategy with populate_indicators and the entry and exit trend methods."""
    try:
        tree = ast.parse(text, filename=filename)
    except SyntaxError as exc:
        raise UploadError("file", f"Syntax error at line {exc.lineno}: {exc.msg}.") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise UploadError("file", f"The file cannot be parsed: {type(exc).__name__}.") from None
    found = strategy_classes(tree)
    if class_name is None:
        if not found:
            raise UploadError("file", "The file defines no class deriving from IStrategy.")
        if len(found) > 1:
            raise UploadError("strategy_name", f"The file defines several strategies ({', '.join(sorted(found))}): "
                                                 "name the one to store in strategy_name.")  # fmt: skip
        class_name = next(iter(found))
    elif class_name not in found:
        raise UploadError("file", f"The file defines no class {class_name!r} deriving from IStrategy.")
    check_name("strategy_name", class_name, what="The strategy class name")
    methods = found[class_name]
    missing = [INDICATORS] if INDICATORS not in methods else []
    if not any(entry in methods and exit_ in methods for entry, exit_ in SIGNAL_METHODS):
        missing += [name for name in SIGNAL_METHODS[0] if name not in methods]
    if missing:
        raise UploadError("file", f"The class {class_name} lacks {', '.join(missing)}.")
    return StrategySource(class_name=class_name, text=text)


def is_timeframe(value: object) -> bool:
    return isinstance(value, str) and TIMEFRAME.fullmatch(value) is not None


def check_parameters(data: bytes, *, class_name: str, max_bytes: int) -> dict[str, Any]:
    """A parameter file in freqtrade's own format, for this class; its ``strategy_name`` is filled in if absent."""
    text = decode_text("parameters", data, max_bytes=max_bytes)
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise UploadError("parameters", f"The parameter file is not JSON: {exc}.") from None
    if not isinstance(document, dict) or not isinstance(document.get("params"), dict):
        raise UploadError("parameters", 'A parameter file is an object with "params": {"buy": {...}, ...}.')
    unknown = sorted(set(document) - PARAMETER_FILE_KEYS) + sorted(set(document["params"]) - PARAMETER_SPACES)
    if unknown:
        raise UploadError("parameters", f"The parameter file has keys freqtrade does not read: {', '.join(unknown)}.")
    named = document.setdefault("strategy_name", class_name)
    if named != class_name:
        raise UploadError("parameters", f"The parameter file is for {named!r}, not {class_name!r}.")
    for space, values in document["params"].items():
        if not isinstance(values, dict):
            raise UploadError("parameters", f'"params.{space}" must be an object.')
    return document

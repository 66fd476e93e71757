"""The dry load: a strategy loaded by freqtrade's own StrategyResolver, in a child process, walled in.

Run as ``python -I strategies/dryload.py <scratch dir> <ClassName>`` (strategies/sandbox.py does it),
with the scratch directory as its working directory. It imports freqtrade first, then walls itself
in: resource limits, and an audit hook that refuses opening or listing anything outside the scratch
directory and the Python installation, and refuses every way to start a process, send a signal or
open a socket. Only then is the untrusted module imported. The first line of stdin is a nonce; the
result is one line of JSON on stdout after it, so a module that prints and exits early is not mistaken
for a load. Stdlib and freqtrade only: no Django here.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

# Events refused outright: new processes, signals, sockets, raw memory, and walking the heap.
REFUSED_EVENTS = frozenset({
    "os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.startfile",
    "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill", "os.setuid", "os.setgid",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.call_function", "ctypes.addressof", "ctypes.string_at",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames", "os.chdir",
    "resource.setrlimit", "resource.prlimit", "webbrowser.open", "sys.remote_exec",
})  # fmt: skip
REFUSED_PREFIXES = ("socket.", "_thread.start_new_thread", "urllib.", "http.", "ftplib.", "smtplib.", "telnetlib.")
# Events whose first argument is a path: allowed inside the readable roots (reads) or the scratch dir (writes).
READ_EVENTS = frozenset({"open", "os.listdir", "os.scandir", "glob.glob", "os.add_dll_directory"})
WRITE_EVENTS = frozenset({
    "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link", "os.symlink",
    "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move", "os.chflags",
})  # fmt: skip
LIMITS = {"cpu_seconds": 20, "memory_bytes": 2 * 1024**3, "file_bytes": 16 * 1024**2}


class RefusedError(PermissionError):
    """Something the sandbox does not allow a strategy module to do."""


def _readable_roots(scratch: Path) -> tuple[str, ...]:
    roots = {scratch, Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path("/usr/share/zoneinfo")}
    roots.update(Path(entry) for entry in sys.path if entry and Path(entry).is_dir())
    return tuple(sorted({str(root.resolve()) for root in roots}))


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root + os.sep) for root in roots)


def install_walls(scratch: Path) -> None:
    """Limits and the audit hook; from here on the process cannot leave the scratch directory."""
    import resource

    cpu, memory, size = LIMITS["cpu_seconds"], LIMITS["memory_bytes"], LIMITS["file_bytes"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # No new process or thread (root ignores it; the audit hook below refuses them for everyone).
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    readable, writable = _readable_roots(scratch), (str(scratch.resolve()),)
    realpath, fspath = os.path.realpath, os.fspath

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in REFUSED_EVENTS or event.startswith(REFUSED_PREFIXES):
            raise RefusedError(f"a strategy may not use {event}")
        if event not in READ_EVENTS and event not in WRITE_EVENTS:
            return
        target = args[0] if args else None
        if target is None or isinstance(target, int):
            return  # an already open descriptor, or the working directory (the scratch dir)
        path = realpath(fspath(target))
        writes = event in WRITE_EVENTS or (event == "open" and _opens_for_writing(args))
        if not _inside(path, writable if writes else readable):
            raise RefusedError(f"a strategy may not {'write' if writes else 'read'} {fspath(target)!r}")

    sys.addaudithook(hook)


def _opens_for_writing(args: tuple[Any, ...]) -> bool:
    mode, flags = (args[1] if len(args) > 1 else "r") or "r", args[2] if len(args) > 2 else 0
    return any(letter in str(mode) for letter in "wax+") or bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))


def _describe(value: Any) -> Any:
    """A parameter's default or bound as JSON can carry it."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def parameters_of(strategy: Any) -> list[dict[str, Any]]:
    from freqtrade.strategy.hyper import detect_all_parameters

    found = []
    for space, params in sorted(detect_all_parameters(strategy).items()):
        for name, param in sorted(params.items()):
            entry: dict[str, Any] = {"name": name, "space": space, "type": type(param).__name__,
                                     "default": _describe(param.value), "optimize": bool(param.optimize)}  # fmt: skip
            if hasattr(param, "low"):
                entry.update(low=_describe(param.low), high=_describe(param.high))
            if hasattr(param, "opt_range") and not hasattr(param, "low"):
                entry["options"] = [_describe(option) for option in param.opt_range]
            if hasattr(param, "decimals"):
                entry["decimals"] = param.decimals
            found.append(entry)
    return found


class _Warnings(logging.Handler):
    """freqtrade's resolver logs why a module would not import, then raises a vaguer error: keep the why."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "does not exist" not in message:  # the search paths freqtrade tries besides ours
            self.messages.append(message)


def load(scratch: Path, class_name: str) -> dict[str, Any]:
    from freqtrade.exceptions import OperationalException
    from freqtrade.resolvers.strategy_resolver import StrategyResolver

    # Futures, so that a strategy that can short loads too: the market it trades is the bot's choice.
    config = {"strategy": class_name, "strategy_path": str(scratch), "user_data_dir": scratch,
              "stake_currency": "USDT", "dry_run": True, "runmode": None, "trading_mode": "futures",
              "margin_mode": "isolated", "exchange": {"name": "binance", "pair_whitelist": []}}  # fmt: skip
    warnings = _Warnings()
    logging.getLogger("freqtrade").addHandler(warnings)
    try:
        strategy = StrategyResolver.load_strategy(config)
    except OperationalException as exc:
        raise OperationalException("; ".join([*warnings.messages[-3:], str(exc)])) from None
    return {
        "class": type(strategy).__name__,
        "timeframe": getattr(strategy, "timeframe", None),
        "parameters": parameters_of(strategy),
    }


def main() -> None:
    scratch, class_name = Path(sys.argv[1]), sys.argv[2]
    nonce = sys.stdin.readline().strip()
    sys.stdin.close()
    sys.path[:] = [entry for entry in sys.path if entry]  # never the working directory's other modules
    # Imported before the walls go up: freqtrade's own imports may do what a strategy may not.
    for module in ("freqtrade.resolvers.strategy_resolver", "freqtrade.strategy.hyper"):
        importlib.import_module(module)
    out = os.fdopen(os.dup(1), "w")
    install_walls(scratch)
    try:
        result: dict[str, Any] = {"ok": True, **load(scratch, class_name)}
    except SystemExit as exc:
        result = {"ok": False, "error": f"the module exits the interpreter (SystemExit {exc.code!r})"}
    except BaseException as exc:  # noqa: BLE001 - any failure of untrusted code is the answer
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
    out.write(nonce + json.dumps(result, default=str) + "\n")
    out.flush()
    os._exit(0)  # no atexit handler or thread of the module's runs after the answer


if __name__ == "__main__":
    main()

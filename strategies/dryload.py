"""The dry load: a strategy loaded by freqtrade's own StrategyResolver, in a child process, walled in.

Run as ``python -I strategies/dryload.py <scratch dir> <ClassName> [<private dir>...]`` (strategies/sandbox.py does it),
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
# Which kernel walls went up, reported with the answer.
WALLS: dict[str, bool] = {"landlock": False, "seccomp": False}
LIMITS = {"cpu_seconds": 20, "memory_bytes": 2 * 1024**3, "file_bytes": 16 * 1024**2}


class RefusedError(PermissionError):
    """Something the sandbox does not allow a strategy module to do."""


def _related(path: str, other: str) -> bool:
    """Whether one of the two paths is the other or lies beneath it."""
    return path == other or path.startswith(other + os.sep) or other.startswith(path + os.sep)


def _readable_roots(scratch: Path, private: tuple[str, ...]) -> tuple[str, ...]:
    """The scratch directory and the Python installation; never a root holding (or inside) a private
    directory, as a project installed in development mode would put the project, and its home, on the path."""
    roots = {scratch, Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path("/usr/share/zoneinfo")}
    roots.update(Path(entry) for entry in sys.path if entry and Path(entry).is_dir())
    resolved = {str(root.resolve()) for root in roots}
    scratch_root = str(scratch.resolve())
    return tuple(sorted(root for root in resolved
                        if root == scratch_root or not any(_related(root, held) for held in private)))  # fmt: skip


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root + os.sep) for root in roots)


# x86_64 system calls a strategy never needs: new processes and programs, sockets, signals to others,
# tracing, and what root could change about the machine. Refused by the kernel (EPERM), whatever
# route the module takes to them (the audit hook sees only the routes Python reports).
DENIED_SYSCALLS = {
    "fork": 57, "vfork": 58, "execve": 59, "execveat": 322, "socket": 41, "socketpair": 53, "kill": 62,
    "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297, "pidfd_open": 434,
    "pidfd_send_signal": 424, "pidfd_getfd": 438, "process_madvise": 440, "ptrace": 101,
    "process_vm_readv": 310, "process_vm_writev": 311,
    "mount": 165, "umount2": 166, "chroot": 161, "pivot_root": 155, "unshare": 272, "setns": 308,
    "reboot": 169, "init_module": 175, "finit_module": 313, "delete_module": 176, "kexec_load": 246, "bpf": 321,
    "perf_event_open": 298, "keyctl": 250, "add_key": 248, "request_key": 249, "userfaultfd": 323,
    "io_uring_setup": 425, "open_by_handle_at": 304, "setuid": 105, "setgid": 106, "setreuid": 113,
    "setregid": 114, "setresuid": 117, "setresgid": 119, "setgroups": 116, "capset": 126, "personality": 135,
}  # fmt: skip
_CLONE, _CLONE3, _CLONE_THREAD = 56, 435, 0x00010000


def _seccomp_program() -> list[tuple[int, int, int, int]]:
    """A classic BPF filter: (code, jump if true, jump if false, constant) per instruction."""
    load, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, ...|JGE, ...|JSET
    allow, denied, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38  # ALLOW, ERRNO(EPERM), ERRNO(ENOSYS)
    numbers = sorted(set(DENIED_SYSCALLS.values()))
    program = [(load, 0, 0, 4), (jeq, 1, 0, 0xC000003E), (ret, 0, 0, denied), (load, 0, 0, 0),
               (jge, 0, 1, 0x40000000), (ret, 0, 0, denied)]  # fmt: skip
    for number in numbers:
        program += [(jeq, 0, 1, number), (ret, 0, 0, denied)]
    # A thread is a clone with CLONE_THREAD; any other clone is a new process. clone3's flags are out of
    # reach of the filter: "not implemented" makes the C library fall back to clone.
    program += [(jeq, 0, 1, _CLONE3), (ret, 0, 0, enosys), (jeq, 0, 4, _CLONE), (load, 0, 0, 16),
                (jset, 0, 1, _CLONE_THREAD), (ret, 0, 0, allow), (ret, 0, 0, denied), (ret, 0, 0, allow)]  # fmt: skip
    return program


def install_seccomp() -> bool:
    """The system-call filter, on every thread of the process; False where the kernel or machine has none."""
    import ctypes
    import platform

    if sys.platform != "linux" or platform.machine() != "x86_64":
        return False

    class Instruction(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Instruction))]

    instructions = _seccomp_program()
    array = (Instruction * len(instructions))(*(Instruction(*item) for item in instructions))
    program = Program(len(instructions), array)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS: required to filter without CAP_SYS_ADMIN
        return False
    # seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &program)
    return libc.syscall(317, 1, 1, ctypes.byref(program)) == 0


def install_landlock(readable: tuple[str, ...]) -> bool:
    """Landlock: from here the kernel lets the process read ``readable`` only, and write nowhere.
    False where the kernel has no Landlock (the audit hook still refuses)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    abi = libc.syscall(444, None, 0, 1)  # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    if abi < 1:
        return False
    # Every file-system right this ABI knows is handled (so denied unless a rule allows it).
    handled = 0x1FFF | (0x2000 if abi >= 2 else 0) | (0x4000 if abi >= 3 else 0)
    execute, read_file, read_dir = 0x1, 0x4, 0x8

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("handled_access_fs", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = RulesetAttr(handled)
    ruleset = libc.syscall(444, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    if ruleset < 0:
        return False
    try:
        for root in readable:
            try:
                fd = os.open(root, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                allowed = (execute | read_file | read_dir) if os.path.isdir(root) else (execute | read_file)
                rule = PathBeneath(allowed, fd)
                if libc.syscall(445, ruleset, 1, ctypes.byref(rule), 0) != 0:  # LANDLOCK_RULE_PATH_BENEATH
                    return False
            finally:
                os.close(fd)
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            return False
        return libc.syscall(446, ruleset, 0) == 0  # landlock_restrict_self
    finally:
        os.close(ruleset)


def install_walls(scratch: Path, private: tuple[str, ...] = ()) -> None:
    """Limits and the audit hook; from here on the process cannot leave the scratch directory."""
    import resource

    cpu, memory, size = LIMITS["cpu_seconds"], LIMITS["memory_bytes"], LIMITS["file_bytes"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # No new process or thread (root ignores it; the audit hook below refuses them for everyone).
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    # Nothing is written: a module that wrote a native library next to itself could then load it.
    readable, writable = _readable_roots(scratch, private), ()
    WALLS["landlock"] = install_landlock(readable)
    WALLS["seccomp"] = install_seccomp()
    if not WALLS["seccomp"] and os.geteuid() == 0:
        # Root ignores RLIMIT_NPROC: without the filter, a module could start a process the hook never sees.
        raise RuntimeError("the system-call filter could not be installed, and root ignores RLIMIT_NPROC")
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
                                     "value": _describe(param.value), "optimize": bool(param.optimize)}  # fmt: skip
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
        strategy.ft_load_hyper_params()  # what a bot does at start: the parameter file's values over the defaults
    except OperationalException as exc:
        raise OperationalException("; ".join([*warnings.messages[-3:], str(exc)])) from None
    return {
        "class": type(strategy).__name__,
        "timeframe": getattr(strategy, "timeframe", None),
        "parameters": parameters_of(strategy),
    }


def main() -> None:
    scratch, class_name = Path(sys.argv[1]), sys.argv[2]
    private = tuple(str(Path(path).resolve()) for path in sys.argv[3:])
    nonce = sys.stdin.readline().strip()
    sys.stdin.close()
    sys.path[:] = [entry for entry in sys.path if entry]  # never the working directory's other modules
    # Imported before the walls go up: freqtrade's own imports may do what a strategy may not.
    for module in ("freqtrade.resolvers.strategy_resolver", "freqtrade.strategy.hyper"):
        importlib.import_module(module)
    out = os.fdopen(os.dup(1), "w")
    install_walls(scratch, private)
    try:
        result: dict[str, Any] = {"ok": True, **load(scratch, class_name)}
    except SystemExit as exc:
        result = {"ok": False, "error": f"the module exits the interpreter (SystemExit {exc.code!r})"}
    except BaseException as exc:  # noqa: BLE001 - any failure of untrusted code is the answer
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
    result["walls"] = WALLS
    out.write(nonce + json.dumps(result, default=str) + "\n")
    out.flush()
    os._exit(0)  # no atexit handler or thread of the module's runs after the answer


if __name__ == "__main__":
    main()

"""CPU and memory of the gateway's bot processes, sampled once per heartbeat.

psutil measures a process's CPU between two calls on the same ``Process`` object, so the objects are
kept from one heartbeat to the next (the first sample of a new process reads 0.0, then the share of
one core used since the previous heartbeat). A bot's figures include its children's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psutil

MB = 1024 * 1024


@dataclass(frozen=True)
class Usage:
    cpu_percent: float
    memory_mb: float


class ProcessSampler:
    def __init__(self) -> None:
        self._processes: dict[int, psutil.Process] = {}

    def _process(self, pid: int) -> tuple[psutil.Process, bool]:
        """The kept ``Process`` for ``pid``, and whether it is new (its baseline was taken just now)."""
        known = self._processes.get(pid)
        if known is not None and known.is_running():  # same pid and create time: the same process
            return known, False
        process = self._processes[pid] = psutil.Process(pid)
        process.cpu_percent(None)  # the baseline; the next heartbeat's call measures from here
        return process, True

    def sample(self, pids: Iterable[int]) -> dict[int, Usage | None]:
        """Usage per root pid (None: the process is gone); forgets processes no longer asked about."""
        usage: dict[int, Usage | None] = {}
        seen: set[int] = set()
        for pid in pids:
            try:
                root = self._process(pid)
                tree = [root, *(self._process(child.pid) for child in root[0].children(recursive=True))]
                cpu = memory = 0.0
                for process, new in tree:
                    seen.add(process.pid)
                    with process.oneshot():
                        # A new process has no interval yet: a call now would measure the last microseconds.
                        cpu += 0.0 if new else process.cpu_percent(None)
                        memory += process.memory_info().rss
                usage[pid] = Usage(cpu_percent=cpu, memory_mb=memory / MB)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                usage[pid] = None
        for pid in set(self._processes) - seen:
            del self._processes[pid]
        return usage

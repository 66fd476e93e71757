"""The gateway's CPU and memory sampling of its bot processes (real child processes)."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from bots.commands import BotStatus, build_bot_beat, build_gateway_heartbeat, read_gateway_heartbeat
from bots.gateway.metrics import ProcessSampler

BUSY = "import time\nend = time.time() + 30\nwhile time.time() < end: pass"
IDLE = "import time\ntime.sleep(30)"
# A parent that spends nothing itself while its child works: the bot's figures include its children.
PARENT_OF_BUSY = f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {BUSY!r}])\ntime.sleep(30)"


def _spawn(program: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", program])


def test_a_busy_bot_reads_its_cpu_share_since_the_last_sample_and_an_idle_one_next_to_nothing():
    busy, idle, parent = _spawn(BUSY), _spawn(IDLE), _spawn(PARENT_OF_BUSY)
    try:
        sampler = ProcessSampler()
        deadline = time.monotonic() + 20
        while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)  # the parent has started its child (slow on a loaded machine)
        first = sampler.sample([busy.pid, idle.pid, parent.pid])
        time.sleep(1.0)
        second = sampler.sample([busy.pid, idle.pid, parent.pid])
    finally:
        for process in (busy, idle, parent):
            process.kill()
            process.wait()

    # The first sample is the baseline; the second measures the second between them.
    assert all(usage is not None and usage.cpu_percent == 0.0 for usage in first.values())
    assert second[busy.pid].cpu_percent > 40
    assert second[idle.pid].cpu_percent < 10
    assert second[parent.pid].cpu_percent > 40
    assert all(5 < usage.memory_mb < 500 for usage in second.values())


def test_a_gone_process_samples_as_none_and_is_forgotten():
    child = _spawn(IDLE)
    sampler = ProcessSampler()
    sampler.sample([child.pid])
    child.kill()
    child.wait()

    assert sampler.sample([child.pid]) == {child.pid: None}
    assert sampler.sample([]) == {} and sampler._processes == {}


def test_a_heartbeat_with_figures_round_trips_and_one_without_them_still_reads():
    sampled = build_bot_beat(bot_id=1, pid=10, status=BotStatus.RUNNING, cpu_percent=3.14159, memory_mb=123.456)
    beat = build_gateway_heartbeat(bots=[sampled], at=1.0, host="h")
    older = {"bots": [{"bot_id": 2, "pid": 20, "status": "running"}], "at": 2.0, "host": "h"}

    assert read_gateway_heartbeat(beat)["bots"] == [
        {"bot_id": 1, "pid": 10, "status": "running", "cpu_percent": 3.1, "memory_mb": 123.5}
    ]
    assert read_gateway_heartbeat(older)["bots"] == [{"bot_id": 2, "pid": 20, "status": "running"}]

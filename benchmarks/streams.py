"""Benchmark of the streams bus, against its baseline measured in the same run on the same Redis.

    .venv/bin/python benchmarks/streams.py [--count 200000] [--latency-seconds 10]

Figures:
  baseline       raw pipelined XADD of the same fields with redis-py (no envelope, no checks)
  batch publish  streams.bus.publish_many (envelope built and checked, JSON encoded, pipelined)
  end-to-end     publish -> XREADGROUP -> envelope parsed -> no-op handler -> XACK, through the
                 real StreamWorker in one separate worker process; from first publish to last ack
  latency        publish-to-handler at a steady 1,000 msg/s (one publish per message), p50/p95/p99
It starts its own embedded Redis (unless REDIS_URL is set) under a temporary MULTIBOT_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multibot.settings")
os.environ.setdefault("MULTIBOT_HOME", tempfile.mkdtemp(prefix="multibot-bench-"))
os.environ.setdefault("MULTIBOT_LOG_LEVEL", "WARNING")

from streams.catalog import LISTENERS, SYSTEM_EVENTS  # noqa: E402 - needs the path above

STREAM = SYSTEM_EVENTS  # approximate trimming, consumed by the listeners group
GROUP = LISTENERS
BATCH = 1000


def setup() -> None:
    import django

    django.setup()
    from django.conf import settings

    # No trimming during the run: every entry must reach the worker.
    settings.STREAMS["maxlen"] = {STREAM: 10_000_000}


# -- worker process -------------------------------------------------------------------------------
def run_worker(mode: str, out: str) -> None:
    setup()
    from streams.worker import HandlerRegistry, StreamWorker

    latencies: list[float] = []
    registry = HandlerRegistry()
    worker = StreamWorker(
        registry=registry, group=GROUP, consumer=f"bench-{mode}", streams=[STREAM], batch_size=BATCH, block_ms=50
    )

    @registry.handles(STREAM, "bench", atomic=False)
    def noop(envelope) -> None:
        if mode == "latency":
            latencies.append(time.time() - envelope.produced_at)

    @registry.handles(STREAM, "bench_stop", atomic=False)
    def stop(envelope) -> None:
        worker.stop()

    worker.prepare()
    Path(out + ".ready").write_text("1")
    while not worker.stopping:
        worker.step()
    worker.close()
    Path(out).write_text(json.dumps({"latencies": latencies, "processed": worker.totals.processed}))


# -- driver ---------------------------------------------------------------------------------------
def start_worker(mode: str) -> tuple[subprocess.Popen[bytes], str]:
    out = str(Path(tempfile.mkdtemp(prefix=f"bench-{mode}-")) / "result.json")
    process = subprocess.Popen([sys.executable, __file__, "--worker", mode, "--out", out], env=dict(os.environ))
    deadline = time.monotonic() + 60
    while not Path(out + ".ready").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the benchmark worker did not start")
        time.sleep(0.05)
    return process, out


def finish_worker(process: subprocess.Popen[bytes], out: str) -> dict:
    from streams.bus import publish

    publish(STREAM, type="bench_stop", payload={})
    process.wait(120)
    return json.loads(Path(out).read_text())


def reset(client, key: str) -> None:
    client.delete(key)
    from streams.bus import ensure_groups

    ensure_groups([STREAM])


def bench_raw(client, key: str, count: int) -> float:
    from streams.bus import envelope

    fields = envelope(type="bench", payload={"bot_id": 7, "action": "start", "seq": 0}).fields()
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(BATCH, count - start)):
            pipe.xadd(key, fields, maxlen=10_000_000, approximate=True)
        pipe.execute()
    return count / (time.perf_counter() - started)


def bench_publish(count: int) -> float:
    from streams.bus import envelope, publish_many

    started = time.perf_counter()
    for start in range(0, count, BATCH):
        publish_many(STREAM, [
            envelope(type="bench", payload={"bot_id": 7, "action": "start", "seq": seq})
            for seq in range(start, min(start + BATCH, count))
        ])  # fmt: skip
    return count / (time.perf_counter() - started)


def bench_end_to_end(client, key: str, count: int) -> float:
    process, out = start_worker("e2e")
    started = time.perf_counter()
    bench_publish(count)
    # Done when the group has read every entry and nothing is pending (all acknowledged).
    while True:
        group = client.xinfo_groups(key)[0]
        if int(group["entries-read"] or 0) >= count and int(group["pending"]) == 0:
            break
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    result = finish_worker(process, out)
    assert result["processed"] >= count, result
    return count / elapsed


def bench_latency(seconds: float, rate: int = 1000) -> list[float]:
    from streams.bus import publish

    process, out = start_worker("latency")
    interval, total = 1 / rate, int(seconds * rate)
    started = time.perf_counter()
    for seq in range(total):
        # Pace against the clock, not by sleeping a fixed time, so the rate stays steady.
        delay = started + seq * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        publish(STREAM, type="bench", payload={"seq": seq})
    achieved = total / (time.perf_counter() - started)
    latencies = finish_worker(process, out)["latencies"]
    print(f"  latency run: {len(latencies)} messages at {achieved:,.0f} msg/s")
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--worker")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.out)
        return

    from multibot.embedded_redis import EmbeddedRedis

    server = None
    if not os.environ.get("REDIS_URL"):
        server = EmbeddedRedis(Path(os.environ["MULTIBOT_HOME"]) / "redis")
        server.start()
    try:
        setup()
        from multibot.redis_client import redis_client
        from streams.bus import stream_key

        client, key = redis_client(), stream_key(STREAM)
        print(f"streams benchmark: {args.count:,} messages, batches of {BATCH}, python {sys.version.split()[0]}")
        reset(client, key)
        raw = bench_raw(client, key, args.count)
        reset(client, key)
        published = bench_publish(args.count)
        reset(client, key)
        end_to_end = bench_end_to_end(client, key, args.count)
        reset(client, key)
        latencies = sorted(bench_latency(args.latency_seconds))
        reset(client, key)

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

        print(f"baseline  raw pipelined XADD        {raw:>10,.0f} msg/s   1.00x")
        print(f"batch     publish_many              {published:>10,.0f} msg/s   {published / raw:.2f}x of baseline")
        print(f"e2e       publish->handler->ack     {end_to_end:>10,.0f} msg/s   {end_to_end / raw:.2f}x of baseline")
        print(
            f"latency   at 1,000 msg/s            p50 {pct(50):.2f} ms  p95 {pct(95):.2f} ms  p99 {pct(99):.2f} ms"
            f"  max {latencies[-1] * 1000:.2f} ms  mean {statistics.mean(latencies) * 1000:.2f} ms"
        )
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()

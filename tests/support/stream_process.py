"""A real stream worker process for the bus tests: ``python -m tests.support.stream_process --mode effect ...``.

Its handler (on mgmt:data:commands, type "work", with --time-limit if given) writes one AuditLog row
per envelope (action "test_effect") in the worker's transaction, so tests can count effects. An entry
whose payload has ``"sleep": <seconds>`` sleeps that long first. Modes change how it behaves on the
entry whose payload has ``"special": true`` (or on every entry for mode "hang"):
  effect             handle normally
  hang               write "<marker>.started" and sleep forever (the test SIGKILLs us)
  kill_after_commit  commit the effect, then SIGKILL ourselves before the worker acknowledges
  slow               sleep --slow-seconds, then commit the effect
  stuck              like slow, but deaf to the time limit's alarm (a hang nothing in Python can interrupt)
  crash              SIGKILL ourselves before any effect (a poison entry that kills its consumer)
  raise              raise ValueError (a poison entry that fails cleanly)
At exit (after --exit-after seconds, or SIGTERM) it prints its totals as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="effect")
    parser.add_argument("--consumer", default="c1")
    parser.add_argument("--claim-idle-ms", type=int, default=60_000)
    parser.add_argument("--max-deliveries", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--slow-seconds", type=float, default=3.0)
    parser.add_argument("--exit-after", type=float, default=30.0)
    parser.add_argument("--marker", default="")
    parser.add_argument("--time-limit", type=float, default=None)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import transaction

    from audit.services import Actor, audit_record
    from streams.catalog import DATA_COMMANDS
    from streams.worker import HandlerRegistry, StreamWorker

    def special(envelope) -> bool:
        return args.mode == "hang" or bool(envelope.payload.get("special"))

    registry = HandlerRegistry()

    @registry.handles(DATA_COMMANDS, "work", time_limit=args.time_limit)
    def work(envelope) -> None:
        time.sleep(float(envelope.payload.get("sleep") or 0))
        if special(envelope):
            if args.marker:
                Path(f"{args.marker}.started").write_text(envelope.message_id)
            if args.mode == "hang":
                time.sleep(3600)
            if args.mode == "crash":
                os.kill(os.getpid(), signal.SIGKILL)
            if args.mode == "raise":
                raise ValueError("poison")
            if args.mode == "stuck":
                signal.signal(signal.SIGALRM, signal.SIG_IGN)
            if args.mode in ("slow", "stuck"):
                time.sleep(args.slow_seconds)
        audit_record(
            actor=Actor.system(), action="test_effect",
            details={"request_id": envelope.request_id, "consumer": args.consumer, "seq": envelope.payload.get("seq")},
        )  # fmt: skip
        if special(envelope) and args.mode == "kill_after_commit":
            transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))

    worker = StreamWorker(
        registry=registry, group="data_consumers", consumer=args.consumer, service_name="test_consumer", block_ms=100,
        claim_idle_ms=args.claim_idle_ms, retry_delay_ms=0, max_deliveries=args.max_deliveries,
        batch_size=args.batch_size,
    )  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    deadline = time.monotonic() + args.exit_after
    worker.prepare()
    while not worker.stopping and time.monotonic() < deadline:
        worker.step()
    worker.close()
    print(json.dumps(asdict(worker.totals)), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()

"""Status reports that reach the bus, late rather than never.

A report the bus does not take (Redis away, loading, frozen) is kept, and sent once it answers:
the newest report per bot (an older one says less than it), in the order they were made, and never
overtaken by a newer one sent straight through. The backlog is bounded: past ``limit`` bots the
oldest is dropped and counted (the gateway's periodic snapshot heals what a dropped report said).

Delivery is at least once: a report the bus timed out on may still have been written (a frozen
Redis executes what it had received once it thaws), and is then sent again. The listeners apply a
report only if it is newer than what they hold, so a repeat changes nothing.

Used from the gateway's loop and from its stopper threads at once. The lock guards the queue only,
never a call to the bus: a frozen Redis costs the thread that asks one socket timeout, and after a
refusal everyone queues without asking for ``retry_seconds`` (at least the socket timeout).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from bots.commands import BotStatusReport
from streams.bus import BusError

logger = logging.getLogger(__name__)

Send = Callable[[BotStatusReport], object]


class ReportBacklog:
    def __init__(self, send: Send, *, limit: int = 10000, retry_seconds: float = 2.0) -> None:
        self._send, self.limit, self.retry_seconds = send, limit, retry_seconds
        self._waiting: OrderedDict[int, BotStatusReport] = OrderedDict()
        self._lock = threading.Lock()  # guards the queue; never held while the bus is asked
        self._flushing = threading.Lock()  # one flush at a time
        self._retry_at = 0.0
        self.dropped = 0  # reports pushed out by the bound, since the start

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)

    def report(self, report: BotStatusReport) -> bool:
        """Send now if nothing waits and the bus is not known to refuse; otherwise keep it. True when sent."""
        with self._lock:
            if self._waiting or time.monotonic() < self._retry_at:
                self._keep(report)
                return False
        if self._try(report):
            return True
        with self._lock:
            self._keep(report)
        return False

    def flush(self, *, force: bool = False) -> int:
        """Send what waits, oldest first, until the bus refuses one; returns how many went.

        Between refusals it waits ``retry_seconds`` unless ``force`` (the gateway's last words).
        """
        if not self._flushing.acquire(blocking=False):
            return 0
        sent = 0
        try:
            while True:
                with self._lock:
                    if not self._waiting or (not force and time.monotonic() < self._retry_at):
                        break
                    bot_id, report = next(iter(self._waiting.items()))
                if not self._try(report):
                    break
                with self._lock:
                    if self._waiting.get(bot_id) is report:  # not replaced by a newer one meanwhile
                        del self._waiting[bot_id]
                sent += 1
        finally:
            self._flushing.release()
        if sent:
            logger.info("sent %d status report(s) the bus had refused; %d still waiting", sent, len(self))
        return sent

    def drain(self, *, timeout: float) -> bool:
        """Flush until nothing waits or ``timeout`` passes (at shutdown); True when nothing is left."""
        deadline = time.monotonic() + timeout
        while True:
            self.flush(force=True)
            if not len(self) or time.monotonic() >= deadline:
                return not len(self)
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def _try(self, report: BotStatusReport) -> bool:
        try:
            self._send(report)
        except BusError as exc:
            with self._lock:
                if not self._waiting:
                    logger.warning("status reports are kept until the bus answers: %s", exc)
                self._retry_at = time.monotonic() + self.retry_seconds
            return False
        return True

    # -- under the lock --------------------------------------------------------------------------
    def _keep(self, report: BotStatusReport) -> None:
        bot_id = report["bot_id"]
        kept = self._waiting.get(bot_id)
        if kept is not None and kept["at"] > report["at"]:
            return  # a newer one waits already
        self._waiting[bot_id] = report
        self._waiting.move_to_end(bot_id)
        while len(self._waiting) > self.limit:
            dropped, _ = self._waiting.popitem(last=False)
            self.dropped += 1
            logger.warning("report backlog full (%d bots): the oldest, of bot %s, dropped", self.limit, dropped)

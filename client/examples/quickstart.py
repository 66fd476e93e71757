"""Log in, create a bot, start it, wait for `running` from the events, backtest its strategy with
progress, stop it. Uses only the client package.

    python client/examples/quickstart.py http://127.0.0.1:8002 admin <password> [timerange]

On `make run`'s demo data (the replay exchange, BTC/ETH/SOL/BNB against USDT).
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

from multibot_client import Client


def main(url: str, username: str, password: str, timerange: str | None = None) -> int:
    if timerange is None:  # the last ten days of the demo candles
        today = datetime.now(UTC).date()
        timerange = f"{today - timedelta(days=10):%Y%m%d}-{today - timedelta(days=1):%Y%m%d}"
    with Client(url) as client:
        client.login(username, password)
        bot = client.bot_create(f"quickstart-{int(time.time())}", "SampleStrategy", stake_amount=100,
                                pair_whitelist=["BTC/USDT"], timeframe="5m")  # fmt: skip
        print(f"created bot {bot['name']} (id {bot['id']})")

        with client.events(["bot_status_update"]) as events:
            answer = client.bot_start(bot["id"])
            print(f"{answer['status']} to host {answer['host'] or '(the first gateway to take it)'}")
            started = time.monotonic()
            for event in events:
                if event.data["bot_id"] != bot["id"]:
                    continue
                print(f"  {time.monotonic() - started:5.1f}s  {event.data['status']}")
                if event.data["status"] == "running":
                    break
                if event.data["status"] == "error":
                    print("the bot failed:", event.data.get("detail"))
                    return 1

        job = client.backtest_start("SampleStrategy", timerange=timerange, pairs=["BTC/USDT"], timeframe="5m")
        print(f"backtest {job['task_id']} of SampleStrategy on {timerange}")
        for state in client.job_watch(job["task_id"]):
            print(f"  {state['status']:<10} {(state['progress'] or 0) * 100:3.0f}%  {state.get('step') or ''}")
        result = client.backtest_result(job["task_id"])
        summary = result.get("summary") or {}
        print(f"trades {summary.get('total_trades')}, profit {summary.get('profit_total_abs', 0):.4f} "
              f"{summary.get('stake_currency', '')}, max drawdown {summary.get('max_drawdown_account')}")  # fmt: skip

        print(client.bot_stop(bot["id"])["status"])
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

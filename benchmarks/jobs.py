"""Jobs benchmark: backtests through the whole system against the bare freqtrade CLI, in one run.

    .venv/bin/python benchmarks/jobs.py [--runs 5] [--days 10] [--epochs 30]

It starts a private system (embedded Redis, SQLite, replay exchange with demo candles, listeners,
web server, and a Celery worker at concurrency 2) under a temporary MULTIBOT_HOME and measures:
  overhead   one backtest (SampleStrategy, 4 pairs, 5m, the last --days days) submitted through
             POST /strategies/backtest until GET /strategies/backtest/<id> says completed, against
             `freqtrade backtesting` run directly on the same config, candles and markets (median of --runs)
  parallel   4 backtests submitted at once on the 2 worker processes, against the same 4 submitted
             one after another (each once the previous completed)
  hyperopt   --epochs epochs of SampleStrategy (buy and sell spaces, one process) through POST
             /hyperopt/start until completed, against `freqtrade hyperopt` directly: epochs per second
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fleet import System, wait_for  # noqa: E402 - needs the path above

PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT"]


class JobsSystem(System):
    def start(self) -> None:
        self.env["MULTIBOT_WORKER_CONCURRENCY"] = "2"
        super().start()
        self.spawn(sys.executable, "-m", "celery", "-A", "multibot", "worker", "--loglevel", "WARNING",
                   "--without-gossip", "--without-mingle")  # fmt: skip


def timerange(days: int) -> str:
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    return f"{end - timedelta(days=days):%Y%m%d}-{end:%Y%m%d}"


def bare_cli(system: System, window: str, workdir: Path) -> float:
    """``freqtrade backtesting`` by hand, with the config a job renders; seconds of wall time."""
    from jobs.backtest import render_config
    from marketdata.replay_config import replay_exchange_section

    exchange = replay_exchange_section(PAIRS, f"http://127.0.0.1:{system.replay_port}")
    parameters = {"max_open_trades": 3, "stake_currency": "USDT", "stake_amount": 100.0, "dry_run_wallet": 1000.0,
                  "timeframe": "5m"}  # fmt: skip
    (workdir / "user_data").mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(json.dumps(render_config(parameters, exchange_section=exchange)))
    results = workdir / "results"
    results.mkdir(exist_ok=True)
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "freqtrade", "backtesting", "-c", str(workdir / "config.json"),
         "--userdir", str(workdir / "user_data"), "--datadir", str(system.home / "data" / "replay"),
         "--strategy", "SampleStrategy", "--strategy-path", str(sample_strategy_dir(system)), "--timeframe", "5m",
         "--timerange", window, "--export", "trades", "--backtest-directory", str(results), "--cache", "none"],
        cwd=workdir, env=system.env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return time.monotonic() - started


def sample_strategy_dir(system: System) -> Path:
    """freqtrade's own sample strategy alone in a directory: the bytes the built-in SampleStrategy was made of."""
    import freqtrade

    directory = system.home / "bench-strategy"
    directory.mkdir(exist_ok=True)
    shutil.copyfile(
        Path(freqtrade.__file__).parent / "templates" / "sample_strategy.py", directory / "sample_strategy.py"
    )
    return directory


def bare_hyperopt(system: System, window: str, workdir: Path, epochs: int) -> float:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "freqtrade", "hyperopt", "-c", str(workdir / "config.json"),
         "--userdir", str(workdir / "user_data"), "--datadir", str(system.home / "data" / "replay"),
         "--strategy", "SampleStrategy", "--strategy-path", str(sample_strategy_dir(system)), "--timeframe", "5m",
         "--timerange", window, "--hyperopt-loss", "SharpeHyperOptLoss", "--epochs", str(epochs), "-j", "1",
         "--spaces", "buy", "sell", "--random-state", "1", "--disable-param-export", "--no-color"],
        cwd=workdir, env=system.env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return time.monotonic() - started


def hyperopt_through_api(system: System, window: str, epochs: int) -> float:
    started = time.monotonic()
    response = system.client.post("/api/v1/hyperopt/start", json={
        "strategy_name": "SampleStrategy", "timeframe": "5m", "timerange": window, "pairs": PAIRS, "epochs": epochs,
        "spaces": ["buy", "sell"], "loss": "SharpeHyperOptLoss", "random_state": 1, "jobs": 1,
    })  # fmt: skip
    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]

    def done() -> bool:
        status = system.client.get(f"/api/v1/hyperopt/results/{task_id}").json()["status"]
        if status in ("failed", "cancelled"):
            raise SystemExit(f"the hyperopt ended {status}")
        return status == "completed"

    wait_for(done, 1800, "the hyperopt", interval=0.1)
    return time.monotonic() - started


def submit(system: System, window: str) -> str:
    response = system.client.post("/api/v1/strategies/backtest", json={
        "strategy_name": "SampleStrategy", "timeframe": "5m", "timerange": window, "pairs": PAIRS,
    })  # fmt: skip
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


def completed(system: System, task_ids: list[str]) -> bool:
    """One request per look, whatever the number of jobs: the polling must not load the machine it measures."""
    jobs = system.client.get("/api/v1/jobs/?kind=backtest&per_page=500").json()["jobs"]
    states = {job["task_id"]: job["status"] for job in jobs}
    failed = [states[task_id] for task_id in task_ids if states.get(task_id) in ("failed", "cancelled")]
    if failed:
        raise SystemExit(f"a backtest ended {failed}")
    return all(states.get(task_id) == "completed" for task_id in task_ids)


def through_api(system: System, window: str, count: int = 1) -> float:
    started = time.monotonic()
    task_ids = [submit(system, window) for _ in range(count)]
    wait_for(lambda: completed(system, task_ids), 900, f"{count} backtests", interval=0.1)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="multibot-jobs-"))
    system = JobsSystem(home)
    window = timerange(args.days)
    print(f"jobs benchmark: SampleStrategy, {len(PAIRS)} pairs, 5m, {window}, 2 worker processes, home {home}")
    system.start()
    try:
        # A first run of each warms the disk cache and the imports; not counted.
        through_api(system, window)
        bare_cli(system, window, home / "cli-warmup")
        # Alternated, so that a change in the machine's load weighs on both alike.
        cli, api = [], []
        for run in range(args.runs):
            cli.append(bare_cli(system, window, home / f"cli-{run}"))
            api.append(through_api(system, window))
        cli_s, api_s = statistics.median(cli), statistics.median(api)
        print(
            f"overhead   bare CLI {cli_s:6.2f} s   through the API {api_s:6.2f} s   ratio {api_s / cli_s:.3f}x"
            f"   (medians of {args.runs}: cli {[round(x, 2) for x in cli]}, api {[round(x, 2) for x in api]})"
        )
        serial = sum(through_api(system, window) for _ in range(4))
        parallel = through_api(system, window, count=4)
        print(
            f"parallel   4 one after another {serial:6.2f} s   4 at once on 2 workers {parallel:6.2f} s"
            f"   speed-up {serial / parallel:.2f}x"
        )
        cli_h = bare_hyperopt(system, window, home / "cli-0", args.epochs)
        api_h = hyperopt_through_api(system, window, args.epochs)
        print(
            f"hyperopt   {args.epochs} epochs: bare CLI {args.epochs / cli_h:5.2f} epochs/s ({cli_h:.1f} s)   "
            f"through the API {args.epochs / api_h:5.2f} epochs/s ({api_h:.1f} s)   ratio {api_h / cli_h:.3f}x"
        )
    finally:
        system.stop()


if __name__ == "__main__":
    main()

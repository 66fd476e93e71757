"""FreqAI benchmark: a training through the whole system against the bare freqtrade CLI, in one run.

    .venv/bin/python benchmarks/freqai.py [--runs 3] [--train-days 2]

It starts a private system (embedded Redis, SQLite, replay exchange with the demo candles, listeners,
web server, and a Celery worker at concurrency 2) under a temporary MULTIBOT_HOME and measures:
  training   one small model (FreqaiExampleStrategy, LightGBMRegressor, the defaults of a model created
             with a name only, but --train-days training days) trained on its default timerange (two
             one-day windows) through POST /freqai/models/{id}/train until GET /freqai/models/{id}/status
             shows the new version ready, against `freqtrade backtesting --freqaimodel LightGBMRegressor`
             run directly on the config, strategy and candles the job renders (freqai.training.prepare):
             medians of --runs and the API/CLI ratio. The system's run also saves each window's labels
             and scores the predictions (freqai.training_entry) and copies the model directory into place.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fleet import System, wait_for  # noqa: E402 - needs the path above

MODELS = "/api/v1/freqai/models/"


class FreqaiSystem(System):
    def start(self) -> None:
        self.env["MULTIBOT_WORKER_CONCURRENCY"] = "2"
        super().start()
        self.spawn(sys.executable, "-m", "celery", "-A", "multibot", "worker", "--loglevel", "WARNING",
                   "--without-gossip", "--without-mingle")  # fmt: skip


def model_create(system: System, train_days: int) -> dict[str, Any]:
    response = system.client.post(MODELS, json={"name": "bench", "train_period_days": train_days})
    assert response.status_code == 201, response.text
    return response.json()


def train_through_api(system: System, model_id: int) -> tuple[float, dict[str, Any]]:
    """Seconds from the train request to the new version ready; and the job's parameters."""
    started = time.monotonic()
    response = system.client.post(f"{MODELS}{model_id}/train", json={})
    assert response.status_code == 202, response.text
    body = response.json()

    def ready() -> bool:
        status = system.client.get(f"{MODELS}{model_id}/status").json()
        if status["training"]["status"] in ("failed", "cancelled"):
            raise SystemExit(f"the training ended {status['training']['status']}: {status['training']['error']}")
        return status["version"] == body["version"]

    wait_for(ready, 1800, "the training", interval=0.1)
    seconds = time.monotonic() - started
    return seconds, system.client.get(f"/api/v1/jobs/{body['task_id']}").json()["parameters"]


def example_strategy() -> Path:
    """freqtrade's FreqaiExampleStrategy: the bytes the built-in of the same name was made of."""
    import freqtrade

    return Path(freqtrade.__file__).parent / "templates" / "FreqaiExampleStrategy.py"


def bare_cli(system: System, parameters: dict[str, Any], workdir: Path) -> float:
    """``freqtrade backtesting --freqaimodel`` by hand, in a directory prepared as the job's is; seconds."""
    from freqai import training
    from jobs import backtest
    from marketdata.replay_config import replay_exchange_section

    shutil.rmtree(workdir, ignore_errors=True)
    section = replay_exchange_section(parameters["pairs"], f"http://127.0.0.1:{system.replay_port}")
    training.prepare(workdir, parameters, strategy_file=example_strategy(), exchange_section=section)
    arguments = backtest.cli_arguments(
        workdir, {**parameters, "strategy_name": parameters["strategy_name"] + training.SPOT_SUFFIX},
        datadir=system.home / "data" / "replay",
    )  # fmt: skip
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "freqtrade", *arguments, "--freqaimodel", parameters["model_type"]],
        cwd=workdir, env=system.env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    seconds = time.monotonic() - started
    if not training.is_complete(training.models_dir(workdir, parameters), parameters["pairs"]):
        raise SystemExit("the bare CLI left an incomplete model directory")
    return seconds


def training_benchmark(system: System, *, runs: int, train_days: int) -> None:
    model = model_create(system, train_days)
    print(f"training   {model['model_type']} on {model['pairs']} (correlated {model['include_corr_pairlist']}), "
          f"{model['timeframe']} with {model['include_timeframes']}, "
          f"{model['train_period_days']} training days")  # fmt: skip
    # A first run of each warms the disk cache and the imports; not counted.
    _, parameters = train_through_api(system, model["id"])
    print(f"           timerange {parameters['timerange']} (the default: two one-day windows)")
    bare_cli(system, parameters, system.home / "cli-warmup")
    # Alternated, so that a change in the machine's load weighs on both alike.
    cli, api = [], []
    for run in range(runs):
        cli.append(bare_cli(system, parameters, system.home / f"cli-{run}"))
        api.append(train_through_api(system, model["id"])[0])
    cli_s, api_s = statistics.median(cli), statistics.median(api)
    print(
        f"training   bare CLI {cli_s:6.2f} s   through the API {api_s:6.2f} s   ratio {api_s / cli_s:.3f}x"
        f"   (medians of {runs}: cli {[round(x, 2) for x in cli]}, api {[round(x, 2) for x in api]})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--train-days", type=int, default=2, help="the model's train_period_days (default 2)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="multibot-freqai-"))
    system = FreqaiSystem(home)
    print(f"freqai benchmark: demo candles, 2 worker processes, home {home}")
    system.start()
    try:
        training_benchmark(system, runs=args.runs, train_days=args.train_days)
    finally:
        system.stop()


if __name__ == "__main__":
    main()

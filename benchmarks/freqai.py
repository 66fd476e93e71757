"""FreqAI benchmark, in one run: a training through the whole system against the bare freqtrade CLI, and a
trained model's predictions from the model cache against cold loads.

    .venv/bin/python benchmarks/freqai.py [--runs 3] [--train-days 2] [--cache-runs 15] [--starts 3]
                                          [--only training|cache]

It starts a private system (embedded Redis, SQLite, replay exchange with the demo candles, listeners,
web server, and a Celery worker at concurrency 2) under a temporary MULTIBOT_HOME, with a model cache of
one model, and measures:
  training   one small model (FreqaiExampleStrategy, LightGBMRegressor, the defaults of a model created
             with a name only, but --train-days training days) trained on its default timerange (two
             one-day windows) through POST /freqai/models/{id}/train until GET /freqai/models/{id}/status
             shows the new version ready, against `freqtrade backtesting --freqaimodel LightGBMRegressor`
             run directly on the config, strategy and candles the job renders (freqai.training.prepare):
             medians of --runs and the API/CLI ratio. The system's run also saves each window's labels
             and scores the predictions (freqai.training_entry) and copies the model directory into place.
  cache      a tiny model (BTC/USDT and ETH/USDT, 5m, two one-day windows) and GET
             /freqai/models/{id}/predictions. Cold: the two pairs asked in turn, so that each request evicts
             the other and loads its model (strategy, FreqAI model class, pipelines, model) for real; cached:
             one pair asked again (a hit: only the latest candles' features and the prediction). Medians of
             --cache-runs each, alternated, and the speed-up; the predictor's own start (the first request)
             is shown apart, and the share of a cold request that is the load itself (the predictor's own
             timing); and a prediction by a new predictor (its start, walls and load: what every request
             would cost without a long-lived one), median of --starts, against the same cached figure.
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
from benchmarks.jobs import JobsSystem  # noqa: E402 - the system with a worker

MODELS = "/api/v1/freqai/models/"


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


PAIRS = ["BTC/USDT", "ETH/USDT"]


def trained_model(system: System) -> int:
    """A tiny model trained through the API; its id once its training completed."""
    response = system.client.post("/api/v1/freqai/models/", json={
        "name": "bench-cache", "model_type": "LightGBMRegressor", "strategy_name": "FreqaiExampleStrategy",
        "pairs": PAIRS, "include_corr_pairlist": [], "train_period_days": 2, "backtest_period_days": 1,
        "label_period_candles": 12, "indicator_periods_candles": [10],
    })  # fmt: skip
    assert response.status_code == 201, response.text
    model_id = response.json()["id"]
    response = system.client.post(f"/api/v1/freqai/models/{model_id}/train", json={})
    assert response.status_code == 202, response.text

    def done() -> bool:
        status = system.client.get(f"/api/v1/freqai/models/{model_id}/status").json()
        if status["status"] in ("failed", "cancelled"):
            raise SystemExit(f"the training ended {status['status']}: {status['training']['error']}")
        return status["status"] == "completed"

    wait_for(done, 900, "the training", interval=0.5)
    return model_id


TIMINGS: dict[str, list[float]] = {"miss": [], "hit": []}  # the predictor's own load + predict seconds


def predict(system: System, model_id: int, pair: str, expected: str) -> float:
    started = time.monotonic()
    response = system.client.get(f"/api/v1/freqai/models/{model_id}/predictions", params={"pair": pair})
    seconds = time.monotonic() - started
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["cache"] == expected, (pair, expected, body["cache"])
    TIMINGS[expected].append(body["timings"]["load_seconds"])
    return seconds


def cache_benchmark(system: System, runs: int, starts: int) -> None:
    model_id = trained_model(system)
    first = predict(system, model_id, PAIRS[0], "miss")  # the predictor starts: imports, walls, then a load
    cold, cached, turn = [], [], 1
    for _ in range(runs):
        # Alternated, so that a change in the machine's load weighs on both alike: the other pair evicts the
        # one held (a cold load), then the same pair again (a hit).
        cold.append(predict(system, model_id, PAIRS[turn], "miss"))
        cached.append(predict(system, model_id, PAIRS[turn], "hit"))
        turn = 1 - turn
    loads = TIMINGS["miss"][1:]  # the first one's was measured apart
    stats = system.client.get("/api/v1/freqai/cache/stats").json()
    cold_s, cached_s = statistics.median(cold), statistics.median(cached)
    print(
        f"cache      cold load {cold_s * 1000:7.1f} ms   cached {cached_s * 1000:7.1f} ms   "
        f"speed-up {cold_s / cached_s:.2f}x   (medians of {runs}; predictor start + first load {first:.2f} s)"
    )
    print(
        f"           of which the model's load in the predictor: median {statistics.median(loads) * 1000:.1f} ms "
        "(the rest, hit or miss: the candles read, the strategy's features of them, the prediction, HTTP)"
    )
    started = new_predictor_loads(system, model_id, starts)
    started_s = statistics.median(started)
    print(
        f"           new predictor {started_s * 1000:7.1f} ms   cached {cached_s * 1000:7.1f} ms   "
        f"speed-up {started_s / cached_s:.1f}x   (median of {starts} starts: {[round(x, 2) for x in started]} s)"
    )
    print(
        f"           stats: hits {stats['hits']}, misses {stats['misses']}, evictions {stats['total_evictions']}, "
        f"hit rate {stats['cache_hit_rate']}%, walls {stats['walls']}"
    )


def new_predictor_loads(system: System, model_id: int, starts: int) -> list[float]:
    """Seconds of a prediction by a predictor started for it (this process's own, through the web's code on the
    system's home and database): its start, its walls, the load, the prediction."""
    import os

    os.environ.update(MULTIBOT_HOME=str(system.home), DJANGO_SETTINGS_MODULE="multibot.settings")
    import django

    django.setup()
    from freqai import cache
    from freqai.models import FreqaiModel

    found = []
    for _ in range(starts):
        cache.predictor_reset()
        started = time.monotonic()
        answer = cache.model_prediction(model=FreqaiModel.objects.get(pk=model_id), pair=PAIRS[0], timeframe=None)
        found.append(time.monotonic() - started)
        assert answer["cache"] == "miss"
    cache.predictor_reset()
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="trainings of each kind (default 3)")
    parser.add_argument("--train-days", type=int, default=2, help="the model's train_period_days (default 2)")
    parser.add_argument("--cache-runs", type=int, default=15, help="cold and cached predictions each (default 15)")
    parser.add_argument("--starts", type=int, default=3, help="predictions by a new predictor (default 3)")
    parser.add_argument("--only", choices=["training", "cache"])
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="multibot-freqai-"))
    system = JobsSystem(home)
    system.env["MULTIBOT_FREQAI_CACHE_SIZE"] = "1"
    print(f"freqai benchmark: demo candles, 2 worker processes, a model cache of 1, home {home}")
    system.start()
    try:
        if args.only in (None, "training"):
            training_benchmark(system, runs=args.runs, train_days=args.train_days)
        if args.only in (None, "cache"):
            cache_benchmark(system, args.cache_runs, args.starts)
    finally:
        system.stop()


if __name__ == "__main__":
    main()

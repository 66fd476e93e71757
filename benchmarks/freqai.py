"""FreqAI benchmark: a trained model's predictions from the model cache against cold loads, in one run.

    .venv/bin/python benchmarks/freqai.py [--runs 15] [--starts 3]

It starts a private system (embedded Redis, SQLite, replay exchange with demo candles, listeners, web
server, and a Celery worker) under a temporary MULTIBOT_HOME with a model cache of one model, trains a
tiny FreqAI model (LightGBMRegressor, FreqaiExampleStrategy, BTC/USDT and ETH/USDT, 5m, two one-day
windows) through POST /freqai/models/{id}/train, and measures GET /freqai/models/{id}/predictions:
  cache   cold: the two pairs asked in turn, so that each request evicts the other and loads its model
          (strategy, FreqAI model class, pipelines, model) for real; cached: one pair asked again and
          again (a hit: only the latest candles' features and the prediction). Medians of --runs each,
          alternated, and the speed-up; the predictor's own start (the first request) is shown apart, and
          the share of a cold request that is the load itself (the predictor's own timing); and a
          prediction by a new predictor (its start, walls and load: what every request would cost
          without a long-lived one), median of --starts, against the same cached figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fleet import wait_for  # noqa: E402 - needs the path above
from benchmarks.jobs import JobsSystem  # noqa: E402

PAIRS = ["BTC/USDT", "ETH/USDT"]


def trained_model(system: JobsSystem) -> int:
    """A tiny model trained through the API; its id once its training completed."""
    response = system.client.post("/api/v1/freqai/models/", json={
        "name": "bench", "model_type": "LightGBMRegressor", "strategy_name": "FreqaiExampleStrategy",
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


def predict(system: JobsSystem, model_id: int, pair: str, expected: str) -> float:
    started = time.monotonic()
    response = system.client.get(f"/api/v1/freqai/models/{model_id}/predictions", params={"pair": pair})
    seconds = time.monotonic() - started
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["cache"] == expected, (pair, expected, body["cache"])
    TIMINGS[expected].append(body["timings"]["load_seconds"])
    return seconds


def cache_benchmark(system: JobsSystem, runs: int, starts: int) -> None:
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


def new_predictor_loads(system: JobsSystem, model_id: int, starts: int) -> list[float]:
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
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="multibot-freqai-"))
    system = JobsSystem(home)
    system.env["MULTIBOT_FREQAI_CACHE_SIZE"] = "1"
    print(f"freqai benchmark: LightGBMRegressor, FreqaiExampleStrategy, {', '.join(PAIRS)}, 5m, home {home}")
    system.start()
    try:
        cache_benchmark(system, args.runs, args.starts)
    finally:
        system.stop()


if __name__ == "__main__":
    main()

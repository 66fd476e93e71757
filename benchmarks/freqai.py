"""FreqAI benchmark: a trained model's predictions from the model cache against cold loads, in one run.

    .venv/bin/python benchmarks/freqai.py [--runs 15]

It starts a private system (embedded Redis, SQLite, replay exchange with demo candles, listeners, web
server, and a Celery worker) under a temporary MULTIBOT_HOME with a model cache of one model, trains a
tiny FreqAI model (LightGBMRegressor, FreqaiExampleStrategy, BTC/USDT and ETH/USDT, 5m, two one-day
windows) through POST /freqai/models/{id}/train, and measures GET /freqai/models/{id}/predictions:
  cache   cold: the two pairs asked in turn, so that each request evicts the other and loads its model
          (strategy, FreqAI model class, pipelines, model) for real; cached: one pair asked again and
          again (a hit: only the latest candles' features and the prediction). Medians of --runs each,
          alternated, and the speed-up; the predictor's own start (the first request) is shown apart, and
          the share of a cold request that is the load itself (the predictor's own timing).
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


def cache_benchmark(system: JobsSystem, runs: int) -> None:
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
    print(
        f"           stats: hits {stats['hits']}, misses {stats['misses']}, evictions {stats['total_evictions']}, "
        f"hit rate {stats['cache_hit_rate']}%, walls {stats['walls']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="multibot-freqai-"))
    system = JobsSystem(home)
    system.env["MULTIBOT_FREQAI_CACHE_SIZE"] = "1"
    print(f"freqai benchmark: LightGBMRegressor, FreqaiExampleStrategy, {', '.join(PAIRS)}, 5m, home {home}")
    system.start()
    try:
        cache_benchmark(system, args.runs)
    finally:
        system.stop()


if __name__ == "__main__":
    main()

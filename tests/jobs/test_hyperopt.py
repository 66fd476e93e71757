"""Hyperopt through the job system: freqtrade's own hyperopt, its epochs read from its own results file."""

from __future__ import annotations

import threading
import time

import pytest

from jobs import execution
from jobs.commands import JobStatus
from jobs.hyperopt import write_parameter_file
from jobs.models import Job
from tests.jobs.conftest import timerange

pytestmark = [pytest.mark.slow]


def test_a_20_epoch_hyperopt_completes_with_best_parameters_and_shows_its_epochs_before_it_ends(
    committed_db, market, tunable_strategy, user_api, other_api, tmp_path
):
    # given
    response = user_api.post("/api/v1/hyperopt/start", {
        "strategy_name": "Tunable", "timeframe": "5m", "timerange": timerange(3), "epochs": 20,
        "spaces": ["buy", "sell"], "loss": "OnlyProfitHyperOptLoss", "random_state": 7,
    }, format="json")  # fmt: skip
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "optimization_started"
    task_id = response.json()["task_id"]
    seen: list[tuple[str, int]] = []

    def watch() -> None:
        while not seen or seen[-1][0] in ("queued", "running"):
            answer = user_api.get(f"/api/v1/hyperopt/results/{task_id}").json()
            seen.append((answer["status"], answer["epochs_done"]))
            time.sleep(0.2)

    # when: run here, by the worker's own code, while the API is watched
    watcher = threading.Thread(target=watch)
    watcher.start()
    outcome = execution.job_execute(job_id=int(task_id))
    watcher.join(30)

    # then
    job = Job.objects.get(pk=int(task_id))
    assert outcome == "completed", job.error + job.log_tail[-3000:]
    result = user_api.get(f"/api/v1/hyperopt/results/{task_id}").json()
    assert (result["status"], result["epochs_done"], result["epochs_total"]) == (JobStatus.COMPLETED, 20, 20)
    best = result["best_result"]
    assert set(best["params"]) == {"fast_period", "exit_margin"}
    assert 3 <= best["params"]["fast_period"] <= 12
    assert isinstance(best["loss"], float) and best["results"]["total_trades"] >= 1
    assert any(status == "running" and 0 < done < 20 for status, done in seen), seen
    # Every epoch, lowest loss first (the best leads), paginated like a backtest's trades.
    epochs = user_api.get(f"/api/v1/hyperopt/results/{task_id}?per_page=5").json()["epochs"]
    assert (epochs["total"], len(epochs["items"])) == (20, 5)
    assert (epochs["items"][0]["epoch"], epochs["items"][0]["params"]) == (best["epoch"], best["params"])
    losses = [row["loss"] for row in result["epochs"]["items"]]
    assert losses == sorted(losses) and len(losses) == 20
    assert sorted(row["epoch"] for row in result["epochs"]["items"]) == list(range(1, 21))
    # The best parameters, in freqtrade's own parameter-file format, read back by freqtrade.
    from freqtrade.optimize.hyperopt_tools import HyperoptTools

    written = write_parameter_file(job.results["best_result"], strategy_name="Tunable", path=tmp_path / "tunable.json")
    loaded = HyperoptTools.load_params_from_file(written)
    assert loaded["strategy_name"] == "Tunable"
    assert loaded["params"]["buy"] == {"fast_period": best["params"]["fast_period"]}
    assert loaded["params"]["sell"] == {"exit_margin": best["params"]["exit_margin"]}
    assert other_api.get(f"/api/v1/hyperopt/results/{task_id}").status_code == 404


def test_a_hyperopt_with_an_unknown_loss_is_a_422(db, user_api, candle_sets, tunable_strategy):
    response = user_api.post("/api/v1/hyperopt/start", {"strategy_name": "Tunable", "timerange": timerange(2),
                                                         "loss": "MyLoss"}, format="json")  # fmt: skip

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "loss"]
    assert not Job.objects.exists()
    assert "SharpeHyperOptLoss" in user_api.get("/api/v1/hyperopt/losses").json()["losses"]

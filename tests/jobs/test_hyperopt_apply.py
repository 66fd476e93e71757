"""A hyperopt's best parameters applied: a new version of its strategy, in freqtrade's own parameter-file
format, that a bot's workspace holds and a real freqtrade bot loads at start."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from audit.models import AuditLog
from audit.services import Actor
from bots import workspace
from bots.services import bot_create
from jobs import execution
from jobs.models import Job
from strategies.models import Strategy, StrategyVersion
from tests.factories import store_replay_markets
from tests.jobs.conftest import TUNABLE, timerange
from tests.strategies.conftest import upload
from tests.support.processes import free_port, server_env, wait_for
from tests.support.replay import answers, stop

# Tunable under a name of its own: uploaded through the API, so the hyperopt runs a stored version.
TUNED = TUNABLE.replace("class Tunable(IStrategy):", "class Tuned(IStrategy):")


@contextmanager
def logged_bot(prepared: workspace.Workspace, api_port: int) -> Iterator[None]:
    """``freqtrade trade`` on the workspace, what it says in the workspace's log (as the supervisor keeps it),
    once its API answers; stopped on exit."""
    prepared.log.parent.mkdir(parents=True, exist_ok=True)
    with prepared.log.open("ab") as log:
        process = subprocess.Popen(prepared.command(sys.executable), cwd=prepared.root, env=server_env(),
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        ping = f"http://127.0.0.1:{api_port}/api/v1/ping"
        wait_for(lambda: process.poll() is not None or answers(ping), 120, "the bot's API to answer")
        assert process.poll() is None, f"freqtrade exited {process.returncode}: {prepared.log.read_text()[-3000:]}"
        yield
    finally:
        stop(process)


def apply(api: Any, task_id: int | str) -> Any:
    return api.post(f"/api/v1/hyperopt/results/{task_id}/apply")


def completed_hyperopt(owner: Any, strategy_name: str, **fields: Any) -> Job:
    """A job row as a finished hyperopt leaves it (its best epoch as jobs.hyperopt.summary records it)."""
    best = {"loss": -1.0, "epoch": 3, "params": {"fast_period": 7},
            "params_details": {"buy": {"fast_period": 7}}, "params_not_optimized": {}, "results": {}}  # fmt: skip
    values = {"owner": owner, "kind": "hyperopt", "status": "completed", "results": {"best_result": best},
              "parameters": {"strategy_name": strategy_name, "strategy_sha256": "", "epochs": 5}, **fields}  # fmt: skip
    return Job.objects.create(**values)


@pytest.mark.slow
def test_the_best_parameters_of_a_real_hyperopt_become_a_version_a_bot_starts_with(
    committed_db, market, user, user_api, other_api, settings
):
    # given: Tuned uploaded, and a real 5-epoch hyperopt of it, run by the worker's own code
    assert upload(user_api, TUNED, filename="Tuned.py").status_code == 201
    uploaded = Strategy.objects.get(owner=user, name="Tuned").current_version
    response = user_api.post("/api/v1/hyperopt/start", {
        "strategy_name": "Tuned", "timeframe": "5m", "timerange": timerange(2), "epochs": 5,
        "spaces": ["buy", "sell"], "loss": "OnlyProfitHyperOptLoss", "random_state": 3,
    }, format="json")  # fmt: skip
    assert response.status_code == 202, response.json()
    task_id = int(response.json()["task_id"])
    assert execution.job_execute(job_id=task_id) == "completed", Job.objects.get(pk=task_id).log_tail[-3000:]
    best = user_api.get(f"/api/v1/hyperopt/results/{task_id}").json()["best_result"]["params"]

    # when
    assert apply(other_api, task_id).status_code == 404
    response = apply(user_api, task_id)

    # then: a new version, the same code with freqtrade's parameter file of the best epoch
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["strategy_name"], body["new_version"]) == ("applied", "Tuned", True)
    version = StrategyVersion.objects.get(strategy__owner=user, strategy__name="Tuned", pk__gt=uploaded.pk)
    assert body["sha256"] == version.sha256 == uploaded.sha256  # the code the hyperopt ran, unchanged
    assert body["parameters"] == version.parameters
    assert version.parameters["strategy_name"] == "Tuned"
    assert version.parameters["params"]["buy"] == {"fast_period": best["fast_period"]}
    assert version.parameters["params"]["sell"] == {"exit_margin": best["exit_margin"]}
    assert Strategy.objects.get(owner=user, name="Tuned").current_version_id == version.pk
    row = AuditLog.objects.get(action=AuditLog.Action.HYPEROPT_APPLY, status="success")
    assert (row.resource, row.user_id, row.details["new_version"]) == (f"job:{task_id}", user.pk, True)
    detail = user_api.get("/api/v1/strategies/Tuned").json()
    assert [(job["id"], job["kind"], job["status"]) for job in detail["jobs"]] == [(task_id, "hyperopt", "completed")]
    assert detail["parameter_file"] == version.parameters
    # Applying the same result again is the same version.
    again = apply(user_api, task_id)
    assert (again.status_code, again.json()["new_version"]) == (200, False)
    assert StrategyVersion.objects.filter(strategy__name="Tuned").count() == 2

    # and then: a bot of the strategy gets the parameter file in its workspace, and freqtrade loads it
    store_replay_markets("BTC/USDT", "ETH/USDT")
    port = free_port()
    settings.BOTS = {**settings.BOTS, "api_port_first": port, "api_port_last": port}
    bot = bot_create(actor=Actor(user=user, ip_address="127.0.0.1"), owner=user, name="tuned", strategy_name="Tuned",
                     stake_amount=10, pair_whitelist=["BTC/USDT"])  # fmt: skip
    prepared = workspace.prepare(bot)
    parameter_file = prepared.strategies / "Tuned.json"
    assert json.loads(parameter_file.read_text()) == version.parameters
    assert workspace.running_strategy_version(bot.pk) == version.sha256
    with logged_bot(prepared, bot.api_port):
        log = prepared.log.read_text()
    assert f"Loading parameters from file {parameter_file}" in log
    assert f"Strategy Parameter: fast_period = {best['fast_period']}" in log


@pytest.mark.django_db
def test_a_hyperopt_not_completed_cannot_be_applied(user, user_api):
    job = completed_hyperopt(user, "Tuned", status="running", results=None)

    response = apply(user_api, job.pk)

    assert response.status_code == 409
    assert "running" in response.json()["detail"]
    row = AuditLog.objects.get(action=AuditLog.Action.HYPEROPT_APPLY)
    assert (row.status, row.resource) == ("failure", f"job:{job.pk}")


@pytest.mark.django_db
def test_another_users_hyperopt_and_a_backtest_are_not_found(user, other_user, user_api):
    theirs = completed_hyperopt(other_user, "Tuned")
    backtest = completed_hyperopt(user, "Tuned", kind="backtest")

    assert apply(user_api, theirs.pk).status_code == 404
    assert apply(user_api, backtest.pk).status_code == 404
    assert apply(user_api, "nope").status_code == 404
    assert not StrategyVersion.objects.exists()


@pytest.mark.django_db
def test_the_parameters_of_a_built_in_strategy_are_refused_and_it_stays_as_it_was(user, user_api):
    # given: a built-in, everyone's, and a completed hyperopt of it
    builtin = Strategy.objects.create(owner=None, name="SampleStrategy")
    StrategyVersion.objects.create(strategy=builtin, sha256="ab" * 32, size=10)
    job = completed_hyperopt(user, "SampleStrategy")

    # when
    response = apply(user_api, job.pk)

    # then
    assert response.status_code == 409
    assert "built-in" in response.json()["detail"]
    assert builtin.versions.count() == 1
    assert not Strategy.objects.filter(owner=user).exists()


@pytest.mark.django_db
def test_a_hyperopt_whose_strategy_is_gone_or_found_nothing_is_a_conflict(user, user_api):
    gone = completed_hyperopt(user, "Deleted")
    Strategy.objects.create(owner=user, name="Tuned")
    empty = completed_hyperopt(user, "Tuned", results={"epochs_done": 5, "best_result": None})

    assert "no longer" in apply(user_api, gone.pk).json()["detail"]
    response = apply(user_api, empty.pk)
    assert response.status_code == 409
    assert "no parameters" in response.json()["detail"]

"""What the strategy library tells hyperopt (the strategies with hyperoptable parameters) and the jobs
a strategy's detail lists next to its bots."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.models import Job
from strategies.models import Strategy, StrategyVersion
from tests.strategies.conftest import strategy_text, upload

pytestmark = pytest.mark.django_db

PARAMETER = {"name": "buy_rsi", "space": "buy", "type": "IntParameter", "value": 30, "optimize": True,
             "low": 10, "high": 40}  # fmt: skip
FIXED = {**PARAMETER, "optimize": False}


def stored(owner: Any, name: str, parameters: list[dict[str, Any]], sha: str = "ab") -> Strategy:
    """A strategy whose current version's dry load found ``parameters``."""
    strategy = Strategy.objects.create(owner=owner, name=name)
    version = StrategyVersion.objects.create(strategy=strategy, sha256=sha * 32, size=10,
                                             hyperopt_parameters=parameters)  # fmt: skip
    Strategy.objects.filter(pk=strategy.pk).update(current_version=version)
    return strategy


def test_the_hyperopt_strategies_are_the_callers_own_and_the_builtins_with_parameters_to_optimize(
    user, other_user, user_api
):
    # given
    stored(None, "BuiltinTuned", [PARAMETER])
    stored(None, "BuiltinPlain", [])
    stored(user, "MineFixed", [FIXED])  # parameters, none of them optimized
    stored(other_user, "TheirsTuned", [PARAMETER])
    # A built-in shadowed by the caller's own strategy of its name: the caller's version decides.
    stored(None, "Shadowed", [PARAMETER], sha="cd")
    stored(user, "Shadowed", [], sha="ef")
    # and one uploaded for real: its parameters as the sandboxed dry load found them
    assert upload(user_api, strategy_text("MineTuned")).status_code == 201

    # when
    response = user_api.get("/api/v1/hyperopt/strategies")

    # then: the seed's shape, a list of names
    assert response.status_code == 200
    assert response.json() == ["BuiltinTuned", "MineTuned"]


def test_the_hyperopt_strategies_need_a_login(api):
    assert api.get("/api/v1/hyperopt/strategies").status_code == 401


def test_the_detail_lists_the_jobs_of_the_strategy_with_the_bots_never_another_users(
    user, other_user, user_api, other_api
):
    # given
    stored(user, "Mine", [PARAMETER])
    first = Job.objects.create(owner=user, kind="backtest", status="completed", parameters={"strategy_name": "Mine"})
    second = Job.objects.create(owner=user, kind="hyperopt", status="running", parameters={"strategy_name": "Mine"})
    Job.objects.create(owner=user, kind="backtest", parameters={"strategy_name": "Other"})
    stored(None, "Builtin", [])
    theirs = Job.objects.create(owner=other_user, kind="backtest", parameters={"strategy_name": "Builtin"})
    mine_of_builtin = Job.objects.create(owner=user, kind="hyperopt", parameters={"strategy_name": "Builtin"})

    # when
    detail = user_api.get("/api/v1/strategies/Mine").json()
    builtin = user_api.get("/api/v1/strategies/Builtin").json()

    # then: newest first, with kind and status
    assert [(job["id"], job["kind"], job["status"]) for job in detail["jobs"]] == [
        (second.pk, "hyperopt", "running"),
        (first.pk, "backtest", "completed"),
    ]
    assert detail["bots"] == []
    assert [job["id"] for job in builtin["jobs"]] == [mine_of_builtin.pk]
    assert [job["id"] for job in other_api.get("/api/v1/strategies/Builtin").json()["jobs"]] == [theirs.pk]
    assert other_api.get("/api/v1/strategies/Mine").status_code == 404


def test_the_openapi_schema_documents_the_hyperopt_strategies_and_apply(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()

    listed = schema["paths"]["/api/v1/hyperopt/strategies"]["get"]
    assert listed["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    applied = schema["paths"]["/api/v1/hyperopt/results/{task_id}/apply"]["post"]
    assert {"200", "201", "404", "409"} <= set(applied["responses"])
    body = schema["components"]["schemas"]["HyperoptApplied"]["properties"]
    assert {"sha256", "parameters", "version", "new_version"} <= set(body)
    detail = schema["components"]["schemas"]["StrategyDetailOutput"]["properties"]
    assert "jobs" in detail


def test_parameters_applied_to_a_code_version_the_strategy_does_not_have_are_refused(user):
    from audit.services import Actor
    from multibot.errors import ConflictError
    from strategies.services import strategy_parameters_apply

    strategy = stored(user, "Mine", [PARAMETER])

    with pytest.raises(ConflictError, match="no stored version"):
        strategy_parameters_apply(actor=Actor(user=user, ip_address="127.0.0.1"), strategy=strategy,
                                  parameters={"params": {}}, code_sha256="99" * 32)  # fmt: skip

    assert strategy.versions.count() == 1

"""FreqAI models through the API: CRUD, ownership, parameters checked by freqtrade's own schema."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from freqai.models import FreqaiModel

pytestmark = pytest.mark.django_db

URL = "/api/v1/freqai/models/"


@pytest.fixture
def ready(candle_sets, freqai_strategy):
    """Candles recorded and the example strategy in the library."""


def create(api, **body):
    return api.post(URL, {"name": "m1", "model_type": "LightGBMRegressor", **body}, format="json")


def test_a_model_is_created_with_defaults_that_fit_the_stored_candles(ready, user_api):
    # when
    response = create(user_api, description="first")

    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["status"], body["backtest_results"], body["strategy_name"]) == (
        "m1", "created", None, "FreqaiExampleStrategy")  # fmt: skip
    assert body["pairs"] == ["BTC/USDT"] and body["include_corr_pairlist"] == ["ETH/USDT"]
    assert body["include_timeframes"] == ["5m"]
    assert [model["id"] for model in user_api.get(URL).json()] == [body["id"]]
    assert AuditLog.objects.filter(action=AuditLog.Action.FREQAI_MODEL_CREATE, resource=f"freqai_model:{body['id']}",
                                   status=AuditLog.Status.SUCCESS).exists()  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model_type": "NoSuchRegressor"}, "model_type"),
        ({"model_type": "CatboostRegressor"}, "model_type"),  # freqtrade has it; catboost is not installed
        ({"strategy_name": "Missing"}, "strategy_name"),
        ({"include_timeframes": ["1h"]}, "include_timeframes"),  # no 1h candles stored
        ({"include_timeframes": ["1m"]}, "include_timeframes"),  # shorter than the timeframe
        ({"include_corr_pairlist": ["DOGE/USDT"]}, "include_corr_pairlist"),
        ({"label_period_candles": 0}, "label_period_candles"),
        ({"train_period_days": -1}, "train_period_days"),
        ({"indicator_periods_candles": ["x"]}, "indicator_periods_candles"),
    ],
)
def test_a_wrong_parameter_is_a_422_that_names_it_and_stores_nothing(ready, user_api, body, field):
    response = create(user_api, **body)
    assert response.status_code == 422, response.json()
    assert field in [str(part) for error in response.json()["detail"] for part in error["loc"]], response.json()
    assert not FreqaiModel.objects.exists()


def test_freqtrade_own_schema_refuses_what_it_refuses(ready, user):
    from audit.services import Actor
    from freqai import services
    from multibot.errors import InvalidInputError

    # given: a value only freqtrade's schema knows to be wrong (its identifier must be a string)
    values = {**services.DEFAULTS, "pairs": ["BTC/USDT"], "include_timeframes": ["5m"], "include_corr_pairlist": []}
    from freqai import training

    config = training.render_config({**values, "identifier": 7, "stake_currency": "USDT", "stake_amount": 1.0,
                                     "dry_run_wallet": 10.0, "max_open_trades": 1},
                                    exchange_section={"name": "binance"})  # fmt: skip

    # then
    assert training.config_error(config)[0] == "identifier"
    assert training.config_error({**config, "freqai": {**config["freqai"], "identifier": "m"}}) is None
    with pytest.raises(InvalidInputError) as refused:
        services.freqai_model_create(actor=Actor.system(), owner=user, name="x", label_period_candles=-3)
    assert refused.value.field == "label_period_candles"


def test_a_model_is_updated_and_deleted_with_its_artifacts(
    ready, user_api, settings, django_capture_on_commit_callbacks
):
    from pathlib import Path

    model_id = create(user_api).json()["id"]
    artifacts = Path(settings.HOME) / "freqai" / str(model_id) / "1"
    artifacts.mkdir(parents=True)

    updated = user_api.patch(f"{URL}{model_id}", {"label_period_candles": 12, "description": "d"}, format="json")
    assert updated.status_code == 200, updated.json()
    assert (updated.json()["label_period_candles"], updated.json()["description"]) == (12, "d")
    refused = user_api.patch(f"{URL}{model_id}", {"model_type": "Nope"}, format="json")
    assert refused.status_code == 422
    assert FreqaiModel.objects.get(pk=model_id).model_type == "LightGBMRegressor"

    with django_capture_on_commit_callbacks(execute=True):
        assert user_api.delete(f"{URL}{model_id}").status_code == 204
    assert not FreqaiModel.objects.filter(pk=model_id).exists()
    assert not artifacts.parent.exists()
    assert AuditLog.objects.filter(action=AuditLog.Action.FREQAI_MODEL_DELETE).count() == 1


def test_another_users_model_is_404_everywhere(ready, user_api, other_api):
    model_id = create(user_api).json()["id"]
    assert other_api.get(URL).json() == []
    for method, path in [("get", ""), ("patch", ""), ("delete", ""), ("get", "/status"), ("post", "/train")]:
        response = getattr(other_api, method)(f"{URL}{model_id}{path}", {}, format="json")
        assert response.status_code == 404, (method, path)
    assert FreqaiModel.objects.filter(pk=model_id).exists()


def test_a_second_model_of_the_same_name_is_a_conflict(ready, user_api, other_api):
    assert create(user_api).status_code == 201
    assert create(user_api).status_code == 409
    assert create(other_api).status_code == 201  # names are per owner

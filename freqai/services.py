"""Every write to a FreqAI model: create, update, delete, train (a job of the job system) and the end of a
training (its version marked ready). Audited in the same transaction."""

from __future__ import annotations

import logging
import math
import shutil
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from audit import events
from audit.services import Actor
from freqai import training
from freqai.models import FreqaiModel, FreqaiModelVersion
from jobs.commands import FINISHED_STATUSES, JobKind, JobStatus
from multibot.errors import ConflictError, InvalidInputError

if TYPE_CHECKING:
    from bots.models import Bot
    from jobs.models import Job
    from multibot.models import User

logger = logging.getLogger(__name__)

PARAMETER_FIELDS = (
    "model_type", "strategy_name", "timeframe", "pairs", "include_timeframes", "include_corr_pairlist",
    "label_period_candles", "indicator_periods_candles", "train_period_days", "backtest_period_days",
    "live_retrain_hours",
)  # fmt: skip
DEFAULTS: dict[str, Any] = {
    "model_type": "LightGBMRegressor", "strategy_name": "FreqaiExampleStrategy", "timeframe": "5m",
    "label_period_candles": 24, "indicator_periods_candles": [10, 20], "train_period_days": 7,
    "backtest_period_days": 1.0, "live_retrain_hours": 1.0,
}  # fmt: skip
# A running bot's retraining period, at most a year (0: FreqAI retrains each pair as soon as the last is done).
MAX_RETRAIN_HOURS = 8760
# Beside the model's own timeframe, the longer ones freqtrade's FreqAI example config includes (3m, 15m, 1h),
# where they are stored: the demo data of ``make run`` has them, so a model of defaults trains on the 5m, 15m
# and 1h candles of its pair and its correlated pair, as the example strategy's features are meant to. The
# cost, measured on that data (tests/freqai/test_demo_training.py: 7 training days, two 1-day windows,
# LightGBMRegressor, a loaded 2-core machine): 254 features instead of 86, the job 35 s instead of 16 s.
# Seven training days: a week of 5m candles (2016 rows) is enough for a first model and keeps it quick,
# where freqtrade's examples use 15 or 30. An empty tuple gives the model's timeframe alone.
DEFAULT_INCLUDE_TIMEFRAMES = ("15m", "1h")


def models_root() -> Path:
    return Path(settings.HOME) / "freqai"


def model_dir(model_id: int) -> Path:
    return models_root() / str(model_id)


def _stored(pair: str, timeframe: str) -> Any:
    from marketdata.selectors import candle_set_get

    return candle_set_get(pair=pair, timeframe=timeframe)


def _check(values: dict[str, Any], *, owner: User) -> None:
    """Every rule a model's parameters must meet for a training to run; InvalidInputError naming the field."""
    from marketdata.vocabulary import TIMEFRAME_SECONDS
    from strategies.library import strategy_code

    if values["model_type"] not in training.available_model_types():
        raise InvalidInputError("model_type", f"{values['model_type']!r} is not a FreqAI model class that can run "
                                f"here; one of {', '.join(training.available_model_types())}.")  # fmt: skip
    code = strategy_code(values["strategy_name"], owner=owner)
    if code is None:
        raise InvalidInputError(
            "strategy_name", f"Strategy {values['strategy_name']!r} is not in the strategy library."
        )
    if "set_freqai_targets" not in code.source.read_text(encoding="utf-8", errors="replace"):
        raise InvalidInputError("strategy_name", f"{values['strategy_name']!r} is not a FreqAI strategy "
                                "(it sets no FreqAI targets).")  # fmt: skip
    for field, least in (("label_period_candles", 1), ("train_period_days", 1), ("backtest_period_days", 0.01)):
        if not isinstance(values[field], int | float) or values[field] < least:
            raise InvalidInputError(field, f"{field} must be a number of at least {least}.")
    retrain = values["live_retrain_hours"]
    if not isinstance(retrain, int | float) or not 0 <= retrain <= MAX_RETRAIN_HOURS:
        raise InvalidInputError("live_retrain_hours", f"live_retrain_hours is hours from 0 to {MAX_RETRAIN_HOURS}.")
    if not all(isinstance(period, int) and period >= 2 for period in values["indicator_periods_candles"] or [0]):
        raise InvalidInputError("indicator_periods_candles", "Indicator periods are whole numbers of at least 2.")
    base = TIMEFRAME_SECONDS.get(values["timeframe"])
    if base is None:
        raise InvalidInputError("timeframe", f"{values['timeframe']!r} is not a timeframe.")
    for timeframe in values["include_timeframes"]:
        if TIMEFRAME_SECONDS.get(timeframe, 0) < base:
            raise InvalidInputError("include_timeframes", f"{timeframe!r} is not a timeframe of at least "
                                    f"{values['timeframe']}.")  # fmt: skip
    if not values["pairs"]:
        raise InvalidInputError("pairs", "No pairs given and no USDT market is stored.")
    for field in ("pairs", "include_corr_pairlist"):
        for pair in values[field]:
            for timeframe in dict.fromkeys([values["timeframe"], *values["include_timeframes"]]):
                if _stored(pair, timeframe) is None:
                    named = field if timeframe == values["timeframe"] else "include_timeframes"
                    raise InvalidInputError(named, f"No {timeframe} candles are stored for {pair}.")
    parameters = {**values, "identifier": "check", "stake_currency": "USDT", "stake_amount": 100.0,
                  "dry_run_wallet": 1000.0, "max_open_trades": 3}  # fmt: skip
    config = training.render_config(parameters, exchange_section={"name": "binance", "pair_whitelist": values["pairs"]})
    refused = training.config_error(config)
    if refused is not None:
        raise InvalidInputError(*refused)


def _defaults(values: dict[str, Any], *, bot: Bot | None) -> dict[str, Any]:
    from marketdata.selectors import replay_market_pairs

    values = {**DEFAULTS, **{key: value for key, value in values.items() if value is not None}}
    if not values.get("pairs"):
        values["pairs"] = list(bot.pair_whitelist) if bot is not None and bot.pair_whitelist else \
            replay_market_pairs(quote="USDT")[:1]  # fmt: skip
    if "include_corr_pairlist" not in values:
        others = [pair for pair in replay_market_pairs(quote="USDT") if pair not in values["pairs"]]
        values["include_corr_pairlist"] = others[:1]
    if "include_timeframes" not in values:
        values["include_timeframes"] = [values["timeframe"], *_longer_stored(values)]
    return values


def _longer_stored(values: dict[str, Any]) -> list[str]:
    """Of DEFAULT_INCLUDE_TIMEFRAMES, those longer than the model's timeframe stored for all its pairs."""
    from marketdata.vocabulary import TIMEFRAME_SECONDS

    base = TIMEFRAME_SECONDS.get(values["timeframe"], 0)
    pairs = [*values["pairs"], *values["include_corr_pairlist"]]
    return [timeframe for timeframe in DEFAULT_INCLUDE_TIMEFRAMES if TIMEFRAME_SECONDS[timeframe] > base
            and all(_stored(pair, timeframe) is not None for pair in pairs)]  # fmt: skip


def freqai_model_create(*, actor: Actor, owner: User, name: str, description: str = "", bot: Bot | None = None,
                        **parameters: Any) -> FreqaiModel:  # fmt: skip
    """A model of ``owner``; its parameters checked (freqtrade's own schema included) before anything is stored."""
    values = _defaults({key: parameters.get(key) for key in PARAMETER_FIELDS}, bot=bot)
    _check(values, owner=owner)
    try:
        with transaction.atomic():
            model = FreqaiModel.objects.create(owner=owner, name=name, description=description, bot=bot, **values)
            events.freqai_model_created_event(actor=actor, model=model, parameters=values)
    except IntegrityError:
        raise ConflictError(f"You have a model named {name!r} already.") from None
    return model


def freqai_model_update(*, actor: Actor, model: FreqaiModel, **changes: Any) -> FreqaiModel:
    """The fields given, checked as a whole; a training under way keeps what it was given."""
    values = {key: getattr(model, key) for key in PARAMETER_FIELDS}
    values.update({key: value for key, value in changes.items() if key in PARAMETER_FIELDS})
    _check(values, owner=model.owner)
    try:
        with transaction.atomic():
            for key, value in changes.items():
                setattr(model, key, value)
            model.save()
            changed = {key: (value.pk if hasattr(value, "pk") else value) for key, value in changes.items()}
            events.freqai_model_updated_event(actor=actor, model=model, changed=changed)
    except IntegrityError:
        raise ConflictError(f"You have a model named {changes.get('name')!r} already.") from None
    return model


def _training_jobs(model: FreqaiModel) -> list[int]:
    return list(FreqaiModelVersion.objects.filter(model=model, job__isnull=False)
                .exclude(job__status__in=FINISHED_STATUSES).values_list("job_id", flat=True))  # fmt: skip


def freqai_model_delete(*, actor: Actor, model: FreqaiModel) -> None:
    """The model, its versions and its artifacts. Refused (409) while one of its trainings is queued or
    running (cancel it first: POST /jobs/{id}/cancel), and while a bot running it runs or is to run (stop it
    first); a stopped bot that used it is left without a model. The training jobs' rows stay."""
    from bots.commands import ACTIVE_STATUSES, DesiredState
    from bots.models import Bot

    with transaction.atomic():
        model = FreqaiModel.objects.select_for_update().get(pk=model.pk)
        running = _training_jobs(model)
        if running:
            raise ConflictError(f"Model {model.name!r} is training (job {', '.join(map(str, running))}); "
                                "cancel the training first.")  # fmt: skip
        # Locked: a start of one of these bots waits for this delete, then finds no model.
        users = Bot.objects.select_for_update().filter(freqai_model=model)
        live = sorted(name for name, status, desired in users.values_list("name", "status", "desired_state")
                      if status in ACTIVE_STATUSES or desired == DesiredState.RUNNING)  # fmt: skip
        if live:
            raise ConflictError(f"Model {model.name!r} is in use by running bot(s) {', '.join(live)}; "
                                "stop them first.")  # fmt: skip
        detached = sorted(users.values_list("name", flat=True))
        users.update(freqai_model=None, freqai_version=None)
        model_id, name, versions = model.pk, model.name, model.versions.count()
        model.delete()
        events.freqai_model_deleted_event(actor=actor, model_id=model_id, name=name, versions=versions,
                                          detached_bots=detached)  # fmt: skip
        transaction.on_commit(lambda: shutil.rmtree(model_dir(model_id), ignore_errors=True))


def _default_timerange(model: FreqaiModel) -> str:
    """The last ``2 x backtest_period_days`` (whole days) before the end of the stored candles: two windows."""
    ends = [stored.end for pair in model.pairs if (stored := _stored(pair, model.timeframe)) is not None]
    if not ends:
        raise InvalidInputError("pairs", f"No {model.timeframe} candles are stored for {', '.join(model.pairs)}.")
    end = min(ends).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=max(1, math.ceil(2 * model.backtest_period_days)))
    return f"{start:%Y%m%d}-{end:%Y%m%d}"


def freqai_model_train(
    *, actor: Actor, model: FreqaiModel, timerange: str | None = None
) -> tuple[Job, FreqaiModelVersion]:
    """The model's next version and the job that trains it (freqtrade backtesting --freqaimodel on the stored
    candles). The timerange is what FreqAI's windows predict; each window trains on the days before it."""
    from jobs.services import job_create, parse_timerange
    from strategies.library import strategy_code

    values = {key: getattr(model, key) for key in PARAMETER_FIELDS}
    _check(values, owner=model.owner)
    timerange = timerange or _default_timerange(model)
    start, _end = parse_timerange(timerange)
    if start is None:
        raise InvalidInputError("timerange", "A training's timerange needs its start.")
    needed = start - timedelta(days=model.train_period_days)
    for pair in [*model.pairs, *model.include_corr_pairlist]:
        for timeframe in dict.fromkeys([model.timeframe, *model.include_timeframes]):
            stored = _stored(pair, timeframe)
            if stored is None or stored.start > needed:
                raise InvalidInputError("timerange", f"The {timeframe} candles of {pair} must start by "
                                        f"{needed:%Y-%m-%d} ({model.train_period_days} training days before the "
                                        "timerange).")  # fmt: skip
    code = strategy_code(model.strategy_name, owner=model.owner)
    assert code is not None  # _check found it
    with transaction.atomic():
        FreqaiModel.objects.select_for_update().get(pk=model.pk)
        running = _training_jobs(model)
        if running:
            raise ConflictError(f"Model {model.name!r} is training already (job {running[0]}).")
        number = (model.versions.aggregate(last=Max("version"))["last"] or 0) + 1
        parameters = {
            **values, "model_id": model.pk, "version": number, "identifier": f"model-{model.pk}-v{number}",
            "strategy_file": f"{model.strategy_name}.py" if code.sha256 else code.source.name,
            "strategy_sha256": code.sha256, "strategy_version": code.version_id, "timerange": timerange,
            "stake_currency": "USDT", "stake_amount": 100.0, "dry_run_wallet": 1000.0, "max_open_trades": 3,
            "timeframe_detail": "", "enable_protections": False, "fee": None,
        }  # fmt: skip
        job = job_create(actor=actor, owner=model.owner, kind=JobKind.FREQAI_TRAINING, parameters=parameters,
                         strategy=code)  # fmt: skip
        version = FreqaiModelVersion.objects.create(model=model, version=number, job=job)
    return job, version


def training_version_finish(*, job: Job) -> None:
    """Called in the transaction that ends a training job: its version is ready when the job completed and
    its artifacts are in place (their manifest is written last); else it keeps the job's end."""
    version = FreqaiModelVersion.objects.filter(job=job).first()
    if version is None or job.status != JobStatus.COMPLETED:
        return
    placed = (job.results or {}).get("artifacts") or {}
    target = Path(settings.HOME) / placed.get("dir", "-")
    if not placed or not (target / "manifest.json").is_file():
        return
    version.artifacts_dir, version.files, version.pairs = placed["dir"], placed["files"], placed["pairs"]
    version.windows, version.metrics = placed["windows"], job.results.get("metrics")
    if job.started_at and job.finished_at:
        version.training_seconds = (job.finished_at - job.started_at).total_seconds()
    version.ready_at = timezone.now()
    version.save()

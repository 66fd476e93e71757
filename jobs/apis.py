"""/api/v1/jobs/ (every kind of job) and /api/v1/strategies/backtest (backtests and their results)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import AuditLog
from audit.resources import Kind
from audit.services import Actor
from bots.selectors import bot_list
from jobs import services
from jobs.commands import JobKind, JobStatus
from jobs.models import Job
from jobs.selectors import job_get, job_list
from jobs.serializers import BacktestInput, CompareQuery, HyperoptInput, JobListQuery, JobSerializer, PageQuery
from multibot.errors import InvalidInputError, QueryValidationError
from multibot.openapi import ErrorOutput
from strategies.apis import VersionOutput
from strategies.selectors import hyperoptable_strategy_names

_JOB_PAGE = inline_serializer("JobPage", {
    "jobs": JobSerializer(many=True), "total": serializers.IntegerField(), "page": serializers.IntegerField(),
    "per_page": serializers.IntegerField(),
})  # fmt: skip
_JOB_LOGS = inline_serializer("JobLogs", {"job_id": serializers.IntegerField(), "status": serializers.CharField(),
                                          "logs": serializers.ListField(child=serializers.CharField())})  # fmt: skip
_CANCELLED = inline_serializer("JobCancelled", {"status": serializers.CharField(), "job": JobSerializer()})
_STARTED = inline_serializer("BacktestStarted", {"status": serializers.CharField(), "task_id": serializers.CharField(),
                                                 "strategy_name": serializers.CharField()})  # fmt: skip
_APPLIED = inline_serializer("HyperoptApplied", {
    "status": serializers.CharField(help_text="'applied', or 'unchanged' when that version was already stored."),
    "task_id": serializers.CharField(), "strategy_name": serializers.CharField(),
    "new_version": serializers.BooleanField(),
    "sha256": serializers.CharField(help_text="The code's sha256: the version bots now start with."),
    "version": VersionOutput(),
    "parameters": serializers.JSONField(help_text="freqtrade's parameter file stored with the version."),
})  # fmt: skip
_NAMES = OpenApiResponse({"type": "array", "items": {"type": "string"}}, description="Strategy class names.")
_NOT_APPLICABLE = OpenApiResponse(ErrorOutput, description="The job is not a completed hyperopt with parameters, "
                                  "or its strategy is a built-in (never changed) or no longer stored.")  # fmt: skip


def _query(serializer_class: type, request: Request) -> dict[str, Any]:
    query = serializer_class(data=request.query_params)
    if not query.is_valid():
        raise QueryValidationError(query.errors)
    return query.validated_data


class JobListApi(APIView):
    """GET /jobs/?kind=&status=&page=&per_page=: the caller's jobs (every job for a superuser), newest first."""

    @extend_schema(operation_id="jobs_list", parameters=[JobListQuery], responses=_JOB_PAGE)
    def get(self, request: Request) -> Response:
        query = _query(JobListQuery, request)
        jobs = job_list(user=request.user, kind=query.get("kind"), status=query.get("status"))
        page, per_page = query["page"], query["per_page"]
        offset = (page - 1) * per_page
        items = JobSerializer(jobs.select_related("owner")[offset : offset + per_page], many=True).data
        return Response({"jobs": items, "total": jobs.count(), "page": page, "per_page": per_page})


class JobDetailApi(APIView):
    @extend_schema(responses=JobSerializer)
    def get(self, request: Request, pk: str) -> Response:
        return Response(JobSerializer(job_get(user=request.user, job_id=pk)).data)


class JobLogsApi(APIView):
    """GET /jobs/{id}/logs: the last lines of the job's freqtrade output (kept while it runs)."""

    @extend_schema(responses=_JOB_LOGS)
    def get(self, request: Request, pk: str) -> Response:
        job = job_get(user=request.user, job_id=pk)
        lines = job.log_tail.splitlines() if job.log_tail else []
        return Response({"job_id": job.pk, "status": job.status, "logs": lines})


class JobCancelApi(APIView):
    """POST /jobs/{id}/cancel: a queued job never starts; a running one is ended by its worker."""

    audit_action = AuditLog.Action.JOB_CANCEL
    audit_resource = Kind.JOB

    @extend_schema(request=None, responses={202: _CANCELLED})
    def post(self, request: Request, pk: str) -> Response:
        job = services.job_cancel(actor=Actor.from_request(request), job=job_get(user=request.user, job_id=pk))
        answer = "cancelled" if job.status == JobStatus.CANCELLED else "cancel_requested"
        return Response({"status": answer, "job": JobSerializer(job).data}, status=202)


class BacktestStartApi(APIView):
    """POST /strategies/backtest: a backtest job, queued; refused (422) when it could not run."""

    audit_action = AuditLog.Action.JOB_CREATE
    audit_resource = Kind.JOB

    @extend_schema(request=BacktestInput, responses={202: _STARTED})
    def post(self, request: Request) -> Response:
        given = BacktestInput(data=request.data)
        given.is_valid(raise_exception=True)
        data = dict(given.validated_data)
        bot_id = data.pop("bot_id", None)
        if bot_id is not None:
            bot = bot_list(user=request.user).filter(pk=bot_id).first()
            if bot is None:
                raise InvalidInputError("bot_id", f"You have no bot {bot_id}.")
            data.setdefault("pairs", list(bot.pair_whitelist))
            data.setdefault("stake_currency", bot.stake_currency)
            if bot.stake_amount is not None:
                data.setdefault("stake_amount", float(bot.stake_amount))
        job = services.backtest_create(actor=Actor.from_request(request), owner=request.user, **data)
        return Response({"status": "backtest_started", "task_id": job.task_id,
                         "strategy_name": job.parameters["strategy_name"]}, status=202)  # fmt: skip


def backtest_view(job: Job, *, page: int, per_page: int) -> dict[str, Any]:
    """A backtest job as the API shows it: its state, and once completed freqtrade's figures and trades."""
    results = job.results or {}
    trades = results.get("trades") or []
    offset = (page - 1) * per_page
    return {
        "task_id": job.task_id, "status": job.status, "progress": job.progress, "step": job.step,
        "strategy_name": job.parameters.get("strategy_name"), "parameters": job.parameters,
        "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
        "attempt": job.attempt, "error": job.error,
        "summary": results.get("summary"), "results_per_pair": results.get("results_per_pair"),
        "exit_reason_summary": results.get("exit_reason_summary"), "equity_curve": results.get("equity_curve"),
        "trades": {"items": trades[offset : offset + per_page], "total": len(trades), "page": page,
                   "per_page": per_page},
    }  # fmt: skip


class BacktestResultApi(APIView):
    """GET /strategies/backtest/{task_id}?page=&per_page=: status, progress, and the results (trades paginated)."""

    @extend_schema(parameters=[PageQuery], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, task_id: str) -> Response:
        query = _query(PageQuery, request)
        job = job_get(user=request.user, job_id=task_id, kind=JobKind.BACKTEST)
        return Response(backtest_view(job, page=query["page"], per_page=query["per_page"]))


class BacktestCompareApi(APIView):
    """GET /strategies/backtest/compare?ids=1,2: the summaries of the caller's backtests side by side."""

    @extend_schema(parameters=[CompareQuery], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        ids = [int(item) for item in _query(CompareQuery, request)["ids"].split(",")]
        found = {job.pk: job for job in job_list(user=request.user, kind=JobKind.BACKTEST).filter(pk__in=ids)}
        backtests = [
            {"task_id": str(job_id), "found": job_id in found} | (
                {"status": found[job_id].status, "strategy_name": found[job_id].parameters.get("strategy_name"),
                 "parameters": found[job_id].parameters,
                 "summary": (found[job_id].results or {}).get("summary")} if job_id in found else {})
            for job_id in ids
        ]  # fmt: skip
        return Response({"backtests": backtests, "total": len(backtests)})


class HyperoptLossesApi(APIView):
    """GET /hyperopt/losses: freqtrade's own loss functions, by the names ``loss`` takes."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        from freqtrade.constants import HYPEROPT_LOSS_BUILTIN

        return Response({"losses": list(HYPEROPT_LOSS_BUILTIN), "default": "SharpeHyperOptLoss"})


class HyperoptStartApi(APIView):
    """POST /hyperopt/start: a hyperopt job, queued; refused (422) when it could not run."""

    audit_action = AuditLog.Action.JOB_CREATE
    audit_resource = Kind.JOB

    @extend_schema(request=HyperoptInput, responses={202: _STARTED})
    def post(self, request: Request) -> Response:
        given = HyperoptInput(data=request.data)
        given.is_valid(raise_exception=True)
        job = services.hyperopt_create(actor=Actor.from_request(request), owner=request.user, **given.validated_data)
        return Response({"status": "optimization_started", "task_id": job.task_id,
                         "strategy_name": job.parameters["strategy_name"]}, status=202)  # fmt: skip


class HyperoptResultApi(APIView):
    """GET /hyperopt/results/{task_id}?page=&per_page=: status, epochs done of the total, the best so far, and
    the epochs lowest loss first (paginated), all from freqtrade's results file."""

    @extend_schema(parameters=[PageQuery], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, task_id: str) -> Response:
        query = _query(PageQuery, request)
        job = job_get(user=request.user, job_id=task_id, kind=JobKind.HYPEROPT)
        results = job.results or {}
        epochs = results.get("epochs") or []
        page, per_page = query["page"], query["per_page"]
        offset = (page - 1) * per_page
        return Response({
            "task_id": job.task_id, "status": job.status, "progress": job.progress, "step": job.step,
            "strategy_name": job.parameters.get("strategy_name"), "parameters": job.parameters,
            "epochs_done": results.get("epochs_done", 0), "epochs_total": job.parameters.get("epochs"),
            "best_result": results.get("best_result"), "error": job.error, "attempt": job.attempt,
            "epochs": {"items": epochs[offset : offset + per_page], "total": len(epochs), "page": page,
                       "per_page": per_page},
            "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
        })  # fmt: skip


class HyperoptStrategiesApi(APIView):
    """GET /hyperopt/strategies: the names the caller may run that have hyperoptable parameters."""

    @extend_schema(responses={200: _NAMES})
    def get(self, request: Request) -> Response:
        return Response(hyperoptable_strategy_names(user=request.user))


class HyperoptApplyApi(APIView):
    """POST /hyperopt/results/{task_id}/apply: the best parameters of a completed hyperopt stored as a new
    version of its strategy (freqtrade's parameter file), the one bots start with. 409 when the job is
    not completed, or its strategy is a built-in (built-ins are never changed)."""

    audit_action = AuditLog.Action.HYPEROPT_APPLY
    audit_resource = Kind.JOB

    @extend_schema(request=None, responses={200: _APPLIED, 201: _APPLIED, 409: _NOT_APPLICABLE})
    def post(self, request: Request, task_id: str) -> Response:
        job = job_get(user=request.user, job_id=task_id, kind=JobKind.HYPEROPT)
        version, created = services.hyperopt_apply(actor=Actor.from_request(request), job=job)
        return Response({
            "status": "applied" if created else "unchanged", "task_id": job.task_id,
            "strategy_name": version.strategy.name, "new_version": created, "sha256": version.sha256,
            "version": VersionOutput(version).data, "parameters": version.parameters,
        }, status=201 if created else 200)  # fmt: skip

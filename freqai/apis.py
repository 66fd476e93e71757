"""/api/v1/freqai/: FreqAI models (CRUD), their training (a job), their status, their predictions from the
model cache, and the cache's statistics."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import AuditLog
from audit.resources import Kind
from audit.services import Actor
from bots.selectors import bot_list
from freqai import cache, services
from freqai.selectors import freqai_model_get, freqai_model_list
from freqai.serializers import ModelInput, ModelSerializer, ModelUpdateInput, TrainInput, status_document
from multibot.errors import InvalidInputError, QueryValidationError
from multibot.openapi import ErrorOutput

_STARTED = inline_serializer("TrainingStarted", {"status": serializers.CharField(), "task_id": serializers.CharField(),
                                                 "model_id": serializers.IntegerField(),
                                                 "version": serializers.IntegerField()})  # fmt: skip


def _bot(request: Request, data: dict[str, Any]) -> dict[str, Any]:
    """``bot_id`` as the caller's bot (``bot``); another user's bot is no bot of theirs."""
    if "bot_id" not in data:
        return data
    bot_id = data.pop("bot_id")
    bot = None if bot_id is None else bot_list(user=request.user).filter(pk=bot_id).first()
    if bot_id is not None and bot is None:
        raise InvalidInputError("bot_id", f"You have no bot {bot_id}.")
    return {**data, "bot": bot}


class ModelListApi(APIView):
    audit_action = AuditLog.Action.FREQAI_MODEL_CREATE
    audit_resource = Kind.FREQAI_MODEL

    @extend_schema(operation_id="freqai_models_list", responses=ModelSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(ModelSerializer(freqai_model_list(user=request.user).select_related("owner"), many=True).data)

    @extend_schema(request=ModelInput, responses={201: ModelSerializer})
    def post(self, request: Request) -> Response:
        given = ModelInput(data=request.data)
        given.is_valid(raise_exception=True)
        data = _bot(request, dict(given.validated_data))
        model = services.freqai_model_create(actor=Actor.from_request(request), owner=request.user, **data)
        return Response(ModelSerializer(freqai_model_get(user=request.user, model_id=model.pk)).data, status=201)


class ModelDetailApi(APIView):
    audit_resource = Kind.FREQAI_MODEL

    @extend_schema(responses=ModelSerializer)
    def get(self, request: Request, pk: str) -> Response:
        return Response(ModelSerializer(freqai_model_get(user=request.user, model_id=pk)).data)

    @extend_schema(request=ModelUpdateInput, responses=ModelSerializer)
    def patch(self, request: Request, pk: str) -> Response:
        model = freqai_model_get(user=request.user, model_id=pk)
        given = ModelUpdateInput(data=request.data, partial=True)
        given.is_valid(raise_exception=True)
        data = _bot(request, dict(given.validated_data))
        services.freqai_model_update(actor=Actor.from_request(request), model=model, **data)
        return Response(ModelSerializer(freqai_model_get(user=request.user, model_id=pk)).data)

    put = patch

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        services.freqai_model_delete(actor=Actor.from_request(request),
                                     model=freqai_model_get(user=request.user, model_id=pk))  # fmt: skip
        return Response(status=204)


class ModelTrainApi(APIView):
    """POST /freqai/models/{id}/train: the model's next version, trained by a job (freqtrade --freqaimodel)."""

    audit_action = AuditLog.Action.JOB_CREATE
    audit_resource = Kind.FREQAI_MODEL

    @extend_schema(request=TrainInput, responses={202: _STARTED})
    def post(self, request: Request, pk: str) -> Response:
        model = freqai_model_get(user=request.user, model_id=pk)
        given = TrainInput(data=request.data)
        given.is_valid(raise_exception=True)
        job, version = services.freqai_model_train(actor=Actor.from_request(request), model=model,
                                                   timerange=given.validated_data.get("timerange"))  # fmt: skip
        return Response({"status": "training_started", "task_id": job.task_id, "model_id": model.pk,
                         "version": version.version}, status=202)  # fmt: skip


class ModelStatusApi(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: str) -> Response:
        return Response(status_document(freqai_model_get(user=request.user, model_id=pk)))


_PREDICTION = inline_serializer("ModelPrediction", {
    "status": serializers.CharField(), "model_id": serializers.IntegerField(),
    "model_version": serializers.IntegerField(), "model_path": serializers.CharField(),
    "predictions": inline_serializer("ModelPredictionValues", {
        "prediction": serializers.FloatField(allow_null=True), "labels": serializers.DictField(),
        "confidence": serializers.FloatField(allow_null=True), "do_predict": serializers.IntegerField(),
        "DI_value": serializers.FloatField(allow_null=True), "features_used": serializers.IntegerField(),
        "candle": serializers.DateTimeField()}),
    "parameters": serializers.DictField(), "cache": serializers.ChoiceField(choices=["hit", "miss"]),
    "timings": inline_serializer("ModelPredictionTimings", {"load_seconds": serializers.FloatField(),
                                                            "predict_seconds": serializers.FloatField()}),
})  # fmt: skip
_CACHE_STATS = inline_serializer("ModelCacheStats", {
    "cached_models": serializers.IntegerField(), "max_cache_size": serializers.IntegerField(),
    "cache_hit_rate": serializers.FloatField(help_text="Hits as a percentage of the predictions asked."),
    "oldest_access": serializers.DateTimeField(allow_null=True),
    "newest_access": serializers.DateTimeField(allow_null=True), "total_evictions": serializers.IntegerField(),
    "hits": serializers.IntegerField(), "misses": serializers.IntegerField(help_text="Real loads of a model."),
    "since": serializers.DateTimeField(allow_null=True, help_text="When the counters started: the predictor's start."),
    "running": serializers.BooleanField(), "restarts": serializers.IntegerField(), "walls": serializers.DictField(),
    "predictor_started_at": serializers.DateTimeField(allow_null=True),
    "predictors": serializers.IntegerField(required=False, help_text="A superuser's: the live predictors summed."),
})  # fmt: skip


class PredictionQuery(serializers.Serializer):
    pair = serializers.CharField(max_length=40, required=False)
    timeframe = serializers.CharField(max_length=8, required=False)


class ModelPredictionsApi(APIView):
    """GET /freqai/models/{id}/predictions: the newest trained version applied to the latest stored candles."""

    @extend_schema(
        operation_id="freqai_models_predictions", parameters=[
            OpenApiParameter("pair", str, description="A pair the version was trained for (default: its first)."),
            OpenApiParameter("timeframe", str, description="The model's timeframe (the only one it predicts)."),
        ],
        responses={200: _PREDICTION, 409: OpenApiResponse(ErrorOutput, description="The model is not trained yet."),
                   503: OpenApiResponse(ErrorOutput, description="The predictor did not answer in time.")},
    )  # fmt: skip
    def get(self, request: Request, pk: str) -> Response:
        model = freqai_model_get(user=request.user, model_id=pk)
        given = PredictionQuery(data=request.query_params)
        if not given.is_valid():
            raise QueryValidationError(given.errors)
        return Response(cache.model_prediction(model=model, pair=given.validated_data.get("pair"),
                                               timeframe=given.validated_data.get("timeframe")))  # fmt: skip


class CacheStatsApi(APIView):
    """GET /freqai/cache/stats: the user's own predictor's cache in this web process (a superuser's: the totals
    over its live predictors); counts only, naming no model."""

    @extend_schema(operation_id="freqai_cache_stats", responses=_CACHE_STATS)
    def get(self, request: Request) -> Response:
        return Response(cache.cache_stats(user=request.user))

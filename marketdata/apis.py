"""/api/v1/data/: the stored candles, CSV uploads merged into them, and CSV downloads; and the files themselves
for workers on other hosts (/api/v1/internal/candles/<id>, signed by a host, not a user).

Market data is shared, not owned: every authenticated user lists, downloads and uploads the same
candles (the replay exchange's), unlike bots and strategies. Uploads are audited and rate limited.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import AuditLog
from audit.resources import Kind
from audit.services import Actor
from marketdata.csv_validation import CandleCsvError, CsvProblem, candles_to_csv, parse_candles_csv
from marketdata.models import CandleSet
from marketdata.selectors import candle_set_file, candle_set_frame, candle_set_get, candle_set_list
from marketdata.services import candles_save
from marketdata.storage import StorageError
from marketdata.vocabulary import TIMEFRAME_SECONDS, pair_from_input, parse_pair
from multibot.host_signature import HostSignature

logger = logging.getLogger(__name__)

# Room for the multipart framing and the pair and timeframe fields around the file itself.
_MULTIPART_SLACK = 64 * 1024


class CandleSetOutput(serializers.ModelSerializer):
    # The API document's day-only dates; start and end carry the full UTC open times.
    start_date = serializers.SerializerMethodField()
    end_date = serializers.SerializerMethodField()

    class Meta:
        model = CandleSet
        fields = [
            "pair", "timeframe", "start_date", "end_date", "records",
            "exchange", "source", "synthetic", "start", "end", "updated_at",
        ]  # fmt: skip

    def get_start_date(self, candle_set: CandleSet) -> str:
        return candle_set.start.date().isoformat()

    def get_end_date(self, candle_set: CandleSet) -> str:
        return candle_set.end.date().isoformat()


class UploadOutput(serializers.Serializer):
    status = serializers.ChoiceField(choices=["uploaded"])
    added = serializers.IntegerField(help_text="Candles that were not stored before.")
    updated = serializers.IntegerField(help_text="Stored candles the upload replaced.")
    records = serializers.IntegerField(help_text="Candles stored now.")
    data = CandleSetOutput()


class UploadInput(serializers.Serializer):
    # Empty files are refused by the CSV reader, with the same wording as every other refusal.
    file = serializers.FileField(allow_empty_file=True)
    pair = serializers.CharField(max_length=40)
    timeframe = serializers.ChoiceField(choices=list(TIMEFRAME_SECONDS))

    def validate_pair(self, value: str) -> str:
        pair = parse_pair(pair_from_input(value))
        if pair is None:
            raise serializers.ValidationError("Write a pair like 'BTC/USDT' (or 'BTC_USDT').")
        if not pair.is_spot:
            raise serializers.ValidationError("Only spot candles are stored: write the pair without ':SETTLE'.")
        return str(pair)


def _declared_length(request: Request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _refusal(problems: list[CsvProblem]) -> Response:
    """A 422 whose ``loc`` names the file, then the row (header = row 1) and column when known."""
    detail = []
    for problem in problems:
        loc: list[Any] = ["body", "file"]
        if problem.row is not None:
            loc.append(f"row {problem.row}")
        if problem.column:
            loc.append(problem.column)
        detail.append({"type": problem.type, "loc": loc, "msg": problem.message, "input": problem.input})
    return Response({"detail": detail}, status=422)


class CandleSetListApi(APIView):
    @extend_schema(responses=inline_serializer("CandleSetList", {"data": CandleSetOutput(many=True)}))
    def get(self, request: Request) -> Response:
        return Response({"data": CandleSetOutput(candle_set_list(), many=True).data})


class CandleUploadApi(APIView):
    """Multipart ``file`` (a CSV, see marketdata.csv_validation), ``pair`` and ``timeframe``; merged with the stored."""

    parser_classes = [MultiPartParser]
    body_limit = "upload"  # settings.REQUEST_LIMITS: a CSV may be larger than any other body
    rate_scopes = ("upload",)
    audit_action = AuditLog.Action.DATA_UPLOAD
    audit_resource = Kind.DATA

    @extend_schema(request={"multipart/form-data": UploadInput}, responses={201: UploadOutput})
    def post(self, request: Request) -> Response:
        max_bytes = settings.MARKETDATA["max_upload_bytes"]
        # Refuse an oversized body from its declared length, before it is read and spooled to disk.
        if _declared_length(request) > max_bytes + _MULTIPART_SLACK:
            return _refusal([CsvProblem(f"The file is larger than {max_bytes} bytes.", type="too_long")])
        given = UploadInput(data=request.data)
        given.is_valid(raise_exception=True)
        pair, timeframe = given.validated_data["pair"], given.validated_data["timeframe"]
        try:
            frame = parse_candles_csv(
                given.validated_data["file"], timeframe=timeframe,
                max_bytes=max_bytes, max_rows=settings.MARKETDATA["max_upload_rows"],
            )  # fmt: skip
        except CandleCsvError as error:
            return _refusal(error.problems)
        candle_set, changes = candles_save(
            pair=pair, timeframe=timeframe, frame=frame, source=CandleSet.Source.UPLOAD, synthetic=False,
            actor=Actor.from_request(request),
        )  # fmt: skip
        return Response({"status": "uploaded", **changes, "data": CandleSetOutput(candle_set).data}, status=201)


class CandleDownloadApi(APIView):
    """The stored candles of one pair and timeframe as CSV, in the format uploads accept; streamed."""

    @extend_schema(
        parameters=[
            OpenApiParameter("pair", str, OpenApiParameter.PATH, description="BTC_USDT, or BTC/USDT URL-encoded.",
                             examples=[OpenApiExample("underscore", value="BTC_USDT"),
                                       OpenApiExample("slash", value="BTC/USDT")]),
            OpenApiParameter("timeframe", str, OpenApiParameter.PATH, enum=list(TIMEFRAME_SECONDS)),
            OpenApiParameter("exchange", str, default="replay", description="Whose candles."),
        ],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="CSV")},
    )  # fmt: skip
    def get(self, request: Request, pair: str, timeframe: str) -> StreamingHttpResponse:
        exchange = request.query_params.get("exchange", "replay")
        candle_set = candle_set_get(pair=pair, timeframe=timeframe, exchange=exchange)
        if candle_set is None:
            raise NotFound(f"No {timeframe} candles are stored for {pair}.")
        try:
            frame = candle_set_frame(candle_set)
        except StorageError:
            logger.exception("candle set %s is listed but its file cannot be read", candle_set.pk)
            raise NotFound(f"The {timeframe} candles of {candle_set.pair} are not available.") from None
        response = StreamingHttpResponse(candles_to_csv(frame), content_type="text/csv; charset=utf-8")
        filename = f"{candle_set.pair.replace('/', '_')}-{candle_set.timeframe}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


CHECKSUM_HEADER = "X-Checksum-Sha256"


class CandleFileApi(APIView):
    """One candle set's feather file as it is stored here, for a worker on another host (marketdata.fetch).

    Signed with the hosts' shared SECRET_KEY (multibot.host_signature), not a user's token; not in the
    public API document. ``X-Checksum-Sha256`` is the row's checksum: the worker checks the bytes by it.
    """

    authentication_classes: list[type] = []
    permission_classes = [HostSignature]
    rate_scopes = ("internal",)

    @extend_schema(exclude=True)
    def get(self, request: Request, candle_set_id: int) -> FileResponse:
        candle_set = CandleSet.objects.filter(pk=candle_set_id).first()
        if candle_set is None:
            raise NotFound(f"No candle set {candle_set_id} is stored.")
        try:
            handle = candle_set_file(candle_set).open("rb")
        except FileNotFoundError:
            logger.error("candle set %s is listed but its file is missing on this host", candle_set.pk)
            raise NotFound(f"The file of the {candle_set} candles is missing on this host.") from None
        response = FileResponse(handle, content_type="application/octet-stream")
        response[CHECKSUM_HEADER] = candle_set.sha256
        return response

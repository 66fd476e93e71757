"""/api/v1/strategies/: the names a user may run, a strategy's details and versions, uploads, deletion; and a
version's code for workers on other hosts (/api/v1/internal/strategy-code/<sha256>, signed by a host, not a user).

A user sees their own strategies and the built-ins; another user's strategy is a 404. An upload is
untrusted code: strategies/services.py checks it, dry-loads it walled in, and only then stores it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.plumbing import build_array_type, build_basic_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import AuditLog
from audit.resources import Kind
from audit.services import Actor
from bots.workspace import running_strategy_version
from jobs.selectors import strategy_jobs
from multibot.errors import InvalidInputError, QueryValidationError
from multibot.host_signature import HostSignature
from strategies import selectors, services
from strategies.library import version_path
from strategies.models import Strategy, StrategyVersion

# Room for the multipart framing around the files.
_MULTIPART_SLACK = 64 * 1024


class StrategyUploadInput(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, help_text="The strategy, a .py file.")
    parameters = serializers.FileField(
        required=False, allow_empty_file=True, help_text="Optional: freqtrade's parameter file (.json) for it."
    )
    strategy_name = serializers.CharField(
        required=False, max_length=100, help_text="The class to store, when the file defines several."
    )


class VersionOutput(serializers.ModelSerializer):
    uploaded_by = serializers.SerializerMethodField()
    has_parameters = serializers.SerializerMethodField()

    class Meta:
        model = StrategyVersion
        fields = ["sha256", "size", "uploaded_by", "created_at", "timeframe", "has_parameters"]

    def get_uploaded_by(self, version: StrategyVersion) -> str | None:
        return version.uploaded_by.get_username() if version.uploaded_by else None

    def get_has_parameters(self, version: StrategyVersion) -> bool:
        return version.parameters is not None


class ParameterOutput(serializers.Serializer):
    name = serializers.CharField()
    space = serializers.CharField()
    type = serializers.CharField()
    value = serializers.JSONField(help_text="The value the strategy loads with (its default, or its parameter file's).")
    optimize = serializers.BooleanField()
    low = serializers.JSONField(required=False)
    high = serializers.JSONField(required=False)
    options = serializers.ListField(child=serializers.JSONField(), required=False)
    decimals = serializers.IntegerField(required=False)


class StrategyBotOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    strategy_version = serializers.CharField(help_text="sha256 of the version its copy is; '' when unknown.")


class StrategyJobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class StrategyDetailOutput(serializers.Serializer):
    name = serializers.CharField()
    class_name = serializers.CharField()
    builtin = serializers.BooleanField()
    timeframe = serializers.CharField(allow_null=True)
    current_version = serializers.CharField(allow_null=True)
    versions = VersionOutput(many=True)
    bots = StrategyBotOutput(many=True)
    jobs = StrategyJobOutput(many=True, help_text="The jobs (backtests, hyperopts) run with it, newest first.")
    parameters = ParameterOutput(many=True, help_text="Hyperoptable parameters with their space and range.")
    parameter_file = serializers.JSONField(allow_null=True)
    source = serializers.CharField(required=False, help_text="The current version's code, with ?source=1.")


UploadOutput = inline_serializer(
    "StrategyUploadOutput",
    {"status": serializers.CharField(), "strategy_name": serializers.CharField(),
     "new_version": serializers.BooleanField(), "version": VersionOutput()},
)  # fmt: skip


class OwnerQuery(serializers.Serializer):
    owner = serializers.CharField(required=False, max_length=150, help_text="Superusers: another user's strategy.")


class SourceQuery(OwnerQuery):
    source = serializers.BooleanField(required=False, default=False)


def _query(serializer: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    query = serializer(data=request.query_params)
    if not query.is_valid():
        raise QueryValidationError(query.errors)
    return dict(query.validated_data)


def _declared_length(request: Request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _read(upload: Any, limit: int) -> bytes:
    """At most one byte over ``limit``: enough for the size check to refuse, never the whole of a huge file."""
    return b"" if upload is None else upload.read(limit + 1)


def _detail(strategy: Strategy, *, user: Any, with_source: bool) -> dict[str, Any]:
    versions = list(selectors.strategy_versions(strategy=strategy))
    current = next((item for item in versions if item.pk == strategy.current_version_id), None)
    current = current or (versions[0] if versions else None)
    bots = [{"id": bot.pk, "name": bot.name, "status": bot.status, "strategy_version": running_strategy_version(bot.pk)}
            for bot in selectors.strategy_bots(strategy=strategy, user=user)]  # fmt: skip
    detail: dict[str, Any] = {
        "name": strategy.name, "class_name": strategy.name, "builtin": strategy.is_builtin,
        "timeframe": current.timeframe or None if current else None,
        "current_version": current.sha256 if current else None,
        "versions": VersionOutput(versions, many=True).data, "bots": bots,
        "jobs": StrategyJobOutput(strategy_jobs(name=strategy.name, owner_id=strategy.owner_id, user=user),
                                  many=True).data,
        "parameters": current.hyperopt_parameters if current else [],
        "parameter_file": current.parameters if current else None,
    }  # fmt: skip
    if with_source and current is not None:
        detail["source"] = services.strategy_source_text(version=current)
    return detail


class StrategyListApi(APIView):
    """GET /strategies/: the strategy names the caller may run (their own and the built-ins)."""

    @extend_schema(
        operation_id="strategies_list", responses={200: build_array_type(build_basic_type(OpenApiTypes.STR))}
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.strategy_names(user=request.user))


class StrategyUploadApi(APIView):
    """POST /strategies/upload: multipart ``file`` (.py), optional ``parameters`` (.json) and ``strategy_name``."""

    parser_classes = [MultiPartParser]
    body_limit = "upload"
    rate_scopes = ("upload",)
    audit_action = AuditLog.Action.STRATEGY_UPLOAD
    audit_resource = Kind.STRATEGY

    @extend_schema(
        request={"multipart/form-data": StrategyUploadInput}, responses={200: UploadOutput, 201: UploadOutput}
    )
    def post(self, request: Request) -> Response:
        conf = settings.STRATEGIES
        code_limit, parameters_limit = conf["max_upload_bytes"], conf["max_parameters_bytes"]
        # Refuse an oversized body from its declared length, before it is read and spooled to disk.
        if _declared_length(request) > code_limit + parameters_limit + _MULTIPART_SLACK:
            raise InvalidInputError("file", f"The file is larger than {code_limit} bytes.")
        given = StrategyUploadInput(data=request.data)
        given.is_valid(raise_exception=True)
        upload, parameters = given.validated_data["file"], given.validated_data.get("parameters")
        version, created = services.strategy_upload(
            actor=Actor.from_request(request), owner=request.user, filename=upload.name or "",
            data=_read(upload, code_limit),
            parameters=None if parameters is None else _read(parameters, parameters_limit),
            strategy_name=given.validated_data.get("strategy_name"),
        )  # fmt: skip
        body = {"status": "uploaded" if created else "unchanged", "strategy_name": version.strategy.name,
                "new_version": created, "version": VersionOutput(version).data}  # fmt: skip
        return Response(body, status=201 if created else 200)


class StrategyDetailApi(APIView):
    """GET /strategies/{name} (``?source=1`` adds the code); DELETE /strategies/{name}."""

    audit_action = AuditLog.Action.STRATEGY_DELETE
    audit_resource = Kind.STRATEGY

    @extend_schema(parameters=[SourceQuery], responses=StrategyDetailOutput)
    def get(self, request: Request, name: str) -> Response:
        query = _query(SourceQuery, request)
        strategy = selectors.strategy_get(user=request.user, name=name, owner=query.get("owner"))
        return Response(_detail(strategy, user=request.user, with_source=query["source"]))

    @extend_schema(parameters=[OwnerQuery], responses={204: None})
    def delete(self, request: Request, name: str) -> Response:
        query = _query(OwnerQuery, request)
        strategy = selectors.strategy_get(user=request.user, name=name, owner=query.get("owner"))
        services.strategy_delete(actor=Actor.from_request(request), strategy=strategy)
        return Response(status=204)


class StrategyCodeFileApi(APIView):
    """A stored version's code, by its sha256, for a worker on another host rebuilding a job's input
    (jobs.services.job_input_ensure). Signed with the hosts' shared SECRET_KEY; not in the API document.
    Only the files of versions the database knows are served; the worker checks the bytes by their sha256."""

    authentication_classes: list[type] = []
    permission_classes = [HostSignature]
    rate_scopes = ("internal",)

    @extend_schema(exclude=True)
    def get(self, request: Request, sha256: str) -> FileResponse:
        if not StrategyVersion.objects.filter(sha256=sha256).exists():
            raise NotFound(f"No strategy version has the code {sha256}.")
        try:
            handle = version_path(sha256).open("rb")
        except FileNotFoundError:
            raise NotFound(f"The code {sha256} is missing on this host.") from None
        response = FileResponse(handle, content_type="text/x-python")
        response["X-Checksum-Sha256"] = sha256
        return response

"""/api/v1/auth/: login (JSON and form), refresh with rotation, logout."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import AuditLog
from audit.services import Actor
from multibot.openapi import ErrorOutput
from multibot.services import auth


class LoginInput(serializers.Serializer):
    # Taken as typed: a name of control characters is a wrong name (401), not a blank one.
    username = serializers.CharField(max_length=150, trim_whitespace=False)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


class RefreshInput(serializers.Serializer):
    refresh_token = serializers.CharField(required=False)
    refresh = serializers.CharField(required=False)  # simplejwt's and freqtrade-client's name

    def validate(self, attrs: dict[str, str]) -> dict[str, str]:
        token = attrs.get("refresh_token") or attrs.get("refresh")
        if not token:
            raise serializers.ValidationError({"refresh_token": ["This field is required."]}, code="required")
        return {"token": token}


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField(help_text="An address, or empty when none is set.")  # "" is not format: email
    full_name = serializers.CharField()
    is_active = serializers.BooleanField()
    is_superuser = serializers.BooleanField()


class TokensOutput(serializers.Serializer):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    token_type = serializers.ChoiceField(choices=["bearer"])
    expires_in = serializers.IntegerField(help_text="Seconds the access token is valid.")


class LoginOutput(TokensOutput):
    user = UserOutput()


class LogoutOutput(serializers.Serializer):
    detail = serializers.CharField()


# One of the two names is required: a schema-valid body is one the view can read.
_REFRESH_REQUEST = {
    "type": "object",
    "properties": {
        "refresh_token": {"type": "string", "pattern": r"\S"},
        "refresh": {"type": "string", "pattern": r"\S", "description": "simplejwt's and freqtrade-client's name"},
    },
    "anyOf": [{"required": ["refresh_token"]}, {"required": ["refresh"]}],
}
_REFRESH_BODY = {"application/json": _REFRESH_REQUEST, "application/x-www-form-urlencoded": _REFRESH_REQUEST}
_REFRESH_REFUSED = OpenApiResponse(ErrorOutput, description="The refresh token is invalid, expired, revoked or used.")
_LOGIN_REFUSED = OpenApiResponse(ErrorOutput, description="Incorrect username or password.")
_LOCKED = OpenApiResponse(ErrorOutput, description="Too many login attempts, or the account is locked.")
_PAUSED = OpenApiResponse(ErrorOutput, description="Logins are paused: the failed-login counts (Redis) do not answer.")


class _CredentialsApi(APIView):
    """An endpoint that takes credentials in its body instead of an Authorization header."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    rate_scopes = ("login",)

    def get_authenticate_header(self, request: Request) -> str:
        # Without one, DRF turns a refused credential (AuthenticationFailed) into a 403; it is a 401.
        return 'Bearer realm="api"'


class _LoginApi(_CredentialsApi):
    audit_action = AuditLog.Action.LOGIN

    def post(self, request: Request) -> Response:
        given = LoginInput(data=request.data)
        given.is_valid(raise_exception=True)
        user, tokens = auth.login(actor=Actor.from_request(request), **given.validated_data)
        return Response({**tokens.as_response(), "user": UserOutput(user).data})


@extend_schema(request=LoginInput, responses={200: LoginOutput, 401: _LOGIN_REFUSED, 429: _LOCKED, 503: _PAUSED})
class LoginJsonApi(_LoginApi):
    parser_classes = [JSONParser]


@extend_schema(request=LoginInput, responses={200: LoginOutput, 401: _LOGIN_REFUSED, 429: _LOCKED, 503: _PAUSED})
class LoginFormApi(_LoginApi):
    parser_classes = [FormParser, MultiPartParser]


@extend_schema(request=_REFRESH_BODY, responses={200: TokensOutput, 401: _REFRESH_REFUSED})
class RefreshApi(_CredentialsApi):
    parser_classes = [JSONParser, FormParser]
    audit_action = AuditLog.Action.TOKEN_REFRESH

    def post(self, request: Request) -> Response:
        given = RefreshInput(data=request.data)
        given.is_valid(raise_exception=True)
        tokens = auth.refresh(actor=Actor.from_request(request), raw_token=given.validated_data["token"])
        return Response(tokens.as_response())


@extend_schema(
    request=_REFRESH_BODY,
    responses={
        200: LogoutOutput,
        401: OpenApiResponse(ErrorOutput, description="Not authenticated, or the refresh token is invalid."),
        403: OpenApiResponse(ErrorOutput, description="The refresh token belongs to another account."),
    },
)
class LogoutApi(APIView):
    parser_classes = [JSONParser, FormParser]
    audit_action = AuditLog.Action.LOGOUT

    def post(self, request: Request) -> Response:
        given = RefreshInput(data=request.data)
        given.is_valid(raise_exception=True)
        auth.logout(actor=Actor.from_request(request), user=request.user, raw_token=given.validated_data["token"])
        return Response({"detail": "Logged out"})

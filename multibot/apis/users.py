"""/api/v1/users/: superusers add, list and deactivate team members."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import AuditLog
from audit.resources import Kind
from audit.services import Actor
from multibot.apis.auth import UserOutput
from multibot.openapi import ValidationErrorOutput
from multibot.permissions import IsSuperuser
from multibot.services import users

User = get_user_model()


class UserInput(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]{1,150}$", max_length=150)
    password = serializers.CharField(write_only=True, trim_whitespace=False, max_length=4096)
    email = serializers.EmailField(required=False, default="")
    full_name = serializers.CharField(required=False, default="", max_length=150)
    is_superuser = serializers.BooleanField(required=False, default=False)


_SELF = OpenApiResponse(ValidationErrorOutput, description="Validation failed, or the account is your own.")


class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsSuperuser]
    serializer_class = UserOutput
    lookup_value_regex = r"\d+"
    audit_resource = Kind.USER
    audit_actions = {
        "create": AuditLog.Action.USER_CREATE,
        "activate": AuditLog.Action.USER_ACTIVATE,
        "deactivate": AuditLog.Action.USER_DEACTIVATE,
    }

    def get_queryset(self) -> QuerySet:
        return User.objects.order_by("id")

    def get_object(self):
        try:
            return self.get_queryset().get(pk=self.kwargs["pk"])
        except User.DoesNotExist:
            raise NotFound("User not found") from None

    @extend_schema(request=UserInput, responses={201: UserOutput})
    def create(self, request: Request) -> Response:
        given = UserInput(data=request.data)
        given.is_valid(raise_exception=True)
        user = users.user_create(actor=Actor.from_request(request), **given.validated_data)
        return Response(UserOutput(user).data, status=201)

    @extend_schema(request=None, responses={200: UserOutput, 422: _SELF})
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: str) -> Response:
        user = users.user_deactivate(actor=Actor.from_request(request), user=self.get_object())
        return Response(UserOutput(user).data)

    @extend_schema(request=None, responses={200: UserOutput})
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str) -> Response:
        user = users.user_activate(actor=Actor.from_request(request), user=self.get_object())
        return Response(UserOutput(user).data)

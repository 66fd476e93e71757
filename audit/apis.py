"""GET /api/v1/audit/: the audit log, filtered and paginated as the API document shows."""

from __future__ import annotations

from datetime import UTC, date, datetime

import django_filters
from django import forms
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import AuditLog
from audit.selectors import audit_log_list
from multibot.errors import QueryValidationError


def _date_bound(value: str, name: str) -> date | datetime:
    """A filter bound: a bare date (the whole day) or an ISO date/time."""
    try:
        if len(value) == 10:
            return forms.DateField(input_formats=["%Y-%m-%d"]).clean(value)
        # In UTC: PostgreSQL refuses offsets beyond 15:59 that ISO 8601 (and Python) allow.
        return forms.DateTimeField().clean(value).astimezone(UTC)
    except (forms.ValidationError, OverflowError) as exc:  # OverflowError: before year 1 or after 9999 in UTC
        raise QueryValidationError({name: ["Enter a date (YYYY-MM-DD) or an ISO 8601 date/time."]}) from exc


class AuditLogFilter(django_filters.FilterSet):
    user = django_filters.CharFilter(field_name="username")
    # Any name, not only AuditLog.Action: rows are kept forever, so names since retired stay findable.
    action = django_filters.CharFilter(field_name="action")
    status = django_filters.ChoiceFilter(field_name="status", choices=AuditLog.Status.choices)
    resource = django_filters.CharFilter(field_name="resource")
    start_date = django_filters.CharFilter(method="filter_start_date")
    end_date = django_filters.CharFilter(method="filter_end_date")

    class Meta:
        model = AuditLog
        fields: list[str] = []

    def filter_start_date(self, queryset: QuerySet[AuditLog], name: str, value: str) -> QuerySet[AuditLog]:
        bound = _date_bound(value, name)
        if isinstance(bound, datetime):
            return queryset.filter(timestamp__gte=bound)
        return queryset.filter(timestamp__date__gte=bound)

    def filter_end_date(self, queryset: QuerySet[AuditLog], name: str, value: str) -> QuerySet[AuditLog]:
        # A bare date means the whole day: end_date=2025-12-31 includes 23:59 on the 31st.
        bound = _date_bound(value, name)
        if isinstance(bound, datetime):
            return queryset.filter(timestamp__lte=bound)
        return queryset.filter(timestamp__date__lte=bound)


class AuditLogSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="username")

    class Meta:
        model = AuditLog
        fields = ["id", "timestamp", "user", "action", "resource", "ip_address", "status", "details"]


class PageQuery(serializers.Serializer):
    # The largest integer a JSON client holds exactly; times per_page, an offset still within 64 bits.
    page = serializers.IntegerField(min_value=1, max_value=2**53 - 1, default=1)
    per_page = serializers.IntegerField(min_value=1, max_value=500, default=50)


class AuditLogPageOutput(serializers.Serializer):
    logs = AuditLogSerializer(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    per_page = serializers.IntegerField()


_DATE_BOUND = "A date (YYYY-MM-DD: the whole day) or an ISO 8601 date/time."
_DATE_BOUND_SCHEMA = {"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}, {"maxLength": 0}]}


@extend_schema(
    parameters=[
        PageQuery,
        # An empty value is no filter at all.
        OpenApiParameter("user", str, description="Username."),
        OpenApiParameter("action", str, description="An audit action, like bot_start."),
        OpenApiParameter("status", str, enum=["", *AuditLog.Status.values]),
        OpenApiParameter("resource", str, description="Like bot:7."),
        OpenApiParameter("start_date", _DATE_BOUND_SCHEMA, description=_DATE_BOUND),
        OpenApiParameter("end_date", _DATE_BOUND_SCHEMA, description=_DATE_BOUND),
    ],
    responses=AuditLogPageOutput,
)
class AuditLogApi(APIView):
    def get(self, request: Request) -> Response:
        paging = PageQuery(data=request.query_params)
        if not paging.is_valid():
            raise QueryValidationError(paging.errors)
        filterset = AuditLogFilter(request.query_params, queryset=audit_log_list(user=request.user))
        if not filterset.is_valid():
            raise QueryValidationError(filterset.errors)
        entries = filterset.qs
        page, per_page = paging.validated_data["page"], paging.validated_data["per_page"]
        offset = (page - 1) * per_page
        logs = AuditLogSerializer(entries[offset : offset + per_page], many=True).data
        return Response({"logs": logs, "total": entries.count(), "page": page, "per_page": per_page})

"""/api/v1/ws/ticket: a single-use ticket for clients that cannot send a token in a WebSocket subprotocol."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import AuditLog
from audit.resources import Kind
from audit.services import Actor
from multibot.openapi import ErrorOutput
from realtime import services


class TicketOutput(serializers.Serializer):
    ticket = serializers.CharField(
        help_text='Opens one socket, offered as the subprotocol "ticket.<t>" (never in the URL).'
    )
    expires_in = serializers.IntegerField(help_text="Seconds the ticket stays valid if unused.")


class WsTicketApi(APIView):
    """POST /ws/ticket: a ticket for one WebSocket handshake as the caller, valid for a few seconds."""

    audit_action = AuditLog.Action.WS_TICKET
    audit_resource = Kind.USER

    @extend_schema(
        request=None,
        responses={201: TicketOutput, 503: OpenApiResponse(ErrorOutput, description="Redis is unreachable.")},
    )
    def post(self, request: Request) -> Response:
        ticket = services.ws_ticket_issue(actor=Actor.from_request(request))
        return Response({"ticket": ticket.ticket, "expires_in": ticket.expires_in}, status=201)

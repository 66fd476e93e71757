"""The OpenAPI schema's shared parts: the error shapes of multibot.errors, defined once, and added to
every operation that can answer them; HTTP Basic on the views that accept it; one path per operation.

A view documents its own successes and the refusals only it knows about (a 409, a 503); what every
view of a kind can answer is added here from what the view is: authenticated (401), superusers only
(403), a path parameter (404), a request body (400, 413, 415, 422), query parameters (422), and
the rate limit in front of everything (429, with Retry-After).
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
from django.core.validators import RegexValidator
from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import permissions, serializers
from rest_framework.settings import api_settings

from multibot.permissions import IsSuperuser

# A character that is not whitespace as Python's str.strip() sees it (DRF trims with it).
_NOT_BLANK = r"[^\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


@extend_schema_field({"anyOf": [{"type": "string"}, {"type": "integer"}]})
class _LocationPart(serializers.Field):
    """A part of an error's ``loc``: a field name, or the index of a list item."""


class ErrorOutput(serializers.Serializer):
    detail = serializers.CharField(help_text="One human sentence.")

    class Meta:
        ref_name = "Error"


class FieldErrorOutput(serializers.Serializer):
    type = serializers.CharField(help_text="What is wrong: missing, value_error, json_invalid, too_long, ...")
    loc = serializers.ListField(child=_LocationPart(), help_text='Where: ["body", field, ...] or ["query", name].')
    msg = serializers.CharField()
    input = serializers.JSONField(allow_null=True, help_text="The value sent (shortened, or masked if a secret).")

    class Meta:
        ref_name = "FieldError"


class ValidationErrorOutput(serializers.Serializer):
    detail = FieldErrorOutput(many=True)

    class Meta:
        ref_name = "ValidationError"


# A body that cannot be read is refused either way: a parse error lists where, other refusals say why.
BAD_REQUEST = PolymorphicProxySerializer(
    component_name="BadRequest", serializers=[ValidationErrorOutput, ErrorOutput], resource_type_field_name=None
)

_COMMON_ERRORS = {
    "400": (BAD_REQUEST, "The body cannot be parsed or is malformed."),
    "401": (ErrorOutput, "Not authenticated, or the credentials are invalid or expired."),
    "403": (ErrorOutput, "Authenticated, but not allowed to do this."),
    "404": (ErrorOutput, "No such resource, or it belongs to another user."),
    "413": (BAD_REQUEST, "The body is too large, too deeply nested, or has too many fields."),
    "415": (ErrorOutput, "The body's Content-Type is not one this operation reads."),
    "422": (ValidationErrorOutput, "Validation failed: each entry names a field and what is wrong with it."),
    "429": (ErrorOutput, "Rate limit exceeded, or the account is locked after failed logins."),
}
BIGINT_MAX = 2**63 - 1  # ids are 64-bit
RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 0},
        "required": True,
        "description": "Seconds to wait before trying again.",
    }
}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, plus the error responses each operation can answer by what its view is."""

    def get_operation(self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any) -> Any:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for code in self._common_error_codes(operation):
            if code not in responses:
                serializer, description = _COMMON_ERRORS[code]
                responses[code] = self._get_response_for_code(serializer, code)
                responses[code]["description"] = description
        if "429" in responses:
            responses["429"].setdefault("headers", {}).update(RETRY_AFTER)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def map_parsers(self) -> list[str]:
        # The API speaks JSON. DRF's default parsers also read forms, which keep working, but a view
        # promises them only when it chose its parsers itself (form login, multipart uploads).
        if list(self.view.parser_classes) == list(api_settings.DEFAULT_PARSER_CLASSES):
            return ["application/json"]
        return super().map_parsers()

    def _get_request_for_media_type(self, serializer: Any, direction: str = "request") -> tuple[Any, bool]:
        schema, required = super()._get_request_for_media_type(serializer, direction)
        if isinstance(serializer, dict):
            # A hand-written schema: the body is required when an empty one would not do.
            required = not jsonschema.Draft4Validator(serializer).is_valid({})
        return schema, required

    def _map_serializer_field(self, field: Any, direction: str, bypass_extensions: bool = False) -> dict[str, Any]:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        # DRF trims text (Python's whitespace) before checking it is not blank: "  " is as blank as "", say so.
        # Spelled out, not \S: a client's regex engine (ECMAScript's) has a narrower whitespace than Python's.
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and field.trim_whitespace
            and not field.allow_blank
            and schema.get("type") == "string"
            and "format" not in schema
            and not any(isinstance(validator, RegexValidator) for validator in field.validators)
        ):
            schema["pattern"] = _NOT_BLANK
        if direction == "request" and isinstance(field, serializers.ListField) and not field.allow_empty:
            schema.setdefault("minItems", 1)
        return schema

    def _resolve_path_parameters(self, variables: list[str]) -> list[dict[str, Any]]:
        parameters = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            # The router's lookup_value_regex \d+ is an id: an integer to a client, not a string.
            if parameter["schema"] == {"type": "string", "pattern": r"^\d+$"}:
                parameter["schema"] = {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX}
        return parameters

    def _common_error_codes(self, operation: dict[str, Any]) -> list[str]:
        codes = ["429"]
        perms = self.view.get_permissions()
        if not any(isinstance(perm, permissions.AllowAny) for perm in perms):
            codes.append("401")
        if any(isinstance(perm, (permissions.IsAdminUser, IsSuperuser)) for perm in perms):
            codes.append("403")
        if "{" in self.path:
            codes.append("404")
        if "requestBody" in operation:
            codes += ["400", "413", "415", "422"]
        if any(parameter.get("in") == "query" for parameter in operation.get("parameters", [])):
            codes.append("422")
        return codes


class BasicScheme(OpenApiAuthenticationExtension):
    """HTTP Basic with a Multibot user's password (multibot.authentication), where a view accepts it."""

    target_class = "multibot.authentication.BasicAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "basic"}


def one_path_per_operation(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """Drop ``audit`` when ``audit/`` serves the same view: both URLs answer, the schema names one."""
    served = {(path, method, _view_of(callback)) for path, _, method, callback in endpoints}
    return [
        (path, path_regex, method, callback)
        for path, path_regex, method, callback in endpoints
        if path.endswith("/") or (path + "/", method, _view_of(callback)) not in served
    ]


def _view_of(callback: Any) -> Any:
    return getattr(callback, "cls", None) or getattr(callback, "view_class", None) or callback


def link_created_resources(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A create (``POST /bots/`` answering 201 with an id) links to each operation on what it made
    (``/bots/{id}/...``), so that clients and test tools can follow from one to the other."""
    paths, schemas = result["paths"], result.get("components", {}).get("schemas", {})
    for path, item in paths.items():
        created = item.get("post", {}).get("responses", {}).get("201", {})
        ref = created.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
        if "id" not in schemas.get(ref.rpartition("/")[2], {}).get("properties", {}):
            continue
        links = {}
        for other_path, other_item in paths.items():
            variable = re.match(re.escape(path) + r"\{(\w+)\}", other_path)
            if variable is None:
                continue
            for operation in other_item.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    links[operation["operationId"]] = {
                        "operationId": operation["operationId"],
                        "parameters": {variable[1]: "$response.body#/id"},
                    }
        if links:
            created["links"] = links
    return result

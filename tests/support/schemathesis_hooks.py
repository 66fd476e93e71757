"""schemathesis hooks for tests/test_schemathesis.py (loaded through tests/schemathesis.toml).

DRF reads input as leniently as form values, in ways schemathesis counts as "schema-violating data
accepted": JSON scalars are coerced (``1`` or ``"true"`` for a boolean, ``5`` for a string, ``"5"``
or ``5.0`` for an integer), a repeated query parameter is read as its last value, and an optional
one sent empty (``?per_page=``) as not sent. A failure that is only that is dropped here
(schemathesis's summary counts them as dropped); anything else fails the run as usual.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import schemathesis
from schemathesis.core.failures import AcceptedNegativeData

# rest_framework.fields.BooleanField.TRUE_VALUES / FALSE_VALUES, without importing Django here
# (True == 1 and False == 0 == 0.0 in a set).
_TRUE = {"t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "1", 1}
_FALSE = {"f", "F", "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "0", 0}
_INTEGRAL = re.compile(r"^\s*[-+]?\d+(\.0*)?\s*$")


def as_drf_reads_it(value: Any, schema: dict[str, Any]) -> Any:
    """The value as DRF's field for this JSON Schema type turns it into, or the value unchanged."""
    kind = schema.get("type")
    scalar = isinstance(value, (str, int, float)) and not isinstance(value, bool)
    if kind == "boolean" and (isinstance(value, bool) or scalar):
        return True if value in _TRUE else False if value in _FALSE else value
    if kind == "string" and scalar and not isinstance(value, str):
        return str(value)
    if kind == "integer" and scalar:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGRAL.match(value):
            return int(value.strip().split(".")[0])
    if kind == "number" and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if kind == "array" and isinstance(value, list):
        return [as_drf_reads_it(item, schema.get("items") or {}) for item in value]
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        properties = schema["properties"]
        return {key: as_drf_reads_it(item, properties.get(key) or {}) for key, item in value.items()}
    return value


def _mutated(case: Any) -> set[tuple[str | None, str | None]]:
    """(location, parameter) of each mutation that made this case negative."""
    data = getattr(getattr(case.meta, "phase", None), "data", None)
    mutated = {(getattr(m.parameter_location, "value", None), m.parameter) for m in getattr(data, "mutations", ())}
    if not mutated and getattr(data, "parameter", None):
        mutated = {(getattr(data.parameter_location, "value", None), data.parameter)}
    return mutated


def query_read_validly(case: Any, url: str) -> bool:
    """Whether every mutated query parameter, read from the URL sent as DRF reads it, is valid (or absent).

    DRF takes the last of repeated values, and an optional parameter sent empty as not sent.
    """
    mutated = _mutated(case)
    parameters = {p["name"]: p for p in case.operation.definition.raw.get("parameters", []) if p.get("in") == "query"}
    if not mutated or any(where != "query" or name not in parameters for where, name in mutated):
        return False
    sent = parse_qs(urlsplit(url).query, keep_blank_values=True)
    for _, name in mutated:
        value = sent.get(name, [""])[-1]
        parameter = parameters[name]
        if value == "" and not parameter.get("required"):
            continue
        schema = parameter.get("schema") or {}
        if "$ref" in json.dumps(schema):
            return False  # not resolved here: keep the failure
        if not jsonschema.Draft4Validator(schema).is_valid(as_drf_reads_it(value, schema)):
            return False
    return True


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if not isinstance(failure, AcceptedNegativeData):
        return True
    if query_read_validly(case, response.request.url):
        return False
    if not isinstance(case.body, (dict, list)):
        return True
    body = case.operation.get_body_for_media_type(case.media_type) if case.media_type else None
    if body is None:
        return True
    read = as_drf_reads_it(case.body, body.optimized_schema)
    # Keep the failure unless the body DRF actually saw is one the schema allows (json: False != 0).
    return json.dumps(read, sort_keys=True) == json.dumps(case.body, sort_keys=True) or not body.is_valid(read)

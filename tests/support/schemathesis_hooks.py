"""schemathesis hooks for tests/test_schemathesis.py (loaded through tests/schemathesis.toml).

DRF reads JSON scalars as leniently as form values: ``1`` or ``"true"`` for a boolean, ``5`` for a
string, ``"5"`` or ``5.0`` for an integer. A "schema-violating" body that is valid once read that
way was not invalid data accepted by mistake, so that one failure is dropped here (and counted in
schemathesis's summary as dropped). Anything else fails the run as usual.
"""

from __future__ import annotations

import json
import re
from typing import Any

import schemathesis
from schemathesis.core.failures import AcceptedNegativeData

# rest_framework.fields.BooleanField.TRUE_VALUES / FALSE_VALUES, without importing Django here.
_TRUE = {"t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "1", 1, True}
_FALSE = {"f", "F", "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "0", 0, 0.0, False}
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


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if not isinstance(failure, AcceptedNegativeData) or not isinstance(case.body, (dict, list)):
        return True
    body = case.operation.get_body_for_media_type(case.media_type) if case.media_type else None
    if body is None:
        return True
    read = as_drf_reads_it(case.body, body.optimized_schema)
    # Keep the failure unless the body DRF actually saw is one the schema allows (json: False != 0).
    return json.dumps(read, sort_keys=True) == json.dumps(case.body, sort_keys=True) or not body.is_valid(read)

"""Request bounds: every oversized, overdeep or overlong input is a 400, 413 or 422 in the documented shape."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from marketdata.csv_validation import HEADER
from marketdata.storage import candle_path
from multibot.errors import QUOTE_CHARS, field_errors
from multibot.limits import json_too_deep
from tests.factories import PASSWORD, access_token_for, make_user
from tests.support.processes import database_url, server_env, uvicorn_server

LOGIN_JSON = "/api/v1/auth/login/json"
LOGIN_FORM = "/api/v1/auth/login"
AUDIT = "/api/v1/audit/"
BOTS = "/api/v1/bots/"
FIVE_MB = 5 * 1024 * 1024


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def assert_sentence(response: httpx.Response | object, status: int) -> str:
    """``status`` answered as ``{"detail": "<a sentence>"}``."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"detail"} and isinstance(body["detail"], str) and body["detail"], body
    return body["detail"]


def assert_field_errors(response: object, status: int) -> list[dict]:
    """``status`` answered as ``{"detail": [{type, loc, msg, input}, ...]}``."""
    assert response.status_code == status, response.content
    body = json.loads(response.content)
    assert set(body) == {"detail"} and isinstance(body["detail"], list) and body["detail"], body
    for error in body["detail"]:
        assert set(error) == {"type", "loc", "msg", "input"}, error
    return body["detail"]


# -- bodies --------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [33, 10_000, 500_000])
def test_deeply_nested_json_on_the_login_endpoint_is_a_400_json_invalid(api, depth):
    response = api.post(LOGIN_JSON, data=deep_json(depth), content_type="application/json")

    (error,) = assert_field_errors(response, 400)
    assert (error["type"], error["loc"], error["input"]) == ("json_invalid", ["body"], None)
    assert "nested deeper than 32" in error["msg"]


@pytest.mark.django_db
def test_json_nested_to_the_limit_is_parsed(admin_api):
    # 32 levels: an object holding arrays 31 deep; the bot it describes is refused for its content, not its shape
    body = json.dumps({"name": json.loads(deep_json(31))})

    response = admin_api.post(BOTS, data=body, content_type="application/json")

    errors = assert_field_errors(response, 422)
    assert ["body", "name"] in [error["loc"] for error in errors]


@pytest.mark.django_db
def test_brackets_inside_json_strings_do_not_count_as_nesting(api, user):
    body = json.dumps({"username": user.username, "password": '[{"' * 500 + '\\"]'})

    response = api.post(LOGIN_JSON, data=body, content_type="application/json")

    assert response.status_code == 401  # read, and the password is wrong


def test_the_depth_check_reads_a_megabyte_quickly():
    started = time.perf_counter()
    deep, flat = json_too_deep(b"[" * 2**20, 32), json_too_deep(b"[" + b"[]," * 350_000 + b"[]]", 32)
    assert (deep, flat) == (True, False)
    assert time.perf_counter() - started < 1.0


@pytest.mark.django_db
@pytest.mark.parametrize("path", [LOGIN_JSON, LOGIN_FORM])
def test_a_five_megabyte_body_on_a_login_endpoint_is_a_413(api, path):
    if path == LOGIN_JSON:
        response = api.post(path, data=json.dumps({"username": "a" * FIVE_MB, "password": "b"}),
                            content_type="application/json")  # fmt: skip
    else:
        response = api.post(path, data=f"username={'a' * FIVE_MB}&password=b",
                            content_type="application/x-www-form-urlencoded")  # fmt: skip

    assert assert_sentence(response, 413) == "The request body is larger than 1048576 bytes."


@pytest.mark.django_db
def test_five_thousand_form_fields_on_the_form_login_are_a_413(api):
    form = "&".join(f"field{index}=x" for index in range(5000))

    response = api.post(LOGIN_FORM, data=form, content_type="application/x-www-form-urlencoded")

    assert "More than 1000 form fields" in assert_sentence(response, 413)


@pytest.mark.django_db
def test_five_thousand_multipart_fields_on_the_form_login_are_a_413(api):
    response = api.post(LOGIN_FORM, {f"field{index}": "x" for index in range(5000)}, format="multipart")

    assert "More than 1000 form fields" in assert_sentence(response, 413)


@pytest.mark.django_db
def test_more_multipart_files_than_the_limit_are_a_413(api):
    files = {f"file{index}": io.BytesIO(b"x") for index in range(11)}
    for index, file in enumerate(files.values()):
        file.name = f"f{index}.txt"

    response = api.post(LOGIN_FORM, {"username": "a", "password": "b", **files}, format="multipart")

    assert assert_sentence(response, 413) == "More than 10 files."


@pytest.mark.django_db
def test_a_body_just_over_the_cap_is_a_413_and_one_at_the_cap_is_read(user_api, settings):
    settings.REQUEST_LIMITS = {**settings.REQUEST_LIMITS, "body_bytes": {"default": 2000, "upload": 10**6}}
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    body = json.dumps({"name": "x" * 2000})
    fitting = json.dumps({"name": "x" * (2000 - len(body) + 2000)})
    assert len(fitting) == 2000

    over, at = (user_api.post(BOTS, data=text, content_type="application/json") for text in (body, fitting))

    assert_sentence(over, 413)
    assert at.status_code == 422  # parsed: the name is too long, the body is not


# -- query strings -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "kind"),
    [("100000000000000000000", "max_value"), ("-100000000000000000000", "min_value"),
     ("1_000_000_000_000_000_000", "max_value"), ("9007199254740992.0", "max_value"),
     ("1" * 5000, "max_string_length")],
)  # fmt: skip
def test_a_huge_integer_in_a_query_string_is_a_422_that_quotes_it(user_api, value, kind):
    response = user_api.get(AUDIT, {"page": value})

    (error,) = assert_field_errors(response, 422)
    assert (error["type"], error["loc"]) == (kind, ["query", "page"])
    assert error["input"] == (value if len(value) <= QUOTE_CHARS else value[:QUOTE_CHARS] + "…")


@pytest.mark.django_db
def test_the_largest_exact_integer_reaches_the_view(user_api):
    response = user_api.get(AUDIT, {"page": str(2**53 - 1)})

    assert response.status_code == 200
    assert response.json()["logs"] == []


@pytest.mark.django_db
def test_a_query_422_reports_the_value_sent(user_api):
    response = user_api.get(AUDIT, {"per_page": "lots", "start_date": "yesterday"})

    errors = {tuple(error["loc"]): error for error in assert_field_errors(response, 422)}
    assert errors[("query", "per_page")]["input"] == "lots"


@pytest.mark.django_db
def test_a_query_date_422_reports_the_value_sent(user_api):
    (error,) = assert_field_errors(user_api.get(AUDIT, {"start_date": "yesterday"}), 422)

    assert (error["loc"], error["input"]) == (["query", "start_date"], "yesterday")


@pytest.mark.django_db
def test_five_thousand_query_parameters_are_a_413(user_api):
    query = "&".join(f"p{index}=1" for index in range(5000))

    assert "query parameters" in assert_sentence(user_api.get(f"{AUDIT}?{query}"), 413)


@pytest.mark.django_db
def test_a_text_parameter_made_of_digits_is_a_text_however_long(user_api):
    digits = "9" * 20

    response = user_api.get(AUDIT, {"user": digits, "resource": digits, "unknown": digits})

    assert response.status_code == 200
    assert response.json()["logs"] == []


def test_every_integer_of_a_query_string_is_bounded_in_the_schema():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    integers = {(path, parameter["name"]): parameter["schema"] for path, item in paths.items()
                for operation in item.values() for parameter in operation.get("parameters", [])
                if parameter["in"] == "query" and parameter["schema"].get("type") == "integer"}  # fmt: skip

    assert ("/api/v1/audit/", "page") in integers
    unbounded = {name: schema.get("maximum") for name, schema in integers.items()
                 if schema.get("maximum", 2**64) > 2**53 - 1}  # fmt: skip
    assert unbounded == {}


# -- what a 422 quotes ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_422_quotes_only_a_short_prefix_of_an_oversized_input(admin_api):
    name = "n" * 900_000

    response = admin_api.post(BOTS, data=json.dumps({"name": name}), content_type="application/json")

    errors = {tuple(error["loc"]): error for error in assert_field_errors(response, 422)}
    assert errors[("body", "name")]["input"] == "n" * QUOTE_CHARS + "…"
    assert len(response.content) < 5000


def test_a_long_list_or_number_is_quoted_as_the_start_of_its_json():
    from rest_framework.exceptions import ErrorDetail

    pairs, number = [f"PAIR{index}/USDT" for index in range(1000)], 10**300
    detail = {"pairs": [ErrorDetail("bad", code="invalid")], "stake": [ErrorDetail("bad", code="invalid")],
              "short": [ErrorDetail("bad", code="invalid")]}  # fmt: skip

    errors = field_errors(detail, {"pairs": pairs, "stake": number, "short": ["BTC/USDT"]})

    by_field = {error["loc"][-1]: error["input"] for error in errors}
    assert by_field["pairs"] == json.dumps(pairs)[:QUOTE_CHARS] + "…"
    assert by_field["stake"] == str(number)[:QUOTE_CHARS] + "…"
    assert by_field["short"] == ["BTC/USDT"]


def test_a_message_that_repeats_a_long_input_is_shortened_too():
    from rest_framework.exceptions import ErrorDetail

    sent = "x" * 10_000
    detail = {"exchange": [ErrorDetail(f'"{sent}" is not a valid choice.', code="invalid_choice")]}

    (error,) = field_errors(detail, {"exchange": sent})

    assert len(error["msg"]) <= 2 * QUOTE_CHARS + 1
    assert error["msg"].endswith("…")


# -- uploads keep their own cap ------------------------------------------------------------------


def _candles_csv(count: int) -> bytes:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [f"{start + timedelta(minutes=5 * index):%Y-%m-%d %H:%M:%S},{42_000 + index * 0.1},{42_010 + index * 0.1},"
            f"{41_990 + index * 0.1},{42_001 + index * 0.1},{index / 3}" for index in range(count)]  # fmt: skip
    return ("\n".join([HEADER, *rows]) + "\n").encode()


@pytest.mark.django_db
def test_a_candle_upload_may_be_larger_than_any_other_body(user_api, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MARKETDATA = {**settings.MARKETDATA, "dir": tmp_path / "data"}
    text = _candles_csv(25_000)
    assert len(text) > settings.REQUEST_LIMITS["body_bytes"]["default"]
    file = SimpleUploadedFile("candles.csv", text, content_type="text/csv")

    response = user_api.post("/api/v1/data/upload", {"file": file, "pair": "BTC/USDT", "timeframe": "5m"},
                             format="multipart")  # fmt: skip

    assert response.status_code == 201, response.content
    assert response.json()["data"]["records"] == 25_000


# -- a real server -------------------------------------------------------------------------------


@pytest.fixture
def server(committed_db, tmp_path) -> Iterator[tuple[str, Path]]:
    """A real uvicorn on the test database; yields its URL and the file that takes its log."""
    log = tmp_path / "uvicorn.log"
    with open(log, "w") as output:
        env = server_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url())
        with uvicorn_server(env, output=output) as base:
            yield base, log


def _refusals(base: str) -> list[tuple[str, httpx.Response]]:
    json_headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=base, timeout=60) as client:
        return [
            ("json, nested", client.post(LOGIN_JSON, content=deep_json(100_000), headers=json_headers)),
            ("json, 5 MB", client.post(LOGIN_JSON, content=json.dumps({"username": "a" * FIVE_MB}),
                                       headers=json_headers)),
            ("json, 5 MB chunked", client.post(LOGIN_JSON, content=iter([b'{"username": "', b"a" * FIVE_MB, b'"}']),
                                               headers=json_headers)),
            ("form, 5,000 fields", client.post(LOGIN_FORM, data={f"f{index}": "x" for index in range(5000)})),
            ("form, 5 MB", client.post(LOGIN_FORM, data={"username": "a" * FIVE_MB, "password": "b"})),
            ("multipart, 5,000 fields", client.post(LOGIN_FORM, data={f"f{index}": "x" for index in range(5000)},
                                                    files={"file": ("a.txt", b"x")})),
            ("json on the form login, nested", client.post(LOGIN_FORM, content=deep_json(100_000),
                                                           headers=json_headers)),
        ]  # fmt: skip


@pytest.mark.slow
def test_a_real_server_refuses_hostile_bodies_on_the_login_endpoints_and_keeps_answering(server):
    base, log = server
    user = make_user()

    # when
    refusals = _refusals(base)
    health = httpx.get(f"{base}/api/v1/monitoring/health", timeout=10)
    login = httpx.post(f"{base}{LOGIN_JSON}", json={"username": user.username, "password": PASSWORD}, timeout=10)

    # then
    for what, response in refusals:
        assert response.status_code in (400, 413, 415), (what, response.status_code, response.text[:300])
        body = response.json()
        assert set(body) == {"detail"}, (what, body)
        if response.status_code == 400:
            assert body["detail"][0]["type"] == "json_invalid", what
        else:
            assert isinstance(body["detail"], str), what
    statuses = {what: response.status_code for what, response in refusals}
    assert statuses["json, nested"] == 400 and statuses["json, 5 MB"] == 413 and statuses["json, 5 MB chunked"] == 413
    assert statuses["form, 5,000 fields"] == 413 and statuses["form, 5 MB"] == 413
    assert health.status_code in (200, 503) and "overall_status" in health.json()
    assert login.status_code == 200 and login.json()["access_token"]
    assert "Traceback" not in log.read_text()


@pytest.mark.slow
def test_a_real_server_reads_a_chunked_body(server):
    base, _ = server
    user = make_user()
    credentials = json.dumps({"username": user.username, "password": PASSWORD}).encode()

    def chunks(data: bytes) -> Iterator[bytes]:
        yield from (data[index : index + 7] for index in range(0, len(data), 7))

    # when: no Content-Length, the body comes in pieces
    as_json = httpx.post(f"{base}{LOGIN_JSON}", content=chunks(credentials),
                         headers={"Content-Type": "application/json"}, timeout=10)  # fmt: skip
    form = f"username={user.username}&password={PASSWORD}".encode()
    as_form = httpx.post(f"{base}{LOGIN_FORM}", content=chunks(form),
                         headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)  # fmt: skip

    # then
    assert as_json.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in as_json.request.headers
    assert as_json.status_code == 200, as_json.text
    assert as_form.status_code == 200, as_form.text
    assert as_json.json()["user"]["username"] == as_form.json()["user"]["username"] == user.username


@pytest.mark.slow
def test_a_real_server_refuses_a_websocket_upgrade_cleanly(server):
    import websockets.exceptions
    import websockets.sync.client

    base, log = server
    url = base.replace("http://", "ws://") + "/ws"

    # when
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        websockets.sync.client.connect(url, open_timeout=10)
    health = httpx.get(f"{base}/api/v1/monitoring/health", timeout=10)

    # then
    assert refused.value.response.status_code == 403
    assert health.status_code in (200, 503)
    assert "Traceback" not in log.read_text() and "Exception" not in log.read_text()


@pytest.mark.slow
def test_a_real_server_takes_a_candle_upload_larger_than_any_other_body(server, settings):
    base, _ = server
    headers = {"Authorization": f"Bearer {access_token_for(make_user())}"}
    text, pair = _candles_csv(25_000), "LIMITS/USDT"
    stored = candle_path(Path(settings.HOME) / "data" / "replay", pair, "5m")
    oversized_json = json.dumps({"name": "x" * len(text)})
    try:
        # when
        uploaded = httpx.post(
            f"{base}/api/v1/data/upload",
            headers=headers,
            timeout=60,
            data={"pair": pair, "timeframe": "5m"},
            files={"file": ("c.csv", text, "text/csv")},
        )
        elsewhere = httpx.post(f"{base}{BOTS}", headers={**headers, "Content-Type": "application/json"},
                               content=oversized_json, timeout=60)  # fmt: skip
    finally:
        stored.unlink(missing_ok=True)

    # then
    assert len(text) > 1024 * 1024
    assert uploaded.status_code == 201, uploaded.text
    assert elsewhere.status_code == 413


# -- what the ASGI side reads --------------------------------------------------------------------


def _through_bounded_bodies(chunks: list[bytes]) -> tuple[int, dict[bytes, bytes], bytes]:
    """Send a chunked body through BoundedBodies to an app that reads it all, as Django does:
    (chunks the server was asked for, the headers the app saw, the body the app read)."""
    import asyncio

    from multibot.limits import BoundedBodies

    pulled, seen = 0, {}

    async def server_receive() -> dict:
        nonlocal pulled
        pulled += 1
        index = pulled - 1
        return {"type": "http.request", "body": chunks[index], "more_body": index < len(chunks) - 1}

    async def app(scope, receive, send) -> None:
        seen["headers"] = dict(scope["headers"])
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message["body"], message["more_body"]
        seen["body"] = body
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message) -> None:
        pass

    scope = {"type": "http", "method": "POST", "path": BOTS, "headers": [(b"transfer-encoding", b"chunked")]}
    asyncio.run(BoundedBodies(app)(scope, server_receive, send))
    return pulled, seen["headers"], seen["body"]


def test_a_chunked_body_gets_its_length_and_arrives_whole():
    chunks = [bytes([index]) * 1000 for index in range(50)]

    pulled, headers, body = _through_bounded_bodies(chunks)

    assert pulled == 50
    assert headers[b"content-length"] == b"50000" and b"transfer-encoding" not in headers
    assert body == b"".join(chunks)


def test_a_chunked_body_over_its_cap_is_read_no_further():
    chunk = b"x" * 64 * 1024
    chunks = [chunk] * 160  # 10 MiB, ten times the cap

    pulled, headers, body = _through_bounded_bodies(chunks)

    assert pulled == 17  # the first chunk past 1 MiB, and not one more
    assert int(headers[b"content-length"]) > 1024 * 1024  # Django refuses it from that
    assert body == b""

"""The OpenAPI schema at /api/schema/ tells the truth: bodies, responses, errors and auth as the views have them."""

from __future__ import annotations

import functools
from typing import Any

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from bots.models import Bot
from tests.factories import PASSWORD, make_bot

V1 = "/api/v1"
METHODS = ("get", "put", "post", "patch", "delete")


@functools.cache
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def operation(path: str, method: str) -> dict[str, Any]:
    return schema()["paths"][V1 + path][method]


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, item[method]) for path, item in schema()["paths"].items() for method in METHODS if method in item
    ]


def component(ref_holder: dict[str, Any]) -> dict[str, Any]:
    return schema()["components"]["schemas"][ref_holder["$ref"].rpartition("/")[2]]


def json_schema_of(response: dict[str, Any]) -> dict[str, Any]:
    return response["content"]["application/json"]["schema"]


def conforms(instance: Any, ref_holder: dict[str, Any]) -> bool:
    """``instance`` against a documented schema, its references resolved within the whole schema."""
    root = {**ref_holder, "components": schema()["components"]}
    return jsonschema.Draft4Validator(root).is_valid(instance)


def test_the_schema_is_valid_openapi():
    validate_schema(schema())


def test_every_operation_is_named_once_and_no_path_is_its_trailing_slash_twin():
    paths = set(schema()["paths"])
    ids = [op["operationId"] for _, _, op in operations()]

    assert not {path for path in paths if path + "/" in paths}
    assert len(ids) == len(set(ids))
    assert {V1 + "/audit/", V1 + "/data/", V1 + "/streams/"} <= paths


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/audit", "/audit/", "/data", "/data/", "/streams", "/streams/"])
def test_both_url_forms_still_answer(user_api, path):
    assert user_api.get(V1 + path).status_code == 200


@pytest.mark.parametrize(
    "path", ["/bots/{id}/start/", "/bots/{id}/stop/", "/bots/{id}/restart/", "/bots/start-all/",
             "/bots/stop-all/", "/bots/restart-all/", "/bots/{bot}/emergency-stop"],
)  # fmt: skip
def test_lifecycle_commands_take_no_body_and_answer_202(path):
    post = operation(path, "post")

    assert "requestBody" not in post
    assert "200" not in post["responses"]
    assert "properties" in component(json_schema_of(post["responses"]["202"]))
    assert json_schema_of(post["responses"]["202"])["$ref"] != "#/components/schemas/Bot"


def test_status_and_logs_are_documented_as_what_they_return_not_as_a_bot():
    status = component(json_schema_of(operation("/bots/{id}/status/", "get")["responses"]["200"]))
    logs = component(json_schema_of(operation("/bots/{id}/logs/", "get")["responses"]["200"]))

    assert {"bot_status", "pid", "desired_state"} <= set(status["properties"])
    assert logs["properties"]["logs"]["type"] == "array"


@pytest.mark.parametrize("path", ["/auth/login/json", "/auth/login", "/auth/refresh", "/auth/logout"])
def test_auth_endpoints_document_a_required_body(path):
    body = operation(path, "post")["requestBody"]

    assert body["required"] is True
    assert body["content"]


def test_login_documents_its_credentials_tokens_and_refusal():
    login = operation("/auth/login/json", "post")
    given = component(login["requestBody"]["content"]["application/json"]["schema"])
    answer = component(json_schema_of(login["responses"]["200"]))

    assert set(given["required"]) == {"username", "password"}
    assert {"access_token", "refresh_token", "token_type", "expires_in", "user"} <= set(answer["required"])
    assert {"401", "422", "429"} <= set(login["responses"])
    assert login["security"] == [{}]


def test_creating_a_user_documents_the_password():
    given = component(operation("/users/", "post")["requestBody"]["content"]["application/json"]["schema"])

    assert "password" in given["required"]
    assert "201" in operation("/users/", "post")["responses"]


def test_an_email_may_be_empty_in_what_the_api_returns():
    user = schema()["components"]["schemas"]["UserOutput"]

    assert "format" not in user["properties"]["email"]
    assert conforms({"id": 1, "username": "a", "email": "", "full_name": "", "is_active": True,
                     "is_superuser": False}, {"$ref": "#/components/schemas/UserOutput"})  # fmt: skip


def test_the_freqtrade_pass_through_documents_basic_auth_besides_jwt():
    ft = operation("/bots/{id}/ft/{ft_path}", "get")

    assert {"jwtAuth": []} in ft["security"] and {"basicAuth": []} in ft["security"]
    assert schema()["components"]["securitySchemes"]["basicAuth"] == {"type": "http", "scheme": "basic"}
    assert {"503", "404"} <= set(ft["responses"])
    assert operation("/bots/", "get")["security"] == [{"jwtAuth": []}]


def test_every_answer_with_a_body_documents_it():
    silent = [
        f"{method.upper()} {path} {code}"
        for path, method, op in operations()
        for code, response in op["responses"].items()
        if code != "204" and "content" not in response
    ]

    assert silent == []


def test_every_operation_documents_the_errors_it_can_answer():
    for path, method, op in operations():
        codes = set(op["responses"])
        assert "429" in codes and op["responses"]["429"]["headers"]["Retry-After"]["required"], (path, method)
        if op["security"] != [{}]:
            assert "401" in codes, (path, method)
        if "{" in path:
            assert "404" in codes, (path, method)
        if "requestBody" in op:
            assert {"400", "413", "415", "422"} <= codes, (path, method)
    assert "403" in operation("/users/", "get")["responses"]
    assert "403" not in operation("/bots/", "get")["responses"]
    assert "409" in operation("/bots/{id}/start/", "post")["responses"]


def test_the_documented_error_shapes_are_the_ones_the_api_answers(db, api):
    # when: a login with a missing field (422) and one with wrong credentials (401)
    invalid = api.post(V1 + "/auth/login/json", {"username": "someone"}, format="json")
    refused = api.post(V1 + "/auth/login/json", {"username": "someone", "password": "wrong"}, format="json")

    # then
    responses = operation("/auth/login/json", "post")["responses"]
    assert invalid.status_code == 422 and refused.status_code == 401
    assert conforms(invalid.json(), json_schema_of(responses["422"]))
    assert conforms(refused.json(), json_schema_of(responses["401"]))
    assert not conforms(refused.json(), json_schema_of(responses["422"]))


def test_a_login_answer_conforms_to_what_login_documents(user, api):
    answer = api.post(V1 + "/auth/login/json", {"username": user.username, "password": PASSWORD}, format="json")

    assert answer.status_code == 200
    assert conforms(answer.json(), json_schema_of(operation("/auth/login/json", "post")["responses"]["200"]))


def test_ids_in_paths_are_integers():
    start = operation("/bots/{id}/start/", "post")
    [parameter] = [p for p in start["parameters"] if p["name"] == "id"]

    assert parameter["schema"]["type"] == "integer"


def test_a_create_links_to_what_can_be_done_with_what_it_created():
    links = operation("/bots/", "post")["responses"]["201"]["links"]

    assert links["bots_start_create"] == {
        "operationId": "bots_start_create",
        "parameters": {"id": "$response.body#/id"},
    }
    assert "bots_retrieve" in links


def test_an_emergency_stop_all_answer_is_documented_field_by_field(user, user_api):
    bot = make_bot(owner=user)
    # Running, with a pid: conforms() reads JSON Schema draft 4, which knows no OpenAPI "nullable".
    Bot.objects.filter(pk=bot.pk).update(status=Bot.Status.RUNNING, pid=4242)

    answer = user_api.post(V1 + "/emergency/stop-all", {}, format="json")

    documented = json_schema_of(operation("/emergency/stop-all", "post")["responses"]["202"])
    assert answer.status_code == 202
    assert conforms(answer.json(), documented)
    assert set(component(documented)["properties"]) == set(answer.json())


def test_a_status_answer_documents_the_desired_states():
    output = component(json_schema_of(operation("/bots/{id}/status/", "get")["responses"]["200"]))

    assert {"running", "stopped"} <= set(schema()["components"]["schemas"][
        output["properties"]["desired_state"]["$ref"].rpartition("/")[2]]["enum"])  # fmt: skip


def test_a_text_that_python_trims_to_nothing_is_documented_as_blank(user_api):
    # given: the strategy owner filter, a text DRF trims before refusing it when blank
    owner = next(p for p in operation("/strategies/{name}/", "get")["parameters"] if p["name"] == "owner")
    # when: every character Python calls whitespace (ECMAScript's \s misses \x1c-\x1f and \x85) is sent alone
    blanks = [chr(code) for code in range(0x3001) if chr(code).isspace()]
    # then: the schema refuses each, as the API does, and still takes a name
    for blank in blanks:
        assert not jsonschema.Draft4Validator(owner["schema"]).is_valid(blank), repr(blank)
    assert jsonschema.Draft4Validator(owner["schema"]).is_valid("ann")
    assert user_api.get(f"{V1}/strategies/SampleStrategy/", {"owner": "\x85"}).status_code == 422

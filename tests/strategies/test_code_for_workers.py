"""A version's code served to workers on other hosts: signed by a host, only the files of known versions."""

from __future__ import annotations

import hashlib

import pytest

from audit.services import Actor
from multibot.host_signature import signed_headers
from strategies.library import version_code_ensure, version_path
from strategies.services import strategy_upload
from tests.strategies.conftest import strategy_text

pytestmark = pytest.mark.django_db


def code_path(sha256: str) -> str:
    return f"/api/v1/internal/strategy-code/{sha256}"


def signed(path: str) -> dict[str, str]:
    return {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in signed_headers(path).items()}


def test_a_signed_request_gets_a_versions_code_and_its_checksum(api, user):
    version, _ = strategy_upload(actor=Actor.system(), owner=user, filename="s.py", data=strategy_text().encode())

    response = api.get(code_path(version.sha256), **signed(code_path(version.sha256)))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == version_path(version.sha256).read_bytes()
    assert response["X-Checksum-Sha256"] == version.sha256


def test_code_no_version_has_or_an_unsigned_request_is_refused(api, user):
    version, _ = strategy_upload(actor=Actor.system(), owner=user, filename="s.py", data=strategy_text().encode())
    unknown = code_path(hashlib.sha256(b"not stored").hexdigest())

    assert api.get(unknown, **signed(unknown)).status_code == 404
    assert api.get(code_path(version.sha256)).status_code == 403
    assert api.get(code_path("../../secret_key"), **signed(code_path("../../secret_key"))).status_code == 404


def test_a_version_whose_code_is_here_is_not_fetched(user, settings):
    version, _ = strategy_upload(actor=Actor.system(), owner=user, filename="s.py", data=strategy_text().encode())
    settings.MANAGER = {**settings.MANAGER, "url": "http://127.0.0.1:9"}  # a fetch would fail

    assert version_code_ensure(version.sha256) == version_path(version.sha256)

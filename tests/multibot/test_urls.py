"""Path segments that name things (a bot, a pair, a timeframe) never hold NUL: such a URL is a 404."""

from __future__ import annotations

import pytest

from tests.factories import make_bot


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/v1/bots/al%00pha/process"), ("post", "/api/v1/bots/al%00pha/emergency-stop"),
     ("get", "/api/v1/data/download/BTC%00USDT/5m"), ("get", "/api/v1/data/download/BTC_USDT/5m%00")],
)  # fmt: skip
def test_a_nul_in_a_named_path_segment_is_a_json_404(user_api, user, method, path):
    # given: a bot whose name the path almost names (PostgreSQL refuses NUL in a query: a 500 before)
    make_bot(owner=user, name="alpha")

    # when
    response = getattr(user_api, method)(path)

    # then
    assert response.status_code == 404, response.content
    assert response.json() == {"detail": "Not found"}

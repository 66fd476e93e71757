from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_the_health_endpoint_answers_healthy_with_real_redis_and_database(api):
    response = api.get("/api/v1/monitoring/health")
    assert response.status_code == 200
    body = response.json()
    assert body["overall_status"] == "healthy"
    assert {c["name"]: c["status"] for c in body["component_health"]}["redis"] == "healthy"

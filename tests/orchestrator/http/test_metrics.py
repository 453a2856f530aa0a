"""GET /metrics: request counts and durations labelled by route template."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY

from tests.orchestrator.http.conftest import Api, crawl, submit


def requests(endpoint: str, method: str, status: str) -> float:
    labels = {"endpoint": endpoint, "method": method, "status": status}
    return REGISTRY.get_sample_value("api_requests_total", labels) or 0.0


def observed(endpoint: str) -> float:
    return REGISTRY.get_sample_value("api_duration_seconds_count", {"endpoint": endpoint}) or 0.0


async def test_requests_are_counted_by_route_template_not_raw_path(idle: Api) -> None:
    before = {
        "accepted": requests("/ingest-async", "POST", "202"),
        "found": requests("/jobs/{job_id}", "GET", "200"),
        "missing": requests("/jobs/{job_id}", "GET", "404"),
        "other": requests("other", "GET", "404"),
        "timed": observed("/jobs/{job_id}"),
    }
    accepted = await submit(idle, crawl())
    await idle.http.get(accepted["track_url"])
    unknown = str(uuid.uuid4())
    await idle.http.get(f"/jobs/{unknown}")
    await idle.http.get(f"/no/such/{unknown}")

    assert requests("/ingest-async", "POST", "202") == before["accepted"] + 1
    assert requests("/jobs/{job_id}", "GET", "200") == before["found"] + 1
    assert requests("/jobs/{job_id}", "GET", "404") == before["missing"] + 1
    assert requests("other", "GET", "404") == before["other"] + 1
    assert observed("/jobs/{job_id}") == before["timed"] + 2

    text = (await idle.http.get("/metrics")).text
    assert 'api_requests_total{endpoint="/jobs/{job_id}",method="GET",status="404"}' in text
    assert "api_duration_seconds_bucket" in text
    # Raw ids never become label values: the series stay bounded.
    assert unknown not in text
    assert accepted["job_id"] not in text

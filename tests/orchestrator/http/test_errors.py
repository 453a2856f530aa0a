"""Unexpected failures answer 500 with a request id the log also has, never a traceback."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from orchestrator.composition import compose_orchestrator
from tests.orchestrator.http.conftest import BASE, error_of, make_settings


async def test_an_unexpected_error_is_500_with_a_request_id_in_the_log(
    data_dir: Path, docs_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A runtime its owner never started: its job store refuses, as no route expects.
    settings = make_settings(data_dir, docs_dir)
    app = compose_orchestrator(settings, run_workers=False).app
    caplog.set_level(logging.ERROR, logger="shield.orchestrator.http")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        response = await http.get("/jobs")
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "internal_error"
    request_id = response.headers["x-request-id"]
    assert f"request id {request_id}" in error["message"]
    assert "Traceback" not in response.text
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None  # with its traceback
    assert "/jobs" in logged[0].getMessage()

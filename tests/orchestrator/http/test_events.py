"""GET /jobs/{id}/events: server-sent events over a real uvicorn server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.orchestrator.http.conftest import Api, crawl, error_of, markdown_doc, serving, submit

HANG_GUARD_SECONDS = 120.0


async def sse(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    event, data = "", ""
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield event, data
            event, data = "", ""
        elif line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data += line.removeprefix("data:").strip()


async def test_stream_shows_the_state_at_once_then_each_change_and_ends(idle: Api) -> None:
    accepted = await submit(idle, crawl())
    async with (
        serving(idle.app) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
        http.stream("GET", accepted["events_url"]) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse(response)
        kind, data = await anext(events)
        assert kind == "job"
        assert json.loads(data)["status"] == "queued"
        # The stream is open and waiting; a change must come through it.
        assert (await http.delete(accepted["track_url"])).status_code == 200
        kind, data = await asyncio.wait_for(anext(events), HANG_GUARD_SECONDS)
        assert kind == "job"
        assert json.loads(data)["status"] == "cancelled"
        # Terminal: the server closes the stream.
        rest = [item async for item in events]
        assert rest == []


@pytest.mark.slow  # a fresh worker starts its docling child
async def test_stream_of_a_running_job_reports_progress_until_it_succeeds(live: Api) -> None:
    # One live job for two behaviours (a fresh worker's first conversion takes seconds):
    # the stream, then DELETE of the finished job.
    accepted = await submit(live, markdown_doc("# Otters\n\nOtters feed at Kells Harbour.\n"))
    jobs: list[dict[str, Any]] = []
    async with (
        serving(live.app) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as http,
        http.stream("GET", accepted["events_url"]) as response,
        asyncio.timeout(HANG_GUARD_SECONDS),
    ):
        async for kind, data in sse(response):
            assert kind == "job"
            jobs.append(json.loads(data))
    assert jobs[-1]["status"] == "succeeded", jobs[-1]
    assert jobs[-1]["result"]["chunks_stored"] >= 1
    # Each event is a newer state of the same job.
    stamps = [job["updated_at"] for job in jobs]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)
    assert {job["job_id"] for job in jobs} == {accepted["job_id"]}
    # A fresh worker takes seconds to convert its first document: the stream saw it run.
    assert "running" in [job["status"] for job in jobs], [job["status"] for job in jobs]

    response = await live.http.delete(accepted["track_url"])
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "conflict"
    assert "succeeded" in error["message"]


async def test_stream_through_the_asgi_transport_ends_at_the_terminal_state(idle: Api) -> None:
    accepted = await submit(idle, crawl())
    await idle.http.delete(accepted["track_url"])
    async with idle.http.stream("GET", accepted["events_url"]) as response:
        events = [item async for item in sse(response)]
    assert [json.loads(data)["status"] for _, data in events] == ["cancelled"]

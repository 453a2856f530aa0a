"""GET /jobs/{id} (+ long-poll), DELETE /jobs/{id}, GET /jobs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from knowledge.embeddings.local import LocalEmbedder
from tests.orchestrator.http.conftest import (
    SITE,
    Api,
    api_for,
    crawl,
    error_of,
    make_settings,
    submit,
)

# Guards against a hang only: the long-polls below ask for far longer than this.
HANG_GUARD_SECONDS = 60.0


@pytest.mark.parametrize("job_id", ["0b8e5c1e-3f5a-4d7e-9a61-2f4c9d0e7b13", "no-such-job"])
async def test_unknown_job_is_404_with_a_clear_body(idle: Api, job_id: str) -> None:
    for method, path in [
        ("GET", f"/jobs/{job_id}"),
        ("GET", f"/jobs/{job_id}?wait=1"),
        ("GET", f"/jobs/{job_id}/events"),
        ("DELETE", f"/jobs/{job_id}"),
    ]:
        response = await idle.http.request(method, path)
        assert response.status_code == 404, (method, path)
        error = error_of(response)
        assert error["code"] == "not_found"
        assert job_id in error["message"]


async def test_long_poll_answers_unchanged_when_the_wait_runs_out(idle: Api) -> None:
    accepted = await submit(idle, crawl())
    before = (await idle.http.get(accepted["track_url"])).json()
    response = await idle.http.get(accepted["track_url"], params={"wait": 0.3})
    assert response.status_code == 200
    assert response.json() == before


@pytest.fixture
async def patient(
    data_dir: Path, docs_dir: Path, local_embedder: LocalEmbedder
) -> AsyncIterator[Api]:
    settings = make_settings(data_dir, docs_dir, max_wait_seconds=600.0)
    async with api_for(settings, local_embedder, workers=False) as api:
        yield api


async def test_long_poll_answers_as_soon_as_the_job_changes(patient: Api) -> None:
    accepted = await submit(patient, crawl())
    poll = asyncio.create_task(patient.http.get(accepted["track_url"], params={"wait": 600}))
    await asyncio.sleep(0.2)  # let the poll start waiting (if not, it sees the change anyway)
    assert not poll.done()
    cancelled = await patient.http.delete(accepted["track_url"])
    assert cancelled.status_code == 200
    # A poll that ignored the change would hold on for ten minutes.
    response = await asyncio.wait_for(poll, HANG_GUARD_SECONDS)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


async def test_wait_must_be_positive_and_within_the_servers_cap(idle: Api) -> None:
    accepted = await submit(idle, crawl())
    for wait, expected in [("0", "wait: Input should be greater than 0"), ("11", "at most 10")]:
        response = await idle.http.get(accepted["track_url"], params={"wait": wait})
        assert response.status_code == 422
        assert expected in error_of(response)["message"]


async def test_cancel_a_queued_job_then_again(idle: Api) -> None:
    accepted = await submit(idle, crawl())
    response = await idle.http.delete(accepted["track_url"])
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["job_id"] == accepted["job_id"]
    again = await idle.http.delete(accepted["track_url"])
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"
    assert (await idle.http.get(accepted["track_url"])).json()["status"] == "cancelled"


async def test_list_filters_by_status_and_pages_without_gaps(idle: Api) -> None:
    ids = [(await submit(idle, crawl(f"{SITE}/{n}")))["job_id"] for n in range(5)]
    for job_id in ids[:2]:
        await idle.http.delete(f"/jobs/{job_id}")

    queued = (await idle.http.get("/jobs", params={"status": "queued"})).json()
    assert sorted(job["job_id"] for job in queued["jobs"]) == sorted(ids[2:])
    cancelled = (await idle.http.get("/jobs", params={"status": "cancelled"})).json()
    assert sorted(job["job_id"] for job in cancelled["jobs"]) == sorted(ids[:2])
    assert all(job["status"] == "cancelled" for job in cancelled["jobs"])

    seen: list[str] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        page = (await idle.http.get("/jobs", params={"limit": 2, "offset": offset})).json()
        assert page["limit"] == 2
        assert page["offset"] == offset
        assert len(page["jobs"]) <= 2
        seen += [job["job_id"] for job in page["jobs"]]
        offset = page["next_offset"]
        pages += 1
    assert pages == 3
    assert sorted(seen) == sorted(ids)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
        ({"limit": 101}, "limit: Input should be less than or equal to 100"),
        ({"offset": -1}, "offset: Input should be greater than or equal to 0"),
        ({"status": "done"}, "status: Input should be 'queued'"),
    ],
)
async def test_list_refuses_bad_paging_and_statuses(
    idle: Api, params: dict[str, int | str], expected: str
) -> None:
    response = await idle.http.get("/jobs", params=params)
    assert response.status_code == 422
    assert expected in error_of(response)["message"]


async def test_unknown_routes_and_methods_answer_in_the_error_shape(idle: Api) -> None:
    response = await idle.http.get("/nowhere")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    response = await idle.http.put("/jobs/abc")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"

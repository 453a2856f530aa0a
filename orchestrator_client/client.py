"""Typed async client for the orchestrator's REST API, every call behind a circuit breaker.

One pooled ``httpx.AsyncClient`` per client. Connection errors, timeouts, 5xx answers and
answers that are not what the API promises count as failures of the orchestrator; an open
breaker fails fast with DependencyUnavailable carrying ``retry_after``. 4xx answers are the
caller's to fix and do not count (see errors.py), nor do the orchestrator's own 502/503
answers about a dependency of its own (its job store, an LLM, ...): it is up and said
what is wrong and when to retry, so they are raised as it said them.

Imports stay light (httpx, pydantic, knowledge, the wire models): the MCP server imports this
at start-up.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from knowledge.breakers import Breaker, DependencyFailure
from knowledge.errors import DependencyUnavailable, InvalidInput
from knowledge.redact import safe_url
from orchestrator_client.answers import (
    dependency_error,
    from_error_event,
    rejection,
    server_message,
)
from orchestrator_client.graph_models import LightRAGAnswer, LightRAGQuery
from orchestrator_client.models import (
    CrawlRequest,
    DocumentRequest,
    ErrorBody,
    Job,
    JobAccepted,
    JobPage,
    JobStatus,
    RebuildRequest,
    is_job_id,
)

T = TypeVar("T")

# The server sends a keep-alive comment every 15 s; a silent stream past this is dead.
EVENTS_READ_TIMEOUT = 45.0


class OrchestratorClient:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        query_timeout: float = 300.0,
        breaker: Breaker,
        transport: httpx.AsyncBaseTransport | None = None,
        misanswer_hint: str = "check SHIELD_ORCHESTRATOR_URL",
    ) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout
        # A LightRAG query may wait for an LLM's answer: far longer than a job call.
        self.query_timeout = query_timeout
        self.breaker = breaker
        self._where = safe_url(base_url.rstrip("/"))
        # What to do when an answer is not the API's: a wrong URL, or (in-process) a bug.
        self._misanswer_hint = misanswer_hint
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    async def __aenter__(self) -> OrchestratorClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the API -------------------------------------------------------------------------

    async def submit(
        self, request: CrawlRequest | DocumentRequest, *, idempotency_key: str | None = None
    ) -> JobAccepted:
        """POST /ingest-async: 202 for a new job, 200 for a repeated Idempotency-Key."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self._call(
            "POST",
            "/ingest-async",
            JobAccepted.model_validate,
            body=request.model_dump(mode="json"),
            headers=headers,
        )

    async def lightrag_query(self, query: LightRAGQuery) -> LightRAGAnswer:
        """POST /lightrag/query. An LLM or embedder the orchestrator depends on being down
        is its answer (503/502 with an ErrorBody), not a failure of the orchestrator: it
        does not count against this client's breaker."""
        return await self._call(
            "POST",
            "/lightrag/query",
            LightRAGAnswer.model_validate,
            body=query.model_dump(mode="json", exclude_none=True),
            seconds=self.query_timeout,
        )

    async def lightrag_rebuild(self, collection: str | None = None) -> JobAccepted:
        """POST /lightrag/rebuild: a job that indexes the collection's sources again."""
        return await self._call(
            "POST",
            "/lightrag/rebuild",
            JobAccepted.model_validate,
            body=RebuildRequest(collection=collection).model_dump(mode="json"),
        )

    async def get_job(self, job_id: str, *, wait: float | None = None) -> Job:
        """GET /jobs/{id}; with ``wait``, the server holds the answer until the job changes."""
        params: dict[str, Any] | None = None
        timeout = self.timeout
        if wait is not None:
            if wait <= 0:
                raise InvalidInput(f"wait must be more than 0 seconds (got {wait:g}).")
            params = {"wait": wait}
            timeout = self.timeout + wait  # the server may rightly stay silent that long
        return await self._call(
            "GET", _job_path(job_id), Job.model_validate, params=params, seconds=timeout
        )

    async def list_jobs(
        self, *, status: JobStatus | None = None, limit: int = 20, offset: int = 0
    ) -> JobPage:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status is not None:
            params["status"] = JobStatus(status).value
        return await self._call("GET", "/jobs", JobPage.model_validate, params=params)

    async def cancel(self, job_id: str) -> Job:
        """DELETE /jobs/{id}: cancelled, or cancel requested if it is running."""
        return await self._call("DELETE", _job_path(job_id), Job.model_validate)

    async def ready(self) -> dict[str, Any]:
        """GET /ready's body: ``status`` ("ready"/"not_ready") and per-component states.

        A 503 from /ready is an answer (the orchestrator runs, a component of it does not),
        so it is returned rather than raised and does not count against the breaker.
        """

        return await self._call("GET", "/ready", _readiness_report, ok_statuses=(200, 503))

    async def probe(self) -> None:
        """Raises unless the orchestrator answers GET /ready as itself (ready or not: its
        own dependencies are its own probes' business).

        Outside the breaker: the MCP server's dependency probe must see the orchestrator
        come back while the breaker is still open, and must not open it by itself.
        """
        try:
            response = await self._http.get("/ready")
        except httpx.TransportError as exc:
            raise _failure(exc, self._where, "GET", "/ready", self.timeout) from exc
        if response.status_code in (401, 403):
            raise rejection(response, self._where)
        if response.status_code not in (200, 503):
            raise DependencyFailure(
                f"The service at {self._where} answered GET /ready with HTTP "
                f"{response.status_code}; {self._misanswer_hint}."
            )
        self._parse(lambda raw: _readiness_report(json.loads(raw)), response.content, "/ready")

    async def events(self, job_id: str) -> AsyncIterator[Job]:
        """GET /jobs/{id}/events: the job now, then each change; ends at a terminal state."""
        path = _job_path(job_id) + "/events"
        timeout = httpx.Timeout(self.timeout, read=EVENTS_READ_TIMEOUT + self.timeout)
        response = await self.breaker.call(self._open_stream, path, timeout)
        try:
            if response.status_code >= 400:
                await response.aread()
                raise rejection(response, self._where)
            async for event, data in _sse_events(response):
                if event == "job":
                    yield self._parse(Job.model_validate_json, data, path)
                elif event == "error":
                    error = self._parse(ErrorBody.model_validate_json, data, path).error
                    raise from_error_event(error.code, error.message)
        except httpx.TransportError as exc:
            # The stream was open: the breaker already judged this call; say what broke.
            message = str(_failure(exc, self._where, "GET", path, timeout.read))
            raise DependencyUnavailable(message, retry_after=None) from exc
        finally:
            await response.aclose()

    # -- plumbing ------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        seconds: float | None = None,
        ok_statuses: tuple[int, ...] = (),
    ) -> T:
        async def attempt() -> T | httpx.Response:
            limit = self.timeout if seconds is None else seconds
            try:
                response = await self._http.request(
                    method, path, json=body, params=params, headers=headers, timeout=limit
                )
            except httpx.TransportError as exc:
                raise _failure(exc, self._where, method, path, limit) from exc
            if response.status_code not in ok_statuses and _dependency_answer(response):
                return response  # the orchestrator answered: something behind it is down
            if response.status_code >= 500 and response.status_code not in ok_statuses:
                raise _server_failure(self._where, method, path, response)
            if 400 <= response.status_code < 500:
                return response  # judged outside the breaker: not the orchestrator's fault
            return self._parse(lambda raw: parse(json.loads(raw)), response.content, path)

        result = await self.breaker.call(attempt)
        if isinstance(result, httpx.Response):
            if result.status_code >= 500:
                raise dependency_error(result)
            raise rejection(result, self._where)
        return result

    def _parse(self, parse: Callable[[Any], T], raw: Any, path: str) -> T:
        """An answer that is not what the API promises: the URL points somewhere else."""
        try:
            return parse(raw)
        except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
            raise DependencyFailure(
                f"The service at {self._where} answered {path} with something that is not "
                f"the orchestrator's API; {self._misanswer_hint}."
            ) from exc

    async def _open_stream(self, path: str, limits: httpx.Timeout) -> httpx.Response:
        request = self._http.build_request(
            "GET", path, headers={"Accept": "text/event-stream"}, timeout=limits
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise _failure(exc, self._where, "GET", path, limits.connect) from exc
        if response.status_code >= 500:
            await response.aread()
            await response.aclose()
            raise _server_failure(self._where, "GET", path, response)
        return response


def _readiness_report(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or "status" not in data:
        raise ValueError("not a readiness report")
    return data


def _server_failure(where: str, method: str, path: str, response: httpx.Response) -> Exception:
    return DependencyFailure(
        f"The orchestrator at {where} failed on {method} {path} "
        f"(HTTP {response.status_code}): {server_message(response)}"
    )


def _dependency_answer(response: httpx.Response) -> bool:
    """A 502/503 carrying the orchestrator's ErrorBody: its own, deliberate answer."""
    if response.status_code not in (502, 503):
        return False
    try:
        ErrorBody.model_validate_json(response.content)
    except (ValueError, ValidationError):
        return False
    return True


def _job_path(job_id: str) -> str:
    job_id = job_id.strip() if isinstance(job_id, str) else ""
    if not is_job_id(job_id):
        shown = job_id[:60].encode("utf-8", "backslashreplace").decode()
        raise InvalidInput(
            f"job_id {shown!r} is not a job id: give the job_id that crawl_web or ingest_doc "
            "returned, a UUID such as '3f2b8c1e-5d4a-4c3b-9e1f-0a2b3c4d5e6f'."
        )
    return "/jobs/" + job_id


def _failure(
    exc: httpx.TransportError, where: str, method: str, path: str, seconds: float | None
) -> DependencyFailure:
    if isinstance(exc, httpx.TimeoutException):
        limit = f" within {seconds:g} s" if seconds else ""
        return DependencyFailure(
            f"The orchestrator at {where} did not answer {method} {path}{limit}."
        )
    return DependencyFailure(
        f"The orchestrator at {where} is unreachable ({type(exc).__name__}); check that it "
        "runs and that SHIELD_ORCHESTRATOR_URL points at it."
    )


async def _sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs of a text/event-stream; comments (keep-alives) are skipped."""
    event, data = "message", list[str]()
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", list[str]()
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield event, "\n".join(data)

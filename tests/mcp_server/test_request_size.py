"""The request-size limits agree end to end over streamable HTTP, and say so when hit.

Regression: the MCP SDK refused any body over 4 MiB with a bare 413 ("Server returned an
error response"), far below the documented SHIELD_MAX_UPLOAD_BYTES.
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from knowledge.errors import InvalidInput
from mcp_server.composition import compose_server
from mcp_server.settings import ServerSettings
from orchestrator.settings import OrchestratorSettings
from tests.mcp_server.test_http import http_session
from tests.support import running_server

pytestmark = pytest.mark.slow  # a server process and a 5 MiB upload

MAX_UPLOAD = 6_000_000  # decoded bytes
MAX_REQUEST = 8_500_000  # carries one such upload as base64 JSON (8,262,144 bytes)


def upload(size: int) -> str:
    line = b"Plain text that a person wrote, line after line.\n"
    return base64.b64encode(line * (size // len(line))).decode()


async def test_an_upload_over_4_mib_is_accepted_and_an_oversize_call_is_told_why(
    data_dir: Path, tmp_path: Path
) -> None:
    with running_server(
        data_dir,
        tmp_path / "server.log",
        SHIELD_MAX_UPLOAD_BYTES=str(MAX_UPLOAD),
        SHIELD_MAX_REQUEST_BYTES=str(MAX_REQUEST),
    ) as server:
        async with http_session(server.url) as session:
            accepted = await session.call_tool(
                "ingest_doc", {"content_base64": upload(5 * 1024 * 1024), "filename": "big.txt"}
            )
            assert not accepted.is_error, accepted.content
            assert accepted.structured_content is not None
            job_id = accepted.structured_content["job_id"]
            # Converting 5 MiB of text is not what this test is about.
            httpx.delete(f"{server.url}/jobs/{job_id}", timeout=30).raise_for_status()

            with pytest.raises(MCPError) as refused:
                await session.call_tool(
                    "ingest_doc", {"content_base64": upload(MAX_REQUEST), "filename": "huge.txt"}
                )
            message = str(refused.value)
            assert f"at most {MAX_REQUEST} bytes" in message
            assert "SHIELD_MAX_REQUEST_BYTES" in message and "SHIELD_INGEST_ROOTS" in message
            # The session survives the refusal.
            status = await session.call_tool("get_job_status", {"job_id": job_id})
            assert not status.is_error


def test_a_request_cap_too_small_for_the_upload_limit_is_refused_at_start(
    data_dir: Path,
) -> None:
    server = ServerSettings(data_dir=data_dir, max_request_bytes=1_000_000)
    hosted = OrchestratorSettings(data_dir=data_dir, max_upload_bytes=2_000_000)
    composed = compose_server(server, hosted)  # stdio has no request cap: it serves
    with pytest.raises(InvalidInput, match="cannot carry one upload of SHIELD_MAX_UPLOAD_BYTES"):
        composed.http_app()
    # With a separate orchestrator, its own limits apply.
    remote = server.model_copy(update={"orchestrator_url": "http://127.0.0.1:9"})
    compose_server(remote, None).http_app()

"""Start-up stays light: tools/list is answered before any heavy library is imported."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import server_env

HEAVY = [
    "onnxruntime",
    "tokenizers",
    "qdrant_client",
    "qdrant_edge",
    "torch",
    "docling",
    "crawl4ai",
    "lightrag",
    "taskiq_redis",
]


@pytest.mark.slow  # a fresh interpreter imports the server
def test_tools_list_loads_no_model_and_no_heavy_library(data_dir: Path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, json, sys
        from fastmcp import Client
        from mcp_server.composition import compose_server, hosted_settings
        from mcp_server.settings import ServerSettings

        async def main():
            settings = ServerSettings()
            server = compose_server(settings, hosted_settings(settings) or None)
            async with Client(server.mcp) as client:
                names = [t.name for t in await client.list_tools()]
            heavy = [m for m in {HEAVY!r} if m in sys.modules]
            print(json.dumps({{"tools": names, "heavy": heavy}}))

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=server_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(report["tools"]) == [
        "crawl_web",
        "get_job_status",
        "ingest_doc",
        "lightrag_query",
        "qdrant_find",
        "qdrant_store",
    ]
    assert report["heavy"] == []

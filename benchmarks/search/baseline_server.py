"""The transport floor: a fastmcp 4 server with one no-op tool, nothing else.

python baseline_server.py --transport http --port PORT   (MCP at /mcp, GET /health)
python baseline_server.py --transport stdio
"""

from __future__ import annotations

import argparse

from fastmcp import FastMCP
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

mcp = FastMCP("baseline")


@mcp.tool
def noop(query: str = "") -> dict[str, int]:
    """Do nothing; answer at once."""
    return {"length": len(query)}


@mcp.custom_route("/health", methods=["GET"])
async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["http", "stdio"], default="stdio")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if args.transport == "http":
        mcp.run(
            transport="http",
            host="127.0.0.1",
            port=args.port,
            show_banner=False,
            log_level="warning",
        )
    else:
        mcp.run(transport="stdio", show_banner=False)


if __name__ == "__main__":
    main()

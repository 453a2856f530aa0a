"""``lightrag_query``: graph + vector retrieval, answered by the orchestrator's LightRAG.

No `from __future__ import annotations` here: FastMCP evaluates the signatures.
"""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError

from mcp_server.middleware import describe_errors
from mcp_server.tools import CollectionArg, translated_errors
from orchestrator_client.graph_models import (
    MAX_KEYWORDS,
    MAX_QUERY_CHARS,
    MAX_TOP_K,
    LightRAGAnswer,
    LightRAGQuery,
)

if TYPE_CHECKING:
    from orchestrator_client.client import OrchestratorClient

LIGHTRAG_TOOL_NAMES = ["lightrag_query"]

Keywords = Annotated[
    list[str] | None,
    Field(max_length=MAX_KEYWORDS, description="At most 32, each up to 200 characters."),
]
# The wire model nests the keywords ("keywords.high_level"); this tool takes them as two
# arguments, and its errors name those.
_KEYWORD_ARGUMENTS = {"high_level": "high_level_keywords", "low_level": "low_level_keywords"}


def _in_tool_terms(errors: list[Any]) -> list[dict[str, Any]]:
    """pydantic's errors about a LightRAGQuery, located by this tool's argument names."""
    out = []
    for err in errors:
        loc, msg = tuple(err.get("loc", ())), str(err.get("msg", ""))
        for wire, argument in _KEYWORD_ARGUMENTS.items():
            msg = msg.replace(f"keywords.{wire}", argument)
            if loc[:2] == ("keywords", wire):
                loc = (argument, *loc[2:])
        if loc == ("keywords",) and any(a in msg for a in _KEYWORD_ARGUMENTS.values()):
            loc = ()  # the message names the argument already
        out.append({**err, "loc": loc, "msg": msg})
    return out


def register_lightrag_tool(
    mcp: FastMCP, client: Callable[[], Awaitable["OrchestratorClient"]]
) -> None:
    @mcp.tool(
        annotations=ToolAnnotations(
            title="Ask the knowledge graph (LightRAG)",
            read_only_hint=True,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def lightrag_query(
        query: Annotated[
            str,
            Field(min_length=1, max_length=MAX_QUERY_CHARS, description="The question."),
        ],
        mode: Annotated[
            Literal["naive", "local", "global", "hybrid", "mix"] | None,
            Field(
                description="naive: passages by similarity. local: entities named in the "
                "question and their neighbours. global: relations and themes. hybrid: both. "
                "mix: graph and passages. Default: mix with an LLM on the server, naive "
                "without; graph modes without one need keywords."
            ),
        ] = None,
        top_k: Annotated[
            int, Field(ge=1, le=MAX_TOP_K, description="Entities/relations to retrieve.")
        ] = 40,
        chunk_top_k: Annotated[
            int, Field(ge=1, le=MAX_TOP_K, description="Passages to return.")
        ] = 20,
        only_context: Annotated[
            bool,
            Field(description="Return what was retrieved, no written answer (write it yourself)."),
        ] = False,
        high_level_keywords: Keywords = None,
        low_level_keywords: Keywords = None,
        collection: CollectionArg = None,
    ) -> LightRAGAnswer:
        """Answer a question from the knowledge base's graph of entities and relations
        (LightRAG) as well as its passages: good for questions whose answer is spread over
        many pages ("which services depend on the billing database?").

        Returns entities, relations and passages, each naming its real sources (URL or
        path, title, page), and with an LLM configured on the server an answer. Pass
        keywords (low_level: names and specifics; high_level: themes) to use the graph
        modes without the server's LLM.
        """
        with translated_errors("lightrag_query"):
            keywords = None
            if high_level_keywords or low_level_keywords:
                keywords = {
                    "high_level": high_level_keywords or [],
                    "low_level": low_level_keywords or [],
                }
            try:
                request = LightRAGQuery.model_validate(
                    {
                        "query": query,
                        "mode": mode,
                        "top_k": top_k,
                        "chunk_top_k": chunk_top_k,
                        "only_context": only_context,
                        "keywords": keywords,
                        "collection": collection,
                    }
                )
            except ValidationError as exc:
                raise ToolError(describe_errors(_in_tool_terms(exc.errors()))) from None
            return await (await client()).lightrag_query(request)

"""The MCP tools. Each one parses its arguments, calls the knowledge service, shapes the reply.

No `from __future__ import annotations` here: FastMCP evaluates the signatures, and the
bounds in them close over settings.
"""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from knowledge.errors import DependencyUnavailable, KnowledgeError
from knowledge.service import KnowledgeService, Limits
from mcp_server.models import DocumentIn, FindOutput, FoundItem, StoreOutput
from shield_common.logs import request_id

log = logging.getLogger("shield.tools")

CollectionArg = Annotated[
    str | None,
    Field(
        description="Collection to use; omit for the server's default. Letters, digits, "
        "'_' and '-' only."
    ),
]


def tool_error(exc: KnowledgeError) -> ToolError:
    message = str(exc)
    if (
        isinstance(exc, DependencyUnavailable)
        and exc.retry_after
        and "retry in" not in message.lower()
    ):
        message += f" Retry in {exc.retry_after:.0f} s."
    return ToolError(message)


@contextmanager
def translated_errors(tool: str) -> Iterator[None]:
    """Domain errors become tool errors as written; anything else is logged and masked."""
    try:
        yield
    except ToolError:
        raise
    except KnowledgeError as exc:
        raise tool_error(exc) from exc
    except Exception as exc:
        log.exception("%s failed unexpectedly", tool)
        raise ToolError(
            f"Internal error in {tool} (request id {request_id.get()}); the server log has "
            "the details."
        ) from exc


TOOL_NAMES = ["qdrant_store", "qdrant_find"]
MAX_OFFSET = Limits.max_offset


def register_tools(mcp: FastMCP, service: Callable[[], KnowledgeService], max_limit: int) -> None:
    @mcp.tool(
        annotations=ToolAnnotations(
            title="Store in knowledge base",
            read_only_hint=False,
            destructive_hint=False,  # it adds or updates passages, never deletes
            idempotent_hint=True,  # the same text from the same source updates one point
            open_world_hint=False,
        ),
    )
    async def qdrant_store(
        text: Annotated[
            str | None,
            Field(description="One passage to store. Give either text or documents."),
        ] = None,
        metadata: Annotated[
            dict[str, Any] | None,
            Field(description='Metadata for text, e.g. {"source": "notes.md", "topic": "ops"}.'),
        ] = None,
        documents: Annotated[
            list[DocumentIn] | None,
            Field(
                description="Several passages at once, each {text, metadata}. Faster than "
                "one call per passage."
            ),
        ] = None,
        collection: CollectionArg = None,
    ) -> StoreOutput:
        """Store passages of text in the knowledge base so qdrant_find can retrieve them later.

        Use it to remember facts, notes or document passages. Keep each passage to a few
        paragraphs (the default model reads about the first 1,000 characters of each); store
        a long document as several passages with the same metadata "source". Storing the
        same text from the same "source" again updates it rather than duplicating it.
        """
        svc = service()
        with translated_errors("qdrant_store"):
            if (text is None) == (documents is None):
                raise ToolError(
                    "Give exactly one of 'text' (one passage) or 'documents' (a list of "
                    "{text, metadata})."
                )
            if documents is not None:
                if metadata is not None:
                    raise ToolError("'metadata' goes with 'text'; put it inside each document.")
                docs = svc.validate_documents([d.model_dump() for d in documents])
            else:
                docs = [svc.single_document(text, metadata)]
            result = await svc.store_documents(docs, collection)
        return StoreOutput(stored=result.stored, ids=result.ids, collection=result.collection)

    @mcp.tool(
        annotations=ToolAnnotations(
            title="Search knowledge base",
            read_only_hint=True,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    async def qdrant_find(
        query: Annotated[str, Field(description="What to look for, in natural language.")],
        limit: Annotated[
            int, Field(ge=1, le=max_limit, description="How many results to return.")
        ] = 10,
        offset: Annotated[
            int,
            Field(ge=0, le=MAX_OFFSET, description="Skip this many results (use next_offset)."),
        ] = 0,
        filter: Annotated[
            dict[str, Any] | None,
            Field(
                description='Metadata filter, ANDed: {"source": "a.md"} equality, '
                '{"topic": ["ops", "dev"]} any of, {"year": {"gte": 2020, "lte": 2024}} range.'
            ),
        ] = None,
        score_threshold: Annotated[
            float | None,
            Field(
                ge=-1.0,
                le=1.0,
                description="Drop results whose score is below this (cosine, -1 to 1).",
            ),
        ] = None,
        collection: CollectionArg = None,
    ) -> FindOutput:
        """Search the knowledge base by meaning and return the closest stored passages.

        Results come best first with their similarity score and metadata; narrow them with
        a metadata filter and page through them with offset and next_offset.
        """
        with translated_errors("qdrant_find"):
            found = await service().find(
                query,
                limit=limit,
                offset=offset,
                filter=filter,
                score_threshold=score_threshold,
                collection=collection,
            )
        return FindOutput(
            collection=found.collection,
            results=[
                FoundItem(id=h.id, score=h.score, text=h.text, metadata=h.metadata)
                for h in found.results
            ],
            limit=found.limit,
            offset=found.offset,
            returned=len(found.results),
            next_offset=found.next_offset,
        )

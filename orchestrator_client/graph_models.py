"""Wire models of ``POST /lightrag/query``: what the MCP tool sends and gets back."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from knowledge.errors import InvalidInput
from knowledge.vectorstore.base import check_collection_name
from orchestrator_client.models import CollectionName, NotBlank, refuse_lone_surrogates

QueryMode = Literal["naive", "local", "global", "hybrid", "mix"]
GRAPH_MODES = ("local", "global", "hybrid", "mix")
MAX_QUERY_CHARS = 4000
MAX_KEYWORDS = 32
MAX_KEYWORD_CHARS = 200
MAX_TOP_K = 200

Keyword = Annotated[NotBlank, Field(max_length=MAX_KEYWORD_CHARS)]


class LightRAGKeywords(BaseModel):
    """Keywords for the graph modes; given, LightRAG needs no LLM to find them."""

    model_config = ConfigDict(extra="forbid")

    high_level: list[Keyword] = Field(
        default_factory=list,
        max_length=MAX_KEYWORDS,
        description="Themes and concepts, e.g. 'service dependencies' (global mode).",
    )
    low_level: list[Keyword] = Field(
        default_factory=list,
        max_length=MAX_KEYWORDS,
        description="Names and specifics, e.g. 'billing database' (local mode).",
    )

    @model_validator(mode="after")
    def _bounded(self) -> LightRAGKeywords:
        for name in ("high_level", "low_level"):
            values = getattr(self, name)
            cleaned = [v.strip() for v in values]
            if any(not v for v in cleaned):
                raise ValueError(f"keywords.{name} has an empty keyword")
            if any(len(v) > MAX_KEYWORD_CHARS for v in cleaned):
                raise ValueError(
                    f"keywords.{name}: a keyword is longer than {MAX_KEYWORD_CHARS} characters"
                )
            setattr(self, name, cleaned)
        return self

    @property
    def empty(self) -> bool:
        return not self.high_level and not self.low_level


class LightRAGQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        return refuse_lone_surrogates(data)

    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="The question: at least 3 characters of text (a Chinese, Japanese or "
        "Korean character counts as 2).",
        json_schema_extra={"pattern": r"\S"},
    )
    mode: QueryMode | None = Field(
        None, description="Default: mix with an LLM configured, naive without."
    )
    top_k: int = Field(40, ge=1, le=MAX_TOP_K, description="Entities / relations to retrieve.")
    chunk_top_k: int = Field(20, ge=1, le=MAX_TOP_K, description="Passages to keep.")
    only_context: bool = Field(False, description="Retrieval only: no LLM answer.")
    keywords: LightRAGKeywords | None = None
    collection: CollectionName | None = Field(None, description="Omit for the server's default.")

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            return check_collection_name(value)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _has_text(self) -> LightRAGQuery:
        if not self.query.strip():
            raise ValueError("query is blank; ask a question")
        return self


class GraphEntity(BaseModel):
    name: str
    type: str | None = None
    description: str = ""
    sources: list[str] = Field(default_factory=list)


class GraphRelation(BaseModel):
    source: str
    target: str
    keywords: str = ""
    description: str = ""
    sources: list[str] = Field(default_factory=list)


class GraphChunk(BaseModel):
    text: str
    score: float | None = Field(None, description="Absent: LightRAG gives no score here.")
    source: str | None = None
    title: str | None = None
    page: int | None = None


class GraphReference(BaseModel):
    source: str
    title: str | None = None


class QueryTimings(BaseModel):
    retrieval_ms: float | None = Field(None, description="Retrieval only (only_context).")
    answer_ms: float | None = Field(None, description="Retrieval and the LLM's answer.")
    total_ms: float


class LightRAGAnswer(BaseModel):
    collection: str
    mode: QueryMode
    answer: str | None = Field(
        None, description="Written by the LLM; absent without one, or with only_context."
    )
    entities: list[GraphEntity] = Field(default_factory=list)
    relations: list[GraphRelation] = Field(default_factory=list)
    chunks: list[GraphChunk] = Field(default_factory=list)
    references: list[GraphReference] = Field(default_factory=list)
    timings: QueryTimings

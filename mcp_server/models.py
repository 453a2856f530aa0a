"""The shapes tools accept and return (their JSON schemas are what clients see)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DocumentIn(BaseModel):
    # A misspelt key ("meta") would otherwise drop the metadata, and with it the source
    # that identifies the passage.
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The passage to store, as plain text or Markdown.")
    metadata: dict[str, Any] | None = Field(
        None,
        description='Optional fields to filter on later, e.g. {"source": "handbook.md", '
        '"year": 2024}. "source" also identifies the passage: the same text from the same '
        "source is stored once.",
    )


class StoreOutput(BaseModel):
    stored: int = Field(description="How many passages were stored (new or updated).")
    ids: list[str] = Field(description="Point id of each passage, in input order.")
    collection: str


class FoundItem(BaseModel):
    id: str
    score: float = Field(description="Cosine similarity to the query, higher is closer.")
    text: str
    metadata: dict[str, Any]


class FindOutput(BaseModel):
    collection: str
    results: list[FoundItem] = Field(description="Best matches first.")
    limit: int
    offset: int
    returned: int
    next_offset: int | None = Field(
        description="Pass as offset to get the next page; null when there are no more."
    )


class JobAcceptedOutput(BaseModel):
    job_id: str
    status: str = Field(
        description="'queued': the work runs in the background (a reused job may be 'running')."
    )
    track_url: str = Field(description="The orchestrator's URL for this job.")
    events_url: str = Field(description="Server-sent events of this job's progress.")
    reused: bool = Field(
        default=False,
        description="True: the same request was already queued or running, so no second "
        "job was started; this is that job.",
    )
    hint: str


class JobStatusOutput(BaseModel):
    job_id: str
    kind: str
    status: str = Field(description="queued, running, succeeded, failed or cancelled.")
    progress: dict[str, Any] = Field(description="{stage, done, total} of the current step.")
    result: dict[str, Any] | None = Field(
        None, description="When succeeded: pages/documents, chunks stored and skipped, ..."
    )
    error: dict[str, Any] | None = Field(None, description="When failed: {code, message}.")
    attempts: int
    created_at: str
    updated_at: str
    finished_at: str | None = None
    hint: str

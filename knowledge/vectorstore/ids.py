"""Deterministic point ids: storing the same text from the same source again updates one point."""

from __future__ import annotations

import hashlib
import uuid

_NAMESPACE = uuid.UUID("5b0f6a4e-6f1e-4a43-9c55-3d1f2f8a9e61")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def point_id(collection: str, source: str, text_hash: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{collection}\x00{source}\x00{text_hash}"))

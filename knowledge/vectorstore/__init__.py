"""Vector stores behind one interface: embedded Qdrant Edge or a Qdrant server."""

from knowledge.vectorstore.base import CollectionSpec, SearchHit, StoredPoint, VectorStore

__all__ = ["CollectionSpec", "SearchHit", "StoredPoint", "VectorStore"]

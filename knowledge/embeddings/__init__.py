"""Text embedding providers behind one interface (:class:`Embedder`)."""

from knowledge.embeddings.base import Embedder
from knowledge.embeddings.cache import CachedEmbedder

__all__ = ["CachedEmbedder", "Embedder"]

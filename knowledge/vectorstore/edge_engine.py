"""Talking to qdrant-edge-py: engine calls that cannot panic through, filters in its terms."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from knowledge.errors import CollectionDamaged
from knowledge.vectorstore.edge_repair import is_damage
from knowledge.vectorstore.filters import Condition, Match, MatchAny, Range

T = TypeVar("T")


def field_value(payload: dict[str, Any], dotted: str) -> Any:
    value: Any = payload.get("metadata") or {}
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


DAMAGED = (
    "The embedded store holds a passage whose metadata is nested too deeply to read back "
    "(written by a version without metadata limits), so searches of its collection fail. "
    "Stop the server and run `shield-mcp repair` (with the same SHIELD_DATA_DIR): it removes "
    "such passages and lists their sources, to store again."
)


def shielded(fn: Callable[..., T], *args: Any) -> T:
    """Run an engine call; a Rust panic becomes an ordinary exception.

    pyo3 raises panics as ``PanicException``, a BaseException: left alone it passes every
    ``except Exception`` and takes the MCP transport down with it. A payload the engine
    cannot decode becomes CollectionDamaged, which says how to repair it.
    """
    try:
        return fn(*args)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        if is_damage(exc) or "recursion limit exceeded" in str(exc):
            raise CollectionDamaged(DAMAGED) from exc
        if isinstance(exc, Exception):
            raise
        raise RuntimeError(f"the embedded Qdrant engine failed: {exc!r}") from exc


def is_bool_match(cond: Condition) -> bool:
    return isinstance(cond, Match) and isinstance(cond.value, bool)


def engine_filter(conditions: Sequence[Condition]) -> Any:
    """The engine's Filter for these conditions (None for none); imported lazily."""
    from qdrant_edge import FieldCondition, Filter, MatchValue, RangeFloat
    from qdrant_edge import MatchAny as EdgeMatchAny

    must: list[Any] = []
    for cond in conditions:
        key = f"metadata.{cond.field}"
        if isinstance(cond, Match):
            must.append(FieldCondition(key=key, match=MatchValue(cond.value)))
        elif isinstance(cond, MatchAny):
            must.append(FieldCondition(key=key, match=EdgeMatchAny(cond.as_list())))
        elif isinstance(cond, Range):
            rng = RangeFloat(gt=cond.gt, gte=cond.gte, lt=cond.lt, lte=cond.lte)
            must.append(FieldCondition(key=key, range=rng))
    return Filter(must=must) if must else None

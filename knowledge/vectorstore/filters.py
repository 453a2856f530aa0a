"""Metadata filters: the small language ``qdrant_find`` accepts, parsed and validated.

``{field: value}`` is equality, ``{field: [v1, v2]}`` matches any of the values and
``{field: {"gte": x, "lte": y}}`` is a numeric range. Conditions are ANDed. Backends
translate the parsed :class:`Condition` list into their own filter types.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from knowledge.errors import InvalidInput
from knowledge.validation import has_lone_surrogate

FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}(\.[A-Za-z_][A-Za-z0-9_-]{0,63}){0,3}$")
RANGE_KEYS = frozenset({"gt", "gte", "lt", "lte"})
MAX_CONDITIONS = 16
MAX_ANY_VALUES = 100

Scalar = str | int | bool
# Payload integers are 64-bit in Qdrant; larger ones cannot match anything stored.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Match:
    field: str
    value: Scalar


@dataclass(frozen=True)
class MatchAny:
    field: str
    values: tuple[str, ...] | tuple[int, ...]

    def as_list(self) -> list[str] | list[int]:
        if all(isinstance(v, str) for v in self.values):
            return [str(v) for v in self.values]
        return [int(v) for v in self.values]


@dataclass(frozen=True)
class Range:
    field: str
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


Condition = Match | MatchAny | Range

IndexKind = Literal["keyword", "integer", "float", "bool"]
# Payload indexes per collection: a filter on a field past the cap still works, unindexed,
# so clients inventing field names cannot grow the indexes without bound.
MAX_INDEXED_FIELDS = 32


def index_kind(cond: Condition) -> IndexKind:
    """The payload index that serves a condition, whichever store runs it."""
    if isinstance(cond, Range):
        return "float"
    value = cond.value if isinstance(cond, Match) else cond.values[0]
    if isinstance(value, bool):
        return "bool"
    return "keyword" if isinstance(value, str) else "integer"


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int):
        return INT_MIN <= value <= INT_MAX
    return math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and INT_MIN <= value <= INT_MAX


def _too_big(field: str) -> InvalidInput:
    return InvalidInput(f"Filter on {field!r}: integers must fit in 64 bits.")


def _not_unicode(field: str) -> InvalidInput:
    # Refused here: the engine cannot encode such a string, and failed the whole search.
    return InvalidInput(
        f"Filter on {field!r}: the value is not valid Unicode (it contains a lone "
        "surrogate code point such as \\ud800); send proper UTF-8 text."
    )


def _parse_one(field: str, spec: Any) -> Condition:
    if isinstance(spec, str) and has_lone_surrogate(spec):
        raise _not_unicode(field)
    if isinstance(spec, bool | str):
        return Match(field, spec)
    if isinstance(spec, int):
        if not _is_int(spec):
            raise _too_big(field)
        return Match(field, spec)
    if isinstance(spec, float):
        raise InvalidInput(
            f"Filter on {field!r}: exact match on a decimal number is unreliable; "
            f'use a range such as {{"{field}": {{"gte": {spec}, "lte": {spec}}}}}.'
        )
    if isinstance(spec, list):
        if not spec or len(spec) > MAX_ANY_VALUES:
            raise InvalidInput(
                f"Filter on {field!r}: a list means 'any of these values' and needs "
                f"1 to {MAX_ANY_VALUES} values."
            )
        if all(isinstance(v, str) for v in spec):
            if any(has_lone_surrogate(v) for v in spec):
                raise _not_unicode(field)
            return MatchAny(field, tuple(spec))
        if all(isinstance(v, int) and not isinstance(v, bool) for v in spec):
            if not all(_is_int(v) for v in spec):
                raise _too_big(field)
            return MatchAny(field, tuple(spec))
        raise InvalidInput(f"Filter on {field!r}: list values must be all strings or all integers.")
    if isinstance(spec, Mapping):
        keys = set(spec)
        if not keys or not keys <= RANGE_KEYS:
            raise InvalidInput(
                f"Filter on {field!r}: a range uses the keys gt, gte, lt, lte "
                f"(got {sorted(map(str, keys))})."
            )
        bad = [k for k in keys if not _is_number(spec[k])]
        if bad:
            raise InvalidInput(
                f"Filter on {field!r}: range bounds must be finite numbers that fit in 64 "
                f"bits ({sorted(bad)})."
            )
        bounds = {k: float(spec[k]) for k in keys}
        low = bounds.get("gte", bounds.get("gt"))
        high = bounds.get("lte", bounds.get("lt"))
        if low is not None and high is not None and low > high:
            raise InvalidInput(f"Filter on {field!r}: the lower bound is above the upper bound.")
        return Range(field, **bounds)
    raise InvalidInput(
        f"Filter on {field!r}: expected a string, integer, boolean, a list of values, or "
        f"a range object, got {type(spec).__name__}."
    )


def parse_filter(raw: Mapping[str, Any] | None) -> list[Condition]:
    if not raw:
        return []
    if not isinstance(raw, Mapping):
        raise InvalidInput('A filter is an object such as {"source": "notes.md"}.')
    if len(raw) > MAX_CONDITIONS:
        raise InvalidInput(f"A filter takes at most {MAX_CONDITIONS} fields.")
    conditions = []
    for field, spec in raw.items():
        if not isinstance(field, str) or not FIELD_NAME.fullmatch(field):
            raise InvalidInput(
                f"Filter field {field!r} is not a metadata field name: use letters, digits, "
                "'_' or '-', with '.' for nested fields."
            )
        conditions.append(_parse_one(field, spec))
    return conditions

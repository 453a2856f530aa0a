"""The write boundary's checks on their own: limits named, hostile shapes cheap to refuse."""

from __future__ import annotations

from typing import Any

import pytest

from knowledge.errors import InvalidInput
from knowledge.validation import MetadataLimits, check_metadata, check_text


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def test_depth_is_counted_from_metadata_itself_and_the_limit_is_named() -> None:
    limits = MetadataLimits(max_depth=3)
    assert check_metadata("metadata", nested(3), limits) == nested(3)
    with pytest.raises(InvalidInput, match=r"more than 3 levels deep \(at 'a\.a\.a'\)"):
        check_metadata("metadata", nested(4), limits)
    # Lists count as levels too.
    with pytest.raises(InvalidInput, match="more than 3 levels"):
        check_metadata("metadata", {"a": [[[1]]]}, limits)


def test_hostile_nesting_is_refused_without_python_recursion() -> None:
    with pytest.raises(InvalidInput, match="16 levels"):
        check_metadata("metadata", nested(100_000))
    with pytest.raises(InvalidInput, match="values"):
        check_metadata("metadata", {"l": list(range(1_000_000))})


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"k\udfff": 1}, "valid Unicode"),
        ({"x" * 300: 1}, "at most 256 characters"),
        ({"": 1}, "non-empty strings"),
        ({"a": {1: 2}}, "non-empty strings"),
        ({"n": float("nan")}, "finite"),
        ({"n": float("inf")}, "finite"),
        ({"n": 2**63}, "64 bits"),
        ({"when": object()}, "plain JSON"),
        ([("a", 1)], "object of key/value pairs"),
    ],
)
def test_values_the_engine_cannot_keep_are_refused(metadata: Any, expected: str) -> None:
    with pytest.raises(InvalidInput, match=expected):
        check_metadata("documents[2].metadata", metadata)


def test_the_64_bit_bounds_themselves_are_accepted() -> None:
    ok = {"lo": -(2**63), "hi": 2**63 - 1, "f": 1.5, "none": None, "b": True}
    assert check_metadata("metadata", ok) == ok


def test_text_is_checked_for_emptiness_length_and_unicode() -> None:
    assert check_text("text", "fine", 10) == "fine"
    with pytest.raises(InvalidInput, match="text is empty"):
        check_text("text", "  ", 10)
    with pytest.raises(InvalidInput, match="limit is 10"):
        check_text("text", "x" * 11, 10)
    with pytest.raises(InvalidInput, match="lone surrogate"):
        check_text("text", "bad \ud800", 10)

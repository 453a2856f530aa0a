from __future__ import annotations

from typing import Any

import pytest

from knowledge.errors import InvalidInput
from knowledge.vectorstore.filters import Match, MatchAny, Range, parse_filter


def test_the_three_forms_parse_to_conditions() -> None:
    conditions = parse_filter(
        {
            "source": "a.md",
            "year": 2024,
            "draft": False,
            "tag": ["x", "y"],
            "n": {"gte": 1, "lt": 5},
        }
    )
    assert conditions == [
        Match("source", "a.md"),
        Match("year", 2024),
        Match("draft", False),
        MatchAny("tag", ("x", "y")),
        Range("n", gte=1.0, lt=5.0),
    ]


def test_empty_or_missing_filter_means_no_conditions() -> None:
    assert parse_filter(None) == []
    assert parse_filter({}) == []


def test_nested_field_names_are_allowed() -> None:
    assert parse_filter({"author.name": "Ada"}) == [Match("author.name", "Ada")]


@pytest.mark.parametrize(
    ("raw", "hint"),
    [
        ({"a": 1.5}, "range"),
        ({"a": []}, "1 to 100 values"),
        ({"a": ["x", 1]}, "all strings or all integers"),
        ({"a": {"between": [1, 2]}}, "gt, gte, lt, lte"),
        ({"a": {"gte": "1"}}, "must be finite numbers"),
        ({"a": {"gte": float("nan")}}, "must be finite numbers"),
        ({"a": {"lt": float("inf")}}, "must be finite numbers"),
        ({"a": {"gte": 10**400}}, "must be finite numbers"),
        ({"a": 2**63}, "64 bits"),
        ({"a": [1, -(2**64)]}, "64 bits"),
        ({"a": {"gte": 5, "lte": 1}}, "lower bound is above"),
        ({"a": None}, "expected a string"),
        ({"bad field!": 1}, "not a metadata field name"),
        ({"": 1}, "not a metadata field name"),
        ({"a": "x\ud800"}, "'a': the value is not valid Unicode"),
        ({"a": ["ok", "\udfff"]}, "'a': the value is not valid Unicode"),
        ({f"f{i}": i for i in range(17)}, "at most 16"),
    ],
)
def test_bad_filters_say_what_to_change(raw: dict[str, Any], hint: str) -> None:
    with pytest.raises(InvalidInput, match=hint):
        parse_filter(raw)


def test_a_filter_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidInput, match="is an object"):
        parse_filter(["source", "a.md"])  # type: ignore[arg-type]

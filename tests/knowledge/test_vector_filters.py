"""Metadata filters and paging on both vector store backends (geometry in vector_fixtures.py)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from knowledge.vectorstore.base import VectorStore
from knowledge.vectorstore.filters import Match, parse_filter

# qdrant-client's local mode warns that payload indexes do nothing there; the store still
# creates them because a real server uses them.
from tests.knowledge.vector_fixtures import (
    FLAGGED,
    MANY,
    N,
    at,
    catalogue_meta,
    nums,
    search,
)

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


# --- filters ----------------------------------------------------------------------------------


def field(meta: dict[str, Any], dotted: str) -> Any:
    value: Any = meta
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def matches(raw: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """The filter language's meaning, written plainly, to compute expected hits."""

    def one(value: Any, spec: Any) -> bool:
        if isinstance(spec, list):
            return value in spec and type(value) is type(spec[0])
        if isinstance(spec, dict):
            if not isinstance(value, int | float) or isinstance(value, bool):
                return False
            ops = {
                "gt": value > spec.get("gt", -math.inf),
                "gte": value >= spec.get("gte", -math.inf),
                "lt": value < spec.get("lt", math.inf),
                "lte": value <= spec.get("lte", math.inf),
            }
            return all(ops.values())
        return type(value) is type(spec) and value == spec

    return lambda meta: all(one(field(meta, f), s) for f, s in raw.items())


FILTERS = [
    pytest.param({"source": "b.md"}, id="str"),
    pytest.param({"page": 3}, id="int"),
    pytest.param({"draft": True}, id="bool-true"),
    pytest.param({"draft": False}, id="bool-false"),
    pytest.param({"info.lang": "de"}, id="nested-str"),
    pytest.param({"info.reviewed": True}, id="nested-bool"),
    pytest.param({"tag": ["x", "z"]}, id="any-str"),
    pytest.param({"page": [2, 5, 9, 42]}, id="any-int"),
    pytest.param({"page": {"gte": 2, "lte": 5}}, id="int-gte-lte"),
    pytest.param({"page": {"gt": 2, "lt": 5}}, id="int-gt-lt"),
    pytest.param({"page": {"gte": 7}}, id="int-gte-only"),
    pytest.param({"rank": {"gte": 0.5, "lt": 1.5}}, id="float-gte-lt"),
    pytest.param({"rank": {"gt": 0.5, "lte": 1.5}}, id="float-gt-lte"),
    pytest.param({"rank": {"lt": 0.6}}, id="float-lt-only"),
    pytest.param({"source": "a.md", "page": {"gt": 3}}, id="and-str-range"),
    pytest.param({"tag": ["x", "y"], "source": "b.md"}, id="and-any-str"),
    pytest.param({"draft": True, "source": "b.md"}, id="and-bool-str"),
    pytest.param({"draft": False, "page": {"lte": 5}}, id="and-bool-range"),
    pytest.param({"source": "nowhere.md"}, id="no-match"),
    pytest.param({"page": "3"}, id="str-does-not-match-int"),
]


@pytest.mark.parametrize("raw", FILTERS)
async def test_filters_select_exactly_the_matching_points(
    filled: VectorStore, raw: dict[str, Any]
) -> None:
    keep = matches(raw)
    expected = [i for i in range(N) if keep(catalogue_meta(i))]
    hits = await search(filled, at(0), conditions=parse_filter(raw))
    assert nums(hits) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"source": "a.md"}, id="str"),
        pytest.param({"draft": False}, id="bool"),
        pytest.param({"page": {"gte": 1}}, id="range"),
    ],
)
async def test_filtered_pages_are_disjoint_and_consecutive(
    filled: VectorStore, raw: dict[str, Any]
) -> None:
    keep = matches(raw)
    expected = [i for i in range(N) if keep(catalogue_meta(i))]
    conditions = parse_filter(raw)
    pages = [
        nums(await search(filled, at(0), limit=2, offset=off, conditions=conditions))
        for off in range(0, len(expected) + 2, 2)
    ]
    assert [i for page in pages for i in page] == expected
    assert all(len(page) == 2 for page in pages[: len(expected) // 2])
    assert pages[-1] == []


async def test_filters_combine_with_score_threshold(filled: VectorStore) -> None:
    threshold = math.cos(math.radians(55))  # points 0..5
    hits = await search(filled, at(0), conditions=[Match("draft", True)], score_threshold=threshold)
    assert nums(hits) == [1, 4]


async def test_a_bool_filter_finds_rare_far_points_and_pages_through_them(
    crowded: VectorStore,
) -> None:
    flag = [Match("flag", True)]
    assert nums(await search(crowded, at(0), limit=2, conditions=flag)) == [250, 270]
    assert nums(await search(crowded, at(0), limit=2, offset=2, conditions=flag)) == [280, 299]
    assert nums(await search(crowded, at(0), limit=2, offset=4, conditions=flag)) == []
    assert nums(await search(crowded, at(0), limit=10, conditions=flag)) == list(FLAGGED)


async def test_a_bool_filter_with_an_engine_filter_over_many_points(
    crowded: VectorStore,
) -> None:
    conditions = parse_filter({"flag": True, "source": "far.md"})
    assert nums(await search(crowded, at(0), limit=10, conditions=conditions)) == [270, 280, 299]
    conditions = parse_filter({"flag": True, "page": {"lt": 260}})
    assert nums(await search(crowded, at(0), limit=10, conditions=conditions)) == [250]


async def test_a_false_bool_filter_pages_over_many_points(crowded: VectorStore) -> None:
    unflagged = [p for p in range(MANY) if p not in FLAGGED and p % 50 != 7]
    conditions = [Match("flag", False)]
    seen: list[int] = []
    for offset in range(0, MANY, 40):
        page = nums(await search(crowded, at(0), limit=40, offset=offset, conditions=conditions))
        assert page == unflagged[offset : offset + 40]
        seen.extend(page)
    assert seen == unflagged


async def test_a_bool_filter_respects_the_score_threshold_over_many_points(
    crowded: VectorStore,
) -> None:
    threshold = math.cos(math.radians(137.5))  # keeps points up to 275 (137.5 degrees)
    hits = await search(crowded, at(0), conditions=[Match("flag", True)], score_threshold=threshold)
    assert nums(hits) == [250, 270]

"""Hypothesis strategies for tool arguments: valid ones built from a JSON schema, and the
hostile values that break them.

``from_schema`` turns a tool's ``inputSchema`` into arguments that satisfy it;
``hostile`` and the families below it are what a confused or malicious client sends
instead: wrong types, boundary and out-of-range numbers, huge and deeply nested values,
Unicode edge cases, path and URL tricks. Every value here can be sent by the MCP SDK's
client (see ``SENDABLE_DEPTH``); what it cannot even serialize never reaches a server.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import strategies as st

Strategy = st.SearchStrategy[Any]

# The MCP client serializes a request with pydantic before sending it, and pydantic stops
# at 254 levels of nesting (measured, pydantic 2.14); lone surrogates in object *keys* fail
# there too. Deeper values and such keys cannot be sent through any SDK transport.
SENDABLE_DEPTH = 240
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MB = 1024 * 1024


# -- valid values from a schema -------------------------------------------------------------

SAFE_KEYS = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=12)


def json_scalars() -> Strategy:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(INT64_MIN, INT64_MAX),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=40),
    )


def json_values(max_leaves: int = 12) -> Strategy:
    """Plain JSON the engine can keep: 64-bit integers, finite floats, valid Unicode."""
    return st.recursive(
        json_scalars(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(SAFE_KEYS, inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def from_schema(
    schema: Mapping[str, Any], overrides: Mapping[str, Strategy] | None = None
) -> Strategy:
    """Values that satisfy ``schema`` (the subset pydantic emits for tool arguments).

    ``overrides`` replaces the strategy of the named top-level properties: a schema says
    "string", the tool wants a collection name or a URL.
    """
    return _strategy(schema, dict(overrides or {}), top=True)


def _strategy(schema: Mapping[str, Any], overrides: dict[str, Strategy], top: bool) -> Strategy:
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    if "const" in schema:
        return st.just(schema["const"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([_strategy(s, overrides, top=False) for s in schema[key]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([_strategy({**schema, "type": k}, overrides, top) for k in kind])
    builders: dict[str, Callable[[], Strategy]] = {
        "null": st.none,
        "boolean": st.booleans,
        "integer": lambda: _integers(schema),
        "number": lambda: _numbers(schema),
        "string": lambda: st.text(
            min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 60), 60)
        ),
        "array": lambda: st.lists(
            _strategy(schema.get("items", {}), {}, top=False),
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 4), 4),
        ),
        "object": lambda: _objects(schema, overrides if top else {}),
    }
    if kind in builders:
        return builders[kind]()
    return json_values()


def _integers(schema: Mapping[str, Any]) -> Strategy:
    low = schema.get("minimum", INT64_MIN)
    high = schema.get("maximum", INT64_MAX)
    if "exclusiveMinimum" in schema:
        low = schema["exclusiveMinimum"] + 1
    if "exclusiveMaximum" in schema:
        high = schema["exclusiveMaximum"] - 1
    return st.integers(low, high)


def _numbers(schema: Mapping[str, Any]) -> Strategy:
    return st.floats(
        min_value=schema.get("minimum", schema.get("exclusiveMinimum")),
        max_value=schema.get("maximum", schema.get("exclusiveMaximum")),
        exclude_min="exclusiveMinimum" in schema,
        exclude_max="exclusiveMaximum" in schema,
        allow_nan=False,
        allow_infinity=False,
    )


def _objects(schema: Mapping[str, Any], overrides: dict[str, Strategy]) -> Strategy:
    properties: Mapping[str, Any] = schema.get("properties", {})
    if not properties:
        return st.dictionaries(SAFE_KEYS, json_values(), max_size=4)
    required = set(schema.get("required", ()))
    fields = {
        name: overrides[name] if name in overrides else _strategy(sub, {}, top=False)
        for name, sub in properties.items()
    }

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, strategy in fields.items():
            if name in required or draw(st.booleans()):
                out[name] = draw(strategy)
        return out

    return build()


# -- hostile values ---------------------------------------------------------------------------

WRONG_TYPES: list[Any] = [None, True, False, 0, 1, -1, 1.5, "", "x", [], [1, "a"], {}, {"a": 1}]

BOUNDARY_NUMBERS: list[Any] = [
    0,
    -1,
    1,
    -0.0,
    2**31,
    2**53 + 1,
    INT64_MAX,
    INT64_MAX + 1,
    INT64_MIN,
    INT64_MIN - 1,
    2**64,
    10**400,
    -(10**400),
    1e308,
    -1.7976931348623157e308,
    5e-324,
    0.1,
    # NaN and infinity are not JSON: the client sends them as null, which the types above
    # already cover.
]

UNICODE_EDGES: list[str] = [
    "\x00",
    "a\x00b",
    "\ud800",  # a lone high surrogate
    "\udfff",  # a lone low surrogate
    "cats \ud83d",  # half of an emoji
    "\u202ecod.exe",  # right-to-left override
    "\u200f\u200e",  # RTL / LTR marks
    "\u200b\u200c\u200d\u2060",  # zero-width characters
    "\ufeffBOM",
    "e\u0301",  # combining acute: not NFC
    "A\u030a vs \u00c5",  # the same letter twice, in two normal forms
    "\u0301" * 500,  # combining marks with nothing to combine with
    "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",  # family emoji (ZWJ)
    "\U0010ffff\ufffe\uffff",  # noncharacters
    "\u3000\u00a0\u2028\u2029",  # odd spaces and line separators
    "\r\n\t\x0b\x0c\x1b[31m",  # control characters, an ANSI escape
    "İı ß ﬃ",  # case folding surprises
    "'; DROP TABLE jobs; --",
    "{{7*7}} ${jndi:ldap://x} %s %n",
    "\\u0000 \\ud800",  # escapes as text
]

HUGE_STRINGS: list[str] = [
    "x" * (2 * MB),
    "\u00e9" * MB,  # 2 MB of UTF-8
    "cats " * 50_000,
    "\U0001f600" * 100_000,
]

PATH_TRICKS: list[str] = [
    "../../etc/passwd",
    "/etc/passwd",
    "/etc/shadow",
    "file:///etc/passwd",
    "notes.md\x00.pdf",
    "a\x00b",
    "~/.ssh/id_rsa",
    "~root",
    "..",
    ".",
    "/",
    "//etc//passwd",
    "/proc/self/environ",
    "/dev/zero",
    "/dev/stdin",
    "\\\\server\\share\\file.pdf",
    "C:\\Windows\\win.ini",
    "notes.md/../../../../etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "outside-link/passwd",  # a symlink inside the root that points outside it
    "loop-link",  # a symlink that points at itself
    "subdir",  # a directory, not a file
    "a" * 256,
    "a/" * 2000,
    "notes.md\n",
    "-rf",
    "\u202egpj.md",
    "NUL",
    "CON.md",
]

URL_TRICKS: list[str] = [
    "http://127.0.0.1/",
    "http://127.0.0.1:6379/",  # Redis on this machine
    "http://localhost/",
    "http://localhost./",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[0:0:0:0:0:ffff:7f00:1]/",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://017700000001/",
    "http://127.1/",
    "http://0/",
    "http://0.0.0.0/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://[fe80::1%25eth0]/",
    "http://203.0.113.7/",  # TEST-NET-3: not on the internet
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "file:///etc/passwd",
    "ftp://ftp.example.invalid/",
    "gopher://127.0.0.1:6379/_INFO",
    "http://a@127.0.0.1/",
    "http://example.invalid@127.0.0.1/",
    "http://127.0.0.1#@example.invalid/",
    "http://user:pass@example.invalid/",
    "http://" + "a" * 300 + ".invalid/",
    "http://" + ("a" * 63 + ".") * 4 + "invalid/",
    "http://b\u00fccher.invalid/",
    "http://xn--bcher-kva.invalid/",
    "http://xn--/",
    "http://\u0430pple.invalid/",  # Cyrillic a
    "http://example.invalid:99999/",
    "http://example.invalid:-1/",
    "http://example.invalid:0/",
    "http://[::1/",
    "http:///path-only",
    "http:\\\\127.0.0.1\\",
    "HTTP://127.0.0.1/",
    " http://127.0.0.1/ ",
    "http://127.0.0.1\x00.example.invalid/",
    "http://example.invalid/\r\nHost: 127.0.0.1",
    "//127.0.0.1/",
    "127.0.0.1",
    "https://example.invalid/" + "a" * 3000,
]

UNKNOWN_KEYS: list[str] = [
    "unknown",
    "__proto__",
    "constructor",
    "meta",
    "Query",
    "colection",
    "text ",
    "",
    "\x00",
    "\u200b",
    "a" * 300,
    "\U0001f600",
]


def nested(depth: int, leaf: Any = 1, kind: str = "object") -> Any:
    """``leaf`` inside ``depth`` objects (or lists): built in a loop, not recursion."""
    value = leaf
    for _ in range(depth):
        value = {"a": value} if kind == "object" else [value]
    return value


def deep_values(max_depth: int = SENDABLE_DEPTH) -> Strategy:
    return st.builds(
        nested,
        st.integers(16, max_depth),
        st.sampled_from([1, "x", None, "\ud800"]),
        st.sampled_from(["object", "list"]),
    )


def unicode_text() -> Strategy:
    """Short text mixing the edge cases with ordinary characters."""
    pieces = st.one_of(st.sampled_from(UNICODE_EDGES), st.text(max_size=8))
    return st.lists(pieces, min_size=1, max_size=4).map("".join)


def hostile_scalars() -> Strategy:
    return st.one_of(
        st.sampled_from(WRONG_TYPES),
        st.sampled_from(BOUNDARY_NUMBERS),
        st.sampled_from(UNICODE_EDGES),
        unicode_text(),
        st.sampled_from(PATH_TRICKS),
        st.sampled_from(URL_TRICKS),
    )


def hostile(huge: bool = True) -> Strategy:
    """Any hostile value; ``huge`` adds the multi-megabyte strings (slow to send)."""
    families = [
        hostile_scalars(),
        deep_values(),
        st.dictionaries(st.sampled_from(UNKNOWN_KEYS[:-1]), hostile_scalars(), max_size=3),
        st.lists(hostile_scalars(), max_size=4),
        st.builds(lambda n: {f"k{i}": i for i in range(n)}, st.integers(250, 5000)),
        st.builds(lambda n: list(range(n)), st.integers(100, 20_000)),
    ]
    if huge:
        families.append(st.sampled_from(HUGE_STRINGS))
    return st.one_of(families)


def hostile_for(argument: str) -> Strategy:
    """Hostile values, weighted towards the tricks that suit ``argument``."""
    special: Strategy
    if argument in ("url", "allowed_domains"):
        special = st.sampled_from(URL_TRICKS)
    elif argument in ("source", "filename"):
        special = st.one_of(st.sampled_from(PATH_TRICKS), st.sampled_from(URL_TRICKS))
    else:
        special = st.sampled_from(UNICODE_EDGES)
    if argument == "allowed_domains":
        special = st.lists(
            st.one_of(special, st.sampled_from(UNICODE_EDGES)), min_size=1, max_size=60
        )
    return st.one_of(special, hostile())


def catalogue(argument: str, nested_slot: bool = False) -> list[Any]:
    """Every listed hostile value that suits ``argument``: what a sweep sends one by one.

    A nested slot (inside metadata, a filter, a list) gets the value families that matter
    there: text, numbers, depth, size.
    """
    values: list[Any] = [*BOUNDARY_NUMBERS, *UNICODE_EDGES, HUGE_STRINGS[0]]
    values += [nested(SENDABLE_DEPTH), nested(SENDABLE_DEPTH, "x", kind="list")]
    if not nested_slot:
        values += WRONG_TYPES
    if argument in ("url", "source", "allowed_domains"):
        values += URL_TRICKS
    if argument in ("source", "filename"):
        values += PATH_TRICKS
    return values

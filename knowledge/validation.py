"""What may be written: texts and metadata the engine can store *and read back*.

Every check happens before anything is embedded or written. The limits are far above what
a person writes by accident and well below what breaks a backend: the embedded Qdrant
engine stores a payload nested ~125 levels deep, then fails every search that reads it
("recursion limit exceeded") until the point is removed, and it keeps only 64-bit
integers. Strings must be valid Unicode: a lone surrogate (``"\\ud800"`` in JSON) cannot
be encoded for the engine, the embedder or the job store.

The walk over metadata is iterative, so hostile nesting costs a bounded loop, never
Python's recursion limit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from knowledge.errors import InvalidInput

# Payload integers are 64-bit signed in Qdrant; larger ones cannot be stored.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class MetadataLimits:
    max_bytes: int = 16_384  # serialized as UTF-8 JSON
    max_depth: int = 16  # objects and lists nested in metadata, metadata itself counted
    max_keys: int = 256  # keys of every object in it, all levels together
    max_key_chars: int = 256


DEFAULT_METADATA_LIMITS = MetadataLimits()
# What every write is checked against, whoever built the metadata (the pipeline adds its
# own keys to a request's): what the engine needs to read it back. The entry points hold
# callers to DEFAULT_METADATA_LIMITS, the policy.
WRITE_LIMITS = MetadataLimits(max_keys=4096, max_bytes=1024 * 1024, max_key_chars=4096)


def has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def find_lone_surrogate(value: Any) -> str | None:
    """The dotted path of the first string (value or key) in ``value`` that is not valid
    Unicode, "" for ``value`` itself, or None when every string is valid."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if has_lone_surrogate(item):
                return where
        elif isinstance(item, Mapping):
            for key, child in item.items():
                name = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and has_lone_surrogate(key):
                    return name.encode("utf-8", "backslashreplace").decode()
                stack.append((child, name))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
    return None


def check_unicode(where: str, text: str) -> str:
    if has_lone_surrogate(text):
        raise InvalidInput(
            f"{where} is not valid Unicode: it contains a lone surrogate code point "
            "(such as \\ud800); send text as proper UTF-8."
        )
    return text


def _path(parts: tuple[str, ...]) -> str:
    if not parts:
        return "(top level)"
    return "".join(p if p.startswith("[") else f".{p}" for p in parts).lstrip(".")


def _check_value(where: str, parts: tuple[str, ...], value: Any) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise InvalidInput(
                f"{where} field {_path(parts)!r}: integers must fit in 64 bits "
                f"(between {INT_MIN} and {INT_MAX}); store a larger number as a string."
            )
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(
                f"{where} field {_path(parts)!r}: numbers must be finite "
                "(plain JSON has no NaN or infinity)."
            )
    elif isinstance(value, str):
        if has_lone_surrogate(value):
            check_unicode(f"{where} field {_path(parts)!r}", value)
    else:
        raise InvalidInput(
            f"{where} field {_path(parts)!r} is a {type(value).__name__}; metadata holds "
            "strings, numbers, booleans, null, lists and objects (plain JSON)."
        )


def _check_tree(where: str, metadata: Mapping[str, Any], limits: MetadataLimits) -> None:
    keys = values = 0
    # (value, depth of the container holding it, path to it)
    stack: list[tuple[Any, int, tuple[str, ...]]] = [(metadata, 1, ())]
    while stack:
        value, depth, parts = stack.pop()
        values += 1
        if values > limits.max_bytes:  # every JSON value takes a byte at least
            raise InvalidInput(
                f"{where} holds more than {limits.max_bytes} values; its JSON cannot fit "
                f"the limit of {limits.max_bytes} bytes. Keep metadata to short fields."
            )
        if isinstance(value, Mapping | list | tuple):
            if depth > limits.max_depth:
                raise InvalidInput(
                    f"{where} nests objects or lists more than {limits.max_depth} levels "
                    f"deep (at {_path(parts)!r}); the limit is {limits.max_depth}. "
                    "Flatten it, e.g. into keys such as 'section_title'."
                )
            if isinstance(value, Mapping):
                keys += len(value)
                if keys > limits.max_keys:
                    raise InvalidInput(
                        f"{where} has more than {limits.max_keys} keys (all levels together); "
                        "keep metadata to short descriptive fields."
                    )
                for key, item in value.items():
                    if not isinstance(key, str) or not key:
                        raise InvalidInput(
                            f"{where} keys must be non-empty strings (at {_path(parts)!r})."
                        )
                    if len(key) > limits.max_key_chars or has_lone_surrogate(key):
                        shown = key[:40].encode("utf-8", "backslashreplace").decode()
                        more = "..." if len(key) > 40 else ""
                        raise InvalidInput(
                            f"{where} key {shown!r}{more} must be valid Unicode of at most "
                            f"{limits.max_key_chars} characters."
                        )
                    stack.append((item, depth + 1, (*parts, key)))
            else:
                for index, item in enumerate(value):
                    stack.append((item, depth + 1, (*parts, f"[{index}]")))
        else:
            _check_value(where, parts, value)


def check_metadata(
    where: str, metadata: Any, limits: MetadataLimits = DEFAULT_METADATA_LIMITS
) -> dict[str, Any]:
    """``metadata`` as a dict if the engine can store and read it back; else InvalidInput.

    ``where`` names it in messages: "metadata", "documents[3].metadata".
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInput(f"{where} must be an object of key/value pairs.")
    _check_tree(where, metadata, limits)
    size = len(json.dumps(metadata, ensure_ascii=False).encode())
    if size > limits.max_bytes:
        raise InvalidInput(
            f"{where} is {size} bytes as JSON; the limit is {limits.max_bytes}. Keep "
            "metadata to short descriptive fields."
        )
    return dict(metadata)


def check_text(where: str, text: Any, max_chars: int) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"{where} is empty; give the text to store.")
    if len(text) > max_chars:
        raise InvalidInput(
            f"{where} has {len(text)} characters; the limit is {max_chars}. "
            "Split long documents into passages and store them as a batch."
        )
    return check_unicode(where, text)

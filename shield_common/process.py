"""What every process does at start: read its settings or say what is wrong, and refuse
to serve an open network without a token."""

from __future__ import annotations

import ipaddress
import sys
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

S = TypeVar("S", bound="BaseSettings")


def load_settings(cls: type[S]) -> S | None:
    """The process's settings, or None after printing one line per bad variable."""
    from pydantic import ValidationError

    try:
        return cls()
    except ValidationError as exc:
        problems = "; ".join(
            f"SHIELD_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        print(f"shield-mcp: bad configuration: {problems}", file=sys.stderr)
        return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refuse_exposed(host: str, token: object, allowed: bool, variable: str) -> bool:
    """True (after saying why) when ``host`` is reachable from elsewhere without a token."""
    if is_loopback(host) or token is not None or allowed:
        return False
    print(
        f"shield-mcp: refusing to serve on {host} without authentication. Set "
        f"{variable}, bind 127.0.0.1, or pass --allow-unauthenticated.",
        file=sys.stderr,
    )
    return True


def fail(message: str) -> int:
    """One line on stderr (stdout may be the MCP stdio channel); exit code 2."""
    print(f"shield-mcp: {message}", file=sys.stderr)
    return 2

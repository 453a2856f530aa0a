"""The docling child runs at the background nice value it is given (SHIELD_BACKGROUND_NICE),
so converting never takes the CPU from the requests of the process that started it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from orchestrator.pipeline.convert.converter import Converter

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-process nice via /proc")


def nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


@pytest.mark.slow  # starts a docling child of its own (~8 s of imports)
@pytest.mark.timeout(240)
async def test_the_child_takes_the_nice_value_it_is_given() -> None:
    conv = Converter(timeout=60.0, max_tokens=256, nice=6)
    try:
        chunks = await conv.chunk_markdown("# Niced\n\nConverted at a lower priority.", "n")
        assert conv.pid is not None
        assert nice_of(conv.pid) == 6
        assert "lower priority" in chunks[0].text
    finally:
        await conv.aclose()


async def test_by_default_the_child_runs_at_its_parents_priority(converter: Converter) -> None:
    await converter.chunk_markdown("# Plain\n\nConverted as before.", "p")
    assert converter.pid is not None
    assert nice_of(converter.pid) == nice_of(os.getpid())

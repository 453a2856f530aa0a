"""The stage clock: explicit stages, and the embedding and store time the knowledge
service reports through the real embedder and store (wired as a worker wires them)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from knowledge.service import Document
from knowledge.settings import KnowledgeSettings
from knowledge.wiring import build_service
from orchestrator.pipeline.stages import StageClock


async def test_the_service_s_time_is_booked_as_embed_and_upsert_outside_explicit_stages(
    data_dir: Path,
) -> None:
    service = build_service(KnowledgeSettings(data_dir=data_dir))
    clock = StageClock()
    try:
        with clock.listening():
            await service.store_documents([Document("Booked as embed and upsert.", {})])
            booked = clock.take()
            with clock.stage("lightrag"):  # LightRAG embeds and stores through it too
                await service.store_documents([Document("Booked as LightRAG's time.", {})])
            inside = clock.take()
        await service.store_documents([Document("Not listened to.", {})])
    finally:
        await service.close()

    assert set(booked) == {"embed", "upsert"}
    assert set(inside) == {"lightrag"}
    assert clock.take() == {}


async def test_stages_of_concurrent_tasks_add_up() -> None:
    clock = StageClock()

    async def page(stage: str) -> None:
        with clock.stage(stage):
            await asyncio.sleep(0)

    await asyncio.gather(*(page("fetch") for _ in range(3)), page("chunk"))
    seconds = clock.take()
    assert set(seconds) == {"fetch", "chunk"}
    assert all(value >= 0 for value in seconds.values())
    assert clock.take() == {}

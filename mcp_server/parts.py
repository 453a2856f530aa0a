"""The server's long-lived parts: its knowledge service and its orchestrator link, started
and stopped together (the workers write through the service: they stop first)."""

from __future__ import annotations

from knowledge.service import KnowledgeService
from knowledge.wiring import KnowledgeHandle
from mcp_server.orchestrator_link import OrchestratorLink


class ServerParts:
    def __init__(self, knowledge: KnowledgeHandle, orchestrator: OrchestratorLink) -> None:
        self.knowledge = knowledge
        self.orchestrator = orchestrator

    def service(self) -> KnowledgeService:
        """Cheap: takes the data-dir lock, builds objects; loads no model, opens no shard."""
        return self.knowledge.open()

    def start_orchestrator(self) -> None:
        """Starts the orchestrator link in the background (needs a running event loop)."""
        self.orchestrator.start(self.service())

    async def stop(self) -> None:
        await self.orchestrator.stop()
        await self.knowledge.close()

"""The server's long-lived parts: its knowledge service, its orchestrator link and (with a
remote orchestrator) its dependency probes, started and stopped together (the workers
write through the service: they stop first)."""

from __future__ import annotations

from knowledge.service import KnowledgeService
from knowledge.wiring import KnowledgeHandle
from mcp_server.orchestrator_link import OrchestratorLink
from shield_common.probes import Prober


class ServerParts:
    def __init__(
        self,
        knowledge: KnowledgeHandle,
        orchestrator: OrchestratorLink,
        probes: Prober | None = None,
    ) -> None:
        self.knowledge = knowledge
        self.orchestrator = orchestrator
        # With the orchestrator in this process, its runtime probes the dependencies.
        self.probes = probes

    def service(self) -> KnowledgeService:
        """Cheap: takes the data-dir lock, builds objects; loads no model, opens no shard."""
        return self.knowledge.open()

    def start_orchestrator(self) -> None:
        """Starts the orchestrator link in the background (needs a running event loop)."""
        self.orchestrator.start(self.service())

    def start_probes(self) -> None:
        """Starts probing in the background (needs a running event loop)."""
        if self.probes is not None:
            self.probes.start()

    async def stop(self) -> None:
        if self.probes is not None:
            await self.probes.stop()
        await self.orchestrator.stop()
        await self.knowledge.close()

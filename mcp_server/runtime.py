"""Owns the knowledge service, the orchestrator link and the data-dir lock of the server process."""

from __future__ import annotations

from knowledge.datadir import DataDirLock
from knowledge.service import KnowledgeService
from knowledge.wiring import build_service, check_installed
from mcp_server.orchestration import OrchestratorLink
from mcp_server.settings import ServerSettings


class Runtime:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._lock: DataDirLock | None = None
        self.service: KnowledgeService | None = None
        self.orchestrator = OrchestratorLink(settings)

    def start(self) -> KnowledgeService:
        """Cheap: takes the data-dir lock, builds objects; loads no model, opens no shard."""
        if self.service is None:
            check_installed(self.settings)
            if not self.settings.qdrant_url:
                self._lock = DataDirLock(self.settings.data_dir)
                self._lock.acquire()
            self.service = build_service(self.settings)
        return self.service

    def start_orchestrator(self) -> None:
        """Starts the orchestrator link in the background (needs a running event loop)."""
        self.orchestrator.start(self.start())

    async def stop(self) -> None:
        # Workers write through the service: stop them before closing it.
        await self.orchestrator.stop()
        if self.service is not None:
            await self.service.close()
            self.service = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

"""One process per data directory: an advisory lock taken at start-up.

The embedded Qdrant engine locks each shard's WAL, but only when a shard is opened,
which can be long after start-up and gives a cryptic error. Taking a lock on the data
directory itself makes a second server (say Claude Desktop's stdio server while
``make serve`` runs) fail at once with a message that says what to do.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from knowledge.errors import DataDirInUse


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / "shield.lock"
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the process lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise DataDirInUse(
                f"The data directory {self.data_dir} is in use by another shield-mcp process "
                f"(pid {holder}); the embedded store admits one process. Stop that process, "
                "connect to it instead (streamable HTTP at its /mcp), set SHIELD_DATA_DIR to "
                "another directory, or use a Qdrant server with SHIELD_QDRANT_URL."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

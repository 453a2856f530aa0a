"""A TCP relay in front of a real service: cutting it is an outage of that service for
whoever connects through it, without touching the service other tests share."""

from __future__ import annotations

import asyncio
import contextlib

from tests.support import bound_socket


class Relay:
    """Forwards 127.0.0.1:<port> to ``target``. ``cut()`` drops every connection and hangs up
    on new ones at once (the client sees the server go away) until ``restore()``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._sock = bound_socket()
        self.port = int(self._sock.getsockname()[1])
        self._server: asyncio.Server | None = None
        self._open = False
        self._pipes: set[asyncio.Task[None]] = set()

    async def restore(self) -> None:
        self._open = True
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, sock=self._sock)

    async def cut(self) -> None:
        self._open = False
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def close(self) -> None:
        await self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if not self._open or task is None:
            writer.close()
            return
        self._pipes.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._pipes.discard(task)
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError):
            writer.close()

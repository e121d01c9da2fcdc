"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for tests that post thousands of requests.

httpx spends about a millisecond of CPU per request, which on a 2-core machine
shared with drip's processes makes the client, not drip, the bottleneck.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import msgspec


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    async def post_json(self, path: str, body: object) -> tuple[int, object]:
        return await self.post_raw(path, msgspec.json.encode(body))

    async def post_raw(self, path: str, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, object]:
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(data)}\r\n\r\n".encode() + data
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = next(int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:"))
        payload = await self.reader.readexactly(length)
        return status, msgspec.json.decode(payload) if payload else None

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@asynccontextmanager
async def pool(url: str, size: int):
    """`size` open connections to `url`, handed out through an asyncio.Queue."""
    parts = urlsplit(url)
    free: asyncio.Queue[Connection] = asyncio.Queue()
    connections = []
    for _ in range(size):
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        connections.append(Connection(reader, writer, parts.netloc))
        free.put_nowait(connections[-1])
    try:
        yield free
    finally:
        for c in connections:
            await c.close()


async def post_json(free: asyncio.Queue[Connection], path: str, body: object) -> tuple[int, object]:
    return await post_raw(free, path, msgspec.json.encode(body))


async def post_raw(free: asyncio.Queue[Connection], path: str, data: bytes,
                   headers: dict[str, str] | None = None) -> tuple[int, object]:
    connection = await free.get()
    try:
        return await connection.post_raw(path, data, headers)
    finally:
        free.put_nowait(connection)

"""A minimal HTTP/1.1 client on raw keep-alive connections, for the serving benchmarks.

Why not httpx or aiohttp: a load generator must spend less CPU per request than the server it
measures, on the same 2 cores. This one writes a request prepared once as bytes and reads the
answer with two stream calls (head, then `Content-Length` bytes); it keeps one connection open per
`Connection` and reopens it after the server closes it. It speaks only what the two servers
answer: `Content-Length` bodies (no chunked encoding, no TLS).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass


def event_loop_policy() -> None:
    """uvloop when it is installed (the serve extra brings it), as the servers use it too."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def request_bytes(method: str, path: str, host: str, body: bytes = b"", content_type: str | None = None,
                  headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Answer:
    status: int
    headers: dict[str, str]     # names in lower case
    body: bytes


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: bytes) -> Answer:
        """One request and its answer; raises ConnectionError (or asyncio.IncompleteReadError)
        when the connection fails, after which the next call opens a new one."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0][9:12])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        except BaseException:
            self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Answer(status, headers, body)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

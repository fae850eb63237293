"""The HTTP/1.1 protocol `passgate serve` runs: uvicorn's httptools protocol plus the limits it lacks.

uvicorn (with httptools, its fastest parser) reads a request head of any size, waits for a head or a
body forever (`timeout_keep_alive` only covers the idle time between requests), and keeps every
connection it accepts until the process runs out of file descriptors, after which no one is answered.
This subclass adds, per worker process:

- `PASSGATE_MAX_HEADER_BYTES`: a request head (request line and headers) over it is answered
  `431 Request Header Fields Too Large` (RFC 6585 §5) as soon as that many bytes have arrived without
  the head ending, so a huge header is never read whole;
- `PASSGATE_HEADER_TIMEOUT`: a request head not complete this many seconds after its first byte gets
  `408 Request Timeout` (RFC 9110 §15.5.9) and the connection is closed: slowloris;
- `PASSGATE_IDLE_TIMEOUT`: a new connection that sends nothing is closed after it. Browsers open
  connections ahead of need and use them seconds later (Chromium keeps an unused one 10 s), so this is
  longer than the header timeout: closing one just as the browser sends on it fails that request;
- `PASSGATE_BODY_TIMEOUT`: the same for a request body that has not fully arrived this many seconds
  after its head;
- `PASSGATE_MAX_CONNECTIONS`: when a new connection would exceed it, the oldest connection that has no
  request in progress (still sending its head, or idle between requests) is closed to make room, as
  nginx reuses idle keep-alive connections when it runs out; when there is none, the new connection
  gets `503 Service Unavailable`. The limit is kept under the process's open-file limit, which
  `passgate serve` raises to its hard maximum first.

Each answer written here carries the security headers the app's answers carry (`guard.answer_headers`).
WebSocket connections keep only the connection limit: their messages are bounded by the WebSocket layer
(`ws_max_size`) and their ceremonies by `PASSGATE_CEREMONY_TIMEOUT_MS`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from dataclasses import dataclass
from functools import cache
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from passgate.config import Settings, load_settings
from passgate.web.guard import answer_headers

log = logging.getLogger("passgate.server")
RESERVED_FILES = 64  # descriptors kept for the database, static files, logs and the listening sockets
PROTOCOL = "passgate.web.server:BoundedHttpToolsProtocol"  # uvicorn's `http=` (imported in each worker)


@dataclass(frozen=True, slots=True)
class Limits:
    max_header_bytes: int
    header_timeout: float
    idle_timeout: float
    body_timeout: float
    max_connections: int
    headers: bytes  # the security headers, as header lines for the answers written here

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        lines = b"".join(name + b": " + value + b"\r\n" for name, value in answer_headers(settings))
        return cls(
            max_header_bytes=settings.max_header_bytes,
            header_timeout=settings.header_timeout,
            idle_timeout=settings.idle_timeout,
            body_timeout=settings.body_timeout,
            max_connections=max(8, min(settings.max_connections, open_file_limit() - RESERVED_FILES)),
            headers=lines,
        )


@cache
def process_limits() -> Limits:
    """This worker's limits, read once from the same environment the app reads."""
    return Limits.from_settings(load_settings())


def open_file_limit() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard one (workers inherit it), as the Go runtime
    does at start-up; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit from %s", soft)
    return open_file_limit()


class HeadTooLarge(Exception):
    """Raised inside the parser's headers-complete callback; uvicorn turns it into `send_400_response`."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """One connection. Its state, besides uvicorn's: reading a head (`_in_head`, with `_head_bytes`
    received so far), waiting for the rest of a body (`_in_body`), and one timer for whichever applies.
    A request that arrives whole in one read arms no timer at all (forward-auth's case)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = process_limits()
        self._in_head = True
        self._in_body = False
        self._head_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._refusal = 400
        self._opened = 0.0

    # Connection lifecycle

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        room = _make_room(self.connections, self.limits.max_connections)
        super().connection_made(CorkedTransport(transport, self.loop))  # type: ignore[arg-type]
        self._opened = self.loop.time()
        if not room:
            self._answer(503, "busy", "The server is busy. Try again in a moment.")
            return
        self._timer = self.loop.call_later(self.limits.idle_timeout, self._timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            if not self._head_bytes and self._timer is not None:
                self._cancel()  # the idle timer of a new connection: the head's own starts now
            self._head_bytes += len(data)
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._in_head:
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse_head()
            elif self._timer is None and self._head_bytes:
                self._timer = self.loop.call_later(self.limits.header_timeout, self._timed_out)
        elif self._in_body and self._timer is None:
            self._timer = self.loop.call_later(self.limits.body_timeout, self._timed_out)

    def handle_websocket_upgrade(self) -> None:
        self._cancel()
        self._in_head = self._in_body = False
        super().handle_websocket_upgrade()

    # Parser callbacks

    def on_headers_complete(self) -> None:
        self._cancel()
        self._in_head = False
        limit = self.limits.max_header_bytes
        if self._head_bytes > limit and self._head_size() > limit:
            self._refusal = 431
            raise HeadTooLarge
        self._in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._cancel()
        self._in_body = False
        self._in_head = True
        self._head_bytes = 0
        super().on_message_complete()

    # Answers written here

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to an unparsable request, and the way out of the parser for `HeadTooLarge`."""
        if self._refusal == 431:
            self._refuse_head()
        else:
            self._answer(400, "bad_request", "The request could not be parsed.")

    def _refuse_head(self) -> None:
        self._answer(431, "headers_too_large", "The request headers are too large.")

    def _timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._in_head and not self._head_bytes:  # an idle connection: nothing to answer
            self.transport.close()
            return
        self._answer(408, "request_timeout", "The request took too long to arrive.")

    def _answer(self, status: int, code: str, message: str) -> None:
        """Write a complete JSON error answer (unless a response has started) and close the connection."""
        self._cancel()
        if self.cycle is None or not self.cycle.response_started:
            body = json.dumps({"error": message, "code": code}).encode()
            self.transport.write(
                b"".join(
                    [
                        STATUS_LINE[status],
                        b"content-type: application/json\r\ncontent-length: ",
                        str(len(body)).encode(),
                        b"\r\nconnection: close\r\n",
                        self.limits.headers,
                        b"\r\n",
                        body,
                    ]
                )
            )
        self.transport.close()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_size(self) -> int:
        """The exact size of the head just parsed (only computed when the bytes received exceed the limit:
        a read that ends a head may carry a body too)."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers) + 16

    @property
    def idle(self) -> bool:
        """No request in progress: still sending its head, or waiting between requests."""
        return self._in_head and (self.cycle is None or self.cycle.response_complete)


class CorkedTransport:
    """The connection's transport, with the writes of one event-loop turn sent as one.

    uvicorn writes a response's head and its body with one `transport.write` each, and with
    `TCP_NODELAY` each is a `send` system call and a TCP segment of its own: on loopback that second
    call cost more CPU than all of `GET /auth/me`'s own work (docs/performance.md). Here the writes made
    while a response is being answered are held and sent together at the end of the loop's turn, or at
    once when the connection closes. Everything else is the transport itself."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def _flush(self) -> None:
        held, self._held = self._held, []
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _make_room(connections: set[Any], limit: int) -> bool:
    """Whether a new connection fits; closes the oldest idle connection when that makes it fit."""
    if len(connections) < limit:
        return True
    idle = [c for c in connections if isinstance(c, BoundedHttpToolsProtocol) and c.idle]
    if not idle:
        log.warning("connection limit (%d) reached with every connection busy", limit)
        return False
    oldest = min(idle, key=lambda connection: connection._opened)
    connections.discard(oldest)
    oldest.transport.close()
    return True

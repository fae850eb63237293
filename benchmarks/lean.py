"""The lean load driver: keep-alive HTTP/1.1 on a bare asyncio protocol, requests as prebuilt bytes, and
an assertion signer that does only what a sign-in needs.

On a 2-core machine the driver shares the cores with the server it measures. With server CPU `s` and
driver CPU `c` per sign-in, two workers can reach at most `2s / (s + c)` of one worker's sign-ins per
second, so `c` has to be a small fraction of `s`. What makes it small here:

- `LeanConnection` is an `asyncio.Protocol`: one future per request, the response head split only
  for its status, `Content-Length` and the one cookie wanted (no header dictionary, no stream reader);
- requests are bytes built from prebuilt parts (`Endpoint`), never formatted per header;
- `FastSigner` signs an assertion with the credential's key and the parts of `credential.toJSON()`
  that never change (ids, user handle, rpIdHash, origin) built once: per sign-in it finds the challenge
  in the options with one regex, builds `clientDataJSON` by concatenation, signs (ECDSA P-256, ~16 µs
  in `cryptography`) and base64url-encodes three values. `tests/softkey.py` stays the reference: the
  smoke test checks the two give the same `clientDataJSON` and `authenticatorData`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from softkey import BE, BS, UP, UV, SoftAuthenticator, SoftCredential

CHALLENGE = re.compile(rb'"challenge"\s*:\s*"([A-Za-z0-9_-]+)')
_ECDSA = ec.ECDSA(hashes.SHA256())


class HttpError(Exception):
    pass


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


# --------------------------------------------------------------------------- requests


class Endpoint:
    """One server's request prefix: `Host` and `Origin` as a browser on `origin` sends them."""

    def __init__(self, port: int, origin: str):
        self.port = port
        self.origin = origin
        self.fixed = f"HTTP/1.1\r\nHost: localhost:{port}\r\nOrigin: {origin}\r\n".encode("latin-1")

    def post(self, path: str | bytes, body: bytes) -> bytes:
        path = path.encode() if isinstance(path, str) else path
        return (
            b"POST "
            + path
            + b" "
            + self.fixed
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    def get(self, path: str | bytes, cookie: bytes = b"") -> bytes:
        path = path.encode() if isinstance(path, str) else path
        return (
            b"GET " + path + b" " + self.fixed + (b"Cookie: " + cookie + b"\r\n" if cookie else b"") + b"\r\n"
        )


def status_of(head: bytes) -> int:
    return int(head[9:12])


def cookie_of(head: bytes, name: bytes) -> bytes | None:
    """The value of `Set-Cookie: <name>=…` in a response head (header names in any case)."""
    marker = b"\r\nset-cookie: " + name.lower() + b"="
    start = head.lower().find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = len(head)
    for stop in (b";", b"\r\n"):
        found = head.find(stop, start)
        if 0 <= found < end:
            end = found
    return head[start:end]


# --------------------------------------------------------------------------- the connection


class LeanConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time. `request(data)` resolves to the raw
    response head (status line and headers, without the blank line) and the body."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[bytes, bytes]] | None = None
        self._head_end = -1
        self._length = -1  # body length; -2: chunked

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> LeanConnection:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(cls, host, port)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return protocol

    @property
    def local_port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(HttpError(f"connection closed: {exc or 'by the server'}"))

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if self._head_end < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self._head_end = end + 4
            head = bytes(buffer[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 17)
                self._length = int(head[at + 17 : stop if stop >= 0 else None])
            elif b"\r\ntransfer-encoding: chunked" in head:
                self._length = -2
            else:
                self._length = 0  # 204, 304: no body
        if self._length >= 0:
            total = self._head_end + self._length
            if len(buffer) < total:
                return
            body = bytes(buffer[self._head_end : total])
        elif buffer.endswith(b"0\r\n\r\n"):
            body = _dechunk(bytes(buffer[self._head_end :]))
        else:
            return
        head = bytes(buffer[: self._head_end - 4])
        buffer.clear()
        self._head_end = self._length = -1
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((head, body))

    def request(self, data: bytes) -> asyncio.Future[tuple[bytes, bytes]]:
        if self.transport is None or self.transport.is_closing():
            raise HttpError("connection closed")
        waiter: asyncio.Future[tuple[bytes, bytes]] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self.transport.write(data)
        return waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None


def _dechunk(data: bytes) -> bytes:
    out, at = bytearray(), 0
    while True:
        line_end = data.index(b"\r\n", at)
        size = int(data[at:line_end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[line_end + 2 : line_end + 2 + size]
        at = line_end + 2 + size + 2


class Client:
    """A connection slot that reopens its connection after an error."""

    def __init__(self, port: int):
        self.port = port
        self.connection: LeanConnection | None = None

    async def request(self, data: bytes) -> tuple[bytes, bytes]:
        connection = self.connection
        if connection is None or connection.transport is None:
            connection = self.connection = await LeanConnection.open(self.port)
        return await connection.request(data)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


# --------------------------------------------------------------------------- the signer


class FastSigner:
    """`navigator.credentials.get()` + `toJSON()` for one credential of a `SoftAuthenticator`, as bytes:
    what `SoftAuthenticator.get(options, origin=…)` returns for honest options, at a fraction of the
    cost. The sign count lives on the `SoftCredential`, so both can be used on the same credential."""

    def __init__(self, credential: SoftCredential, origin: str, rp_id: str, *, user_verified: bool = True):
        if credential.alg != "ES256":
            raise ValueError("FastSigner signs ES256 only")
        self.credential = credential
        self.key = credential.private_key
        flags = UP | (UV if user_verified else 0)
        flags |= (BE if credential.backup_eligible else 0) | (BS if credential.backup_state else 0)
        self.rp_hash_flags = hashlib.sha256(rp_id.encode()).digest() + bytes([flags])
        credential_id = b64(credential.credential_id)
        self.client_data_head = b'{"type":"webauthn.get","challenge":"'
        self.client_data_tail = b'","origin":"' + origin.encode() + b'","crossOrigin":false}'
        self.head = (
            b'{"id":"'
            + credential_id
            + b'","rawId":"'
            + credential_id
            + b'","type":"public-key","response":{"clientDataJSON":"'
        )
        handle = b'","userHandle":"' + b64(credential.user_handle) if credential.user_handle else b""
        self.tail = handle + b'"},"authenticatorAttachment":"platform","clientExtensionResults":{}}'

    def assertion(self, challenge: bytes) -> bytes:
        """The assertion JSON for a base64url challenge (as the options carry it)."""
        credential = self.credential
        credential.sign_count += 1
        authenticator_data = self.rp_hash_flags + credential.sign_count.to_bytes(4, "big")
        client_data = self.client_data_head + challenge + self.client_data_tail
        signature = self.key.sign(authenticator_data + hashlib.sha256(client_data).digest(), _ECDSA)
        return (
            self.head
            + b64(client_data)
            + b'","authenticatorData":"'
            + b64(authenticator_data)
            + b'","signature":"'
            + b64(signature)
            + self.tail
        )

    def for_options(self, options_body: bytes) -> bytes:
        found = CHALLENGE.search(options_body)
        if found is None:
            raise HttpError(f"no challenge in the options: {options_body[:200]!r}")
        return self.assertion(found.group(1))


@dataclass
class Account:
    """One account on one server: its passkey, its signer once registered, its latest session cookie."""

    name: str
    authenticator: SoftAuthenticator = field(default_factory=lambda: SoftAuthenticator("ES256"))
    signer: FastSigner | None = None
    cookie: bytes = b""
    me_request: bytes = b""  # rebuilt when the cookie changes
    extra: dict[str, bytes] = field(default_factory=dict)  # prebuilt requests, per server


# --------------------------------------------------------------------------- which worker has a connection


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def connection_owner(server_port: int, client_port: int, pids: Sequence[int]) -> int | None:
    """The pid (of `pids`) holding the server side of the TCP connection from `client_port` to
    `server_port` on 127.0.0.1, from /proc/net/tcp and /proc/<pid>/fd; None if not (yet) accepted."""
    local = f"0100007F:{server_port:04X}"
    remote = f"0100007F:{client_port:04X}"
    inode = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                inode = fields[9]
                break
    if inode is None:
        return None
    for pid in pids:
        if inode in _socket_inodes(pid):
            return pid
    return None


async def balanced_clients(
    port: int, count: int, workers: Sequence[int], probe: bytes, attempts: int = 400
) -> tuple[list[Client], dict[int, int]]:
    """`count` connections spread evenly over the worker processes `workers` (the kernel hands a new
    connection to whichever worker accepts first, so a few connections opened at once can land 6/2).
    Each new connection answers `probe` first (so it has been accepted), then is kept or reopened.
    Returns the clients and how many landed on each worker."""
    share = -(-count // max(1, len(workers)))
    landed = dict.fromkeys(workers, 0)
    clients: list[Client] = []
    tries = 0
    while len(clients) < count:
        client = Client(port)
        await client.request(probe)
        assert client.connection is not None
        owner = connection_owner(port, client.connection.local_port, workers)
        tries += 1
        if owner is not None and (landed[owner] < share or tries >= attempts):
            landed[owner] += 1
            clients.append(client)
        elif owner is None and tries >= attempts:
            clients.append(client)  # not found in /proc: keep it rather than loop forever
        else:
            client.close()
            await asyncio.sleep(0.002)
    return clients, landed

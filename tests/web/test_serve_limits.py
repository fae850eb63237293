"""`passgate serve` bounds what a client can make it hold: request heads (431 before the head is read
whole), the time a head or a body may take to arrive (408), connections (the oldest idle one makes room
for a new one), and WebSocket messages (close 1009 from the frame header, before buffering). Every
answer it writes itself carries the security headers. Against a real server, with small limits."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

from appkit import make_settings
from passgate.errors import ConfigError
from servers import RunningServer, start_passgate

SECURITY = ("x-content-type-options", "x-frame-options", "referrer-policy", "content-security-policy")
TIMEOUT = 1.0  # PASSGATE_HEADER_TIMEOUT, _BODY_TIMEOUT and _IDLE_TIMEOUT for these servers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {name: str(TIMEOUT) for name in ("PASSGATE_HEADER_TIMEOUT", "PASSGATE_BODY_TIMEOUT")}
    env["PASSGATE_IDLE_TIMEOUT"] = str(TIMEOUT * 2)
    with start_passgate(tmp_path_factory.mktemp("limits"), env=env) as running:
        yield running
    log = running.output()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]


def _connect(server: RunningServer) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client


def _read_answer(client: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the one answer on `client` (the server closes after it)."""
    data = b""
    while chunk := client.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def _assert_answer(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> None:
    got, headers, body = answer
    assert got == status, answer
    assert f'"code": "{code}"' in body.decode(), body
    assert all(name in headers for name in SECURITY), headers


def test_a_huge_header_gets_431_before_it_is_read_whole(server: RunningServer) -> None:
    client = _connect(server)
    client.sendall(b"GET /auth/me HTTP/1.1\r\nHost: localhost\r\nCookie: a=")
    sent = 0
    while sent < 16 * 1024 * 1024 and not select.select([client], [], [], 0.02)[0]:
        client.sendall(b"b" * 8192)
        sent += 8192
    _assert_answer(_read_answer(client), 431, "headers_too_large")
    assert sent < 128 * 1024  # refused at the limit (64 KiB by default), not after reading 16 MiB


def test_a_whole_head_over_the_limit_gets_431_and_one_under_it_works(server: RunningServer) -> None:
    client = _connect(server)
    client.sendall(b"GET /auth/me HTTP/1.1\r\nHost: localhost\r\nCookie: a=" + b"b" * 100_000 + b"\r\n\r\n")
    _assert_answer(_read_answer(client), 431, "headers_too_large")
    big_but_fine = httpx.get(f"{server.url}/auth/me", headers={"cookie": "a=" + "b" * 40_000})
    assert big_but_fine.status_code == 401 and big_but_fine.json()["code"] == "not_authenticated"


def test_a_slow_head_is_dropped_after_the_header_timeout(server: RunningServer) -> None:
    client = _connect(server)
    started = time.monotonic()
    for byte in b"GET /auth/me HTTP/1.1\r\nHost: localhost\r\nX-Slow: yes":  # a byte at a time: slowloris
        if select.select([client], [], [], 0.1)[0]:
            break
        client.send(bytes([byte]))
    _assert_answer(_read_answer(client), 408, "request_timeout")
    assert TIMEOUT * 0.9 < time.monotonic() - started < TIMEOUT + 2


def test_a_partial_body_is_dropped_after_the_body_timeout(server: RunningServer) -> None:
    client = _connect(server)
    started = time.monotonic()
    client.sendall(
        b"POST /auth/login/begin HTTP/1.1\r\nHost: localhost\r\nOrigin: " + server.origin.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    _assert_answer(_read_answer(client), 408, "request_timeout")
    assert TIMEOUT * 0.9 < time.monotonic() - started < TIMEOUT + 2


def test_an_idle_connection_is_closed_after_the_idle_timeout(server: RunningServer) -> None:
    client = _connect(server)
    started = time.monotonic()
    assert client.recv(100) == b""  # closed without an answer: nothing was asked
    assert TIMEOUT * 1.8 < time.monotonic() - started < TIMEOUT * 2 + 2


def test_the_header_timeout_counts_from_the_first_byte(server: RunningServer) -> None:
    client = _connect(server)
    time.sleep(TIMEOUT * 1.5)  # idle for longer than the header timeout, less than the idle timeout
    started = time.monotonic()
    client.sendall(b"GET /auth/me HTTP/1.1\r\nHost: localhost\r\n")
    _assert_answer(_read_answer(client), 408, "request_timeout")
    assert TIMEOUT * 0.9 < time.monotonic() - started < TIMEOUT + 2


@pytest.mark.parametrize(
    "target",
    [
        b"/auth/%D0%B6.b.c",
        "/auth/ж.b.c".encode(),
        b"/auth/%FF.%FE.c",
        b"/auth/a%00.b.c",
        b"/auth/K%E2%84%AAite.b.c",  # a Kelvin sign lower-cases to ASCII k
        b"/%FF",
        b"/static/%2e%2e/%2e%2e/etc/passwd",
        b"/static/%FF",
        b"/auth/ws/register_new",
        b"/docs/%C0%AF",
        b"/auth/me?%FF=%FE",
        b"/auth/forward-auth?rule=%FF",
        b"/" + b"a" * 8000,
        b"/auth/\x7f",
        b"*",
        b"http://evil.example/auth/me",
    ],
)
def test_odd_paths_get_a_clean_answer_with_the_security_headers(server: RunningServer, target: bytes) -> None:
    client = _connect(server)
    client.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    status, headers, body = _read_answer(client)
    assert 200 <= status < 500, (status, body)
    assert all(name in headers for name in SECURITY), headers
    assert b"Traceback" not in body


def test_many_half_open_connections_do_not_starve_real_requests(tmp_path: Path) -> None:
    """With 256 open files (a small host's default is 1024) and a long header timeout, 300 connections
    that never finish their head used to leave no descriptor to accept anyone else."""
    env = {"PASSGATE_HEADER_TIMEOUT": "60", "PASSGATE_MAX_CONNECTIONS": "100"}
    with start_passgate(tmp_path, env=env, open_files=256) as limited:
        idle = []
        for _ in range(300):
            client = socket.create_connection(("127.0.0.1", limited.port), timeout=5)
            client.sendall(b"GET /auth/me HTTP/1.1\r\nHost: localhost\r\n")
            idle.append(client)
        with httpx.Client(timeout=3) as http:
            answers = [http.get(f"{limited.url}/auth/me").status_code for _ in range(5)]
        assert answers == [401] * 5
        for client in idle:
            client.close()


def _rss(server: RunningServer) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_websocket_message_over_the_limit_is_refused_before_it_is_buffered(server: RunningServer) -> None:
    url = f"ws://127.0.0.1:{server.port}/auth/ws/add_device_credential"
    before = _rss(server)
    started = time.monotonic()
    for _ in range(8):
        with connect(url, origin=server.origin, max_size=None) as ws:
            with pytest.raises(ConnectionClosedError) as closed:
                ws.send("a" * (16 * 1024 * 1024))
                ws.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert time.monotonic() - started < 10
    assert _rss(server) - before < 32 * 1024 * 1024  # 8 messages of 16 MiB were never held


def test_a_websocket_outlives_the_http_timeouts(server: RunningServer) -> None:
    url = f"ws://127.0.0.1:{server.port}/auth/ws/authenticate"
    with connect(url, origin=server.origin) as ws:
        assert "publicKey" in ws.recv(timeout=5)
        time.sleep(TIMEOUT * 1.5)
        ws.send(b"\x00binary")
        assert json.loads(ws.recv(timeout=5))["code"] == "binary_not_supported"
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("header_timeout", 0),
        ("body_timeout", -1),
        ("idle_timeout", 0),
        ("max_header_bytes", 100),
        ("max_connections", 1),
    ],
)
def test_limits_out_of_range_stop_start_up(tmp_path: Path, setting: str, value: int) -> None:
    with pytest.raises(ConfigError, match=f"PASSGATE_{setting.upper()}"):
        make_settings(tmp_path, **{setting: value})

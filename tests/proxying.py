"""Real nginx and Caddy in front of a header-echoing app, gated by a real `passgate serve`.

Fixtures for `tests/proxy/` (imported by the test modules, not a conftest: every `conftest.py` outside
a package is the module `conftest`, and test modules import the root one by that name).

The proxies run the documented configurations (`docs/proxies/nginx.conf`, `docs/proxies/Caddyfile`)
with only the addresses, nginx's host name and certificate paths replaced (and, for `caddy-plain`, the
`?` removed from `uri`). Locally a missing nginx/Caddy skips; under `CI=true` it fails.

The app behind them echoes what it received and names the handler it would run, routing by prefix the
way some app reads the path (`gatekit.app_routes_to`): `admin` for anything under `/admin`.

    def test_x(gated: Gated) -> None:           # parametrised: nginx, caddy
        person = gated.person()                  # a browser: cookie jar + software authenticator
        person.sign_up()                         # through Passgate's /auth API
        response = person.get(gated.app_url + "/page")
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest

from flows import unique_name
from gatekit import app_routes_to
from servers import RunningServer, free_port, start_passgate
from softkey import SoftAuthenticator

DOCS = Path(__file__).resolve().parents[1] / "docs" / "proxies"
IN_CI = os.environ.get("CI", "").lower() == "true"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
CADDY = shutil.which("caddy")
WINDOW = 1  # PASSGATE_REVOCATION_WINDOW for these tests, seconds
RULES = {
    "admin": {"host": "localhost", "path": "/admin", "groups": ["admins"]},
    "fresh": {"path": "/fresh", "max_age": 2},
}
PASSGATE_ENV = {
    "PASSGATE_TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
    "PASSGATE_REVOCATION_WINDOW": str(WINDOW),
    "PASSGATE_FORWARD_AUTH_RULES": json.dumps(RULES),
}


def require(tool: str | None, name: str) -> str:
    if tool is None:
        if IN_CI:
            pytest.fail(f"{name} is required under CI=true (apt-get install {name})")
        pytest.skip(f"{name} is not installed")
    return tool


# --------------------------------------------------------------------------- the upstream app


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with the method, path, headers and handler (`admin` or `other`), as JSON."""

    def _answer(self) -> None:
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "handler": "admin" if app_routes_to("/admin", self.path) else "other",
                "headers": [[k.lower(), v] for k, v in self.headers.items()],
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


# --------------------------------------------------------------------------- Passgate


@pytest.fixture(scope="module")
def passgate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_passgate(tmp_path_factory.mktemp("passgate"), env=PASSGATE_ENV) as server:
        yield server


# --------------------------------------------------------------------------- the proxies


def nginx_config(*, port: int, passgate_port: int, app_port: int, cert: Path, key: Path) -> str:
    text = (DOCS / "nginx.conf").read_text(encoding="utf-8")
    replacements = {
        "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
        "listen 443 ssl default_server;": f"listen 127.0.0.1:{port} ssl default_server;",
        "server_name app.example.com;": "server_name localhost;",
        "/etc/ssl/app.example.com.crt": str(cert),
        "/etc/ssl/app.example.com.key": str(key),
        "http://127.0.0.1:8000/": f"http://127.0.0.1:{passgate_port}/",
        "http://127.0.0.1:3000;": f"http://127.0.0.1:{app_port};",
    }
    return _replace(text, replacements)


def caddy_config(*, port: int, passgate_port: int, app_port: int, plain: bool = False) -> str:
    """The documented Caddyfile; `plain`: with `uri /auth/forward-auth` (no `?`), as Caddy's docs show."""
    text = (DOCS / "Caddyfile").read_text(encoding="utf-8")
    replacements = {
        "app.example.com {": f"http://localhost:{port} {{",
        "forward_auth 127.0.0.1:8000 {": f"forward_auth 127.0.0.1:{passgate_port} {{",
        "reverse_proxy 127.0.0.1:3000 {": f"reverse_proxy 127.0.0.1:{app_port} {{",
    }
    if plain:
        replacements["uri /auth/forward-auth?\n"] = "uri /auth/forward-auth\n"
    return "{\n\tadmin off\n}\n\n" + _replace(text, replacements)


def _replace(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert text.count(old) == 1, f"the documented config no longer has exactly one {old!r}"
        text = text.replace(old, new)
    return text


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from passgate.cli import cert

    cert(out=directory, days=2)
    return directory / "cert.pem", directory / "key.pem"


@contextlib.contextmanager
def _process(command: list[str], cwd: Path, port: int, env: dict[str, str] | None = None) -> Iterator[None]:
    log = (cwd / "proxy.log").open("wb")
    process = subprocess.Popen(
        command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    try:
        _wait_port(process, port, cwd / "proxy.log")
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


def _wait_port(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    import socket

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"proxy exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"proxy did not listen on {port}:\n{log.read_text(errors='replace')[-3000:]}")


@contextlib.contextmanager
def run_nginx(directory: Path, *, passgate_port: int, app_port: int) -> Iterator[str]:
    binary = require(NGINX, "nginx")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cert, key = _self_signed(directory)
    (directory / "app.conf").write_text(
        nginx_config(port=port, passgate_port=passgate_port, app_port=app_port, cert=cert, key=key)
    )
    temp = {name: directory / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    main = [
        "user root;" if os.geteuid() == 0 else "",
        "worker_processes 1;",
        f"pid {directory / 'nginx.pid'};",
        f"error_log {directory / 'error.log'} info;",
        "events { worker_connections 256; }",
        "http {",
        "  access_log off;",
        *(f"  {name}_temp_path {path};" for name, path in temp.items() if name != "body"),
        f"  client_body_temp_path {temp['body']};",
        f"  include {directory / 'app.conf'};",
        "}",
    ]
    (directory / "nginx.conf").write_text("\n".join(main) + "\n")
    command = [binary, "-p", str(directory), "-c", str(directory / "nginx.conf"), "-g", "daemon off;"]
    with _process(command, directory, port):
        yield f"https://localhost:{port}"


@contextlib.contextmanager
def run_caddy(directory: Path, *, passgate_port: int, app_port: int, plain: bool = False) -> Iterator[str]:
    binary = require(CADDY, "caddy")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (directory / "Caddyfile").write_text(
        caddy_config(port=port, passgate_port=passgate_port, app_port=app_port, plain=plain)
    )
    env = {
        **os.environ,
        "HOME": str(directory),
        "XDG_DATA_HOME": str(directory),
        "XDG_CONFIG_HOME": str(directory),
    }
    command = [binary, "run", "--config", str(directory / "Caddyfile"), "--adapter", "caddyfile"]
    with _process(command, directory, port, env):
        yield f"http://localhost:{port}"


# --------------------------------------------------------------------------- a person with a browser


RAW_TIMEOUTS = {"timeout": {"connect": 10.0, "read": 10.0, "write": 10.0, "pool": 10.0}}


class Person:
    """One browser: a cookie jar shared by Passgate and the app (same host, ports differ) and a passkey."""

    def __init__(self, passgate: RunningServer, authenticator: SoftAuthenticator | None = None):
        self.passgate = passgate
        self.authenticator = authenticator or SoftAuthenticator()
        self.http = httpx.Client(verify=False, timeout=10, follow_redirects=False)  # own test certificate
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        self._raw = httpcore.ConnectionPool(ssl_context=context)
        self.user_name = ""

    def close(self) -> None:
        self.http.close()
        self._raw.close()

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(url, **kwargs)

    def get_raw(self, base: str, target: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """GET `target` byte for byte (httpx resolves `..` in URLs), with this person's cookies."""
        url = httpx.URL(base)
        sent = {"host": url.netloc.decode(), "accept": "*/*", **(headers or {})}
        cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in self.http.cookies.jar)
        if cookies:
            sent["cookie"] = cookies
        port = url.port or (443 if url.scheme == "https" else 80)
        raw_url = httpcore.URL(scheme=url.scheme, host=url.host, port=port, target=target.encode())
        answer = self._raw.request("GET", raw_url, headers=list(sent.items()), extensions=RAW_TIMEOUTS)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.content)

    def api(self, path: str, body: Any = None) -> httpx.Response:
        origin = self.passgate.url
        return self.http.post(
            origin + path, json=body if body is not None else {}, headers={"origin": origin}
        )

    def sign_up(self, user_name: str | None = None) -> str:
        self.user_name = user_name or unique_name()
        begin = self.api("/auth/register/begin", {"user_name": self.user_name})
        assert begin.status_code == 200, begin.text
        finish = self.api(
            "/auth/register/finish", self.authenticator.create(begin.json(), origin=self.passgate.url)
        )
        assert finish.status_code == 200, finish.text
        return self.user_name

    def sign_in(self) -> None:
        """Usernameless sign-in, or the re-check of the current session when signed in."""
        begin = self.api("/auth/login/begin", {})
        assert begin.status_code == 200, begin.text
        finish = self.api(
            "/auth/login/finish", self.authenticator.get(begin.json(), origin=self.passgate.url)
        )
        assert finish.status_code == 200, finish.text

    def upstream_headers(self, response: httpx.Response) -> dict[str, list[str]]:
        assert response.status_code == 200, (response.status_code, response.text[:500])
        headers: dict[str, list[str]] = {}
        for name, value in response.json()["headers"]:
            headers.setdefault(name, []).append(value)
        return headers


@dataclass
class Gated:
    proxy: str
    app_url: str
    passgate: RunningServer
    people: list[Person]
    window: float = WINDOW

    def person(self, authenticator: SoftAuthenticator | None = None) -> Person:
        person = Person(self.passgate, authenticator)
        self.people.append(person)
        return person

    def admin(self, *args: str) -> None:
        """Run `passgate …` against the server's database (like an administrator would)."""
        from servers import passgate_command

        result = subprocess.run(
            passgate_command(*args),
            env=self.passgate.env,
            cwd=self.passgate.data_dir.parent,
            capture_output=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode(errors="replace")


PROXIES: dict[str, Callable[..., contextlib.AbstractContextManager[str]]] = {
    "nginx": run_nginx,
    "caddy": run_caddy,
}


@pytest.fixture(scope="module", params=sorted(PROXIES))
def proxy_url(
    request: pytest.FixtureRequest,
    passgate: RunningServer,
    upstream: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    name: str = request.param
    with PROXIES[name](tmp_path_factory.mktemp(name), passgate_port=passgate.port, app_port=upstream) as url:
        yield name, url


@pytest.fixture
def gated(proxy_url: tuple[str, str], passgate: RunningServer) -> Iterator[Gated]:
    name, url = proxy_url
    gated = Gated(proxy=name, app_url=url, passgate=passgate, people=[])
    yield gated
    for person in gated.people:
        person.close()


@pytest.fixture(scope="module")
def nginx_in_front(
    upstream: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[RunningServer], str]]:
    """`nginx_in_front(server)` → the URL of nginx (documented config) gating the echo app with `server`."""
    with contextlib.ExitStack() as stack:

        def start(server: RunningServer) -> str:
            directory = tmp_path_factory.mktemp("nginx")
            return stack.enter_context(run_nginx(directory, passgate_port=server.port, app_port=upstream))

        yield start


@pytest.fixture(scope="module")
def plain_caddy(
    passgate: RunningServer, upstream: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gated]:
    """Caddy with `uri /auth/forward-auth` (no `?`): it passes the app's query string on to Passgate."""
    directory = tmp_path_factory.mktemp("caddy-plain")
    with run_caddy(directory, passgate_port=passgate.port, app_port=upstream, plain=True) as url:
        gated = Gated(proxy="caddy-plain", app_url=url, passgate=passgate, people=[])
        yield gated
        for person in gated.people:
            person.close()

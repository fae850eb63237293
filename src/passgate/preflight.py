"""What `passgate serve` checks before it starts listening: the port (free, and the one people are told to
open), the TLS files, and whether the data directory is new. Each mistake is one ConfigError sentence
naming the setting or option and the fix, instead of uvicorn's traceback after a banner."""

from __future__ import annotations

import errno
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from passgate.config import Settings
from passgate.errors import ConfigError

DEFAULT_PORTS = {"http": 80, "https": 443}


def check_serve(settings: Settings, ssl_certfile: Path | None, ssl_keyfile: Path | None) -> list[str]:
    """Raise ConfigError for a mistake that would stop or mislead `serve`; return notices to print."""
    tls = check_tls_files(ssl_certfile, ssl_keyfile)
    check_public_port(settings, tls=tls)
    check_port_free(settings.host, settings.port)
    return data_dir_notices(settings)


def check_tls_files(certfile: Path | None, keyfile: Path | None) -> bool:
    """True when TLS is configured; both files must be given, readable and a matching pair."""
    if certfile is None and keyfile is None:
        return False
    if certfile is None or keyfile is None:
        given, missing = (
            ("--ssl-certfile", "--ssl-keyfile") if certfile else ("--ssl-keyfile", "--ssl-certfile")
        )
        raise ConfigError(
            f"{given} needs {missing} too (`passgate cert` writes both into the data directory)."
        )
    for option, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if not path.is_file():
            raise ConfigError(f"{option} {str(path)!r} is not a file; run `passgate cert` or fix the path.")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except PermissionError:
        raise ConfigError(
            f"--ssl-keyfile {str(keyfile)!r} cannot be read by this user; fix its owner or permissions."
        ) from None
    except (ssl.SSLError, OSError):
        raise ConfigError(
            f"--ssl-certfile {str(certfile)!r} and --ssl-keyfile {str(keyfile)!r} are not a PEM certificate "
            "and its private key; give the pair `passgate cert` (or your CA) wrote."
        ) from None
    return True


def _is_local(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def check_public_port(settings: Settings, *, tls: bool) -> None:
    """When people open Passgate directly on localhost, one of the addresses they are told must be the one
    this process serves: its port, and its scheme."""
    if settings.trusted_proxies:
        return  # behind a proxy: the proxy's port and scheme are what people use
    scheme = "https" if tls else "http"
    local = [urlsplit(url) for url in dict.fromkeys([settings.public_url, *settings.origins])]
    local = [parts for parts in local if _is_local((parts.hostname or "").lower())]
    explicit = [parts for parts in local if parts.port is not None]
    if not explicit or len(explicit) < len(local):
        return  # a real domain, or a default port (80/443) that a proxy on this machine may serve
    served = [parts for parts in local if (parts.port or DEFAULT_PORTS.get(parts.scheme)) == settings.port]
    if not served:
        first = local[0]
        raise ConfigError(
            f"Passgate would listen on port {settings.port} (--port / PASSGATE_PORT), but PASSGATE_ORIGINS / "
            f"PASSGATE_PUBLIC_URL tell people to open {first.geturl()}: use the same port in both, "
            f"e.g. PASSGATE_ORIGINS={first.scheme}://{first.hostname}:{settings.port} (or set "
            f"PASSGATE_TRUSTED_PROXIES when a proxy on port {first.port} forwards to Passgate)."
        )
    if all(parts.scheme != scheme for parts in served):
        wrong = served[0]
        fix = (
            "add --ssl-certfile and --ssl-keyfile (see `passgate cert`)"
            if wrong.scheme == "https"
            else f"set PASSGATE_ORIGINS=https://{wrong.netloc}"
        )
        raise ConfigError(
            f"PASSGATE_ORIGINS / PASSGATE_PUBLIC_URL say {wrong.geturl()}, but this port would speak "
            f"{scheme}://: {fix}."
        )


def check_port_free(host: str, port: int) -> None:
    """Bind and release the address uvicorn is about to use, turning OSError into a sentence."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise ConfigError(
            f"PASSGATE_HOST / --host {host!r} is not an address of this machine; use 127.0.0.1, 0.0.0.0 or "
            "one of its addresses."
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(_bind_problem(host, port, exc)) from None


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"Port {port} on {host} is already in use (another Passgate, or another program): stop it, or "
            "choose a free port with --port / PASSGATE_PORT and change PASSGATE_ORIGINS to match."
        )
    if exc.errno == errno.EACCES:
        return (
            f"Port {port} needs administrator rights on this system: use a port above 1023 with --port / "
            "PASSGATE_PORT, behind a proxy on 443 (see docs/production.md)."
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"PASSGATE_HOST / --host {host!r} is not an address of this machine; use 127.0.0.1, 0.0.0.0 or "
            "one of its addresses."
        )
    return (
        f"Cannot listen on {host}:{port} ({exc.strerror}); check --host and --port "
        "(PASSGATE_HOST, PASSGATE_PORT)."
    )


def data_dir_notices(settings: Settings) -> list[str]:
    """A start on a new, empty SQLite database says where it is, since a different working directory or
    data dir silently means a different server."""
    if settings.database_url:
        return []
    database = settings.data_dir / "passgate.db"
    if database.exists():
        return [f"Data: {settings.data_dir}"]
    return [
        f"Data: {settings.data_dir} (new: no accounts yet). If you expected existing accounts, set "
        "PASSGATE_DATA_DIR to the full path of the directory that holds passgate.db."
    ]

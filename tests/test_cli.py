"""The `passgate` command: doctor, keys, user, cert, migrate, start-up refusals, and `serve` itself
(https with `passgate cert`, several workers, and keep-alive responses without Nagle stalls)."""

from __future__ import annotations

import json
import re
import socket
import ssl
import statistics
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from typer.testing import Result

from appkit import app_client, make_settings
from commands import run
from flows import ORIGIN, Passkeys, unique_name
from passgate.services.context import Context
from passgate.services.tokens import key_id
from servers import free_port, passgate_command, server_env, start_passgate
from softkey import SoftAuthenticator

UNREACHABLE_DB = "postgresql://postgres@127.0.0.1:1/x"
QR_BLOCKS = re.compile("[█▀▄]{8,}")


# ---------------------------------------------------------------- doctor and bad configuration


def test_doctor_prints_masked_configuration_and_checks(data_dir: Path) -> None:
    secret = "z" * 40
    result = run(
        "doctor",
        env={"PASSGATE_SECRET_KEYS": secret, "PASSGATE_DATABASE_URL": f"sqlite:///{data_dir / 'x.db'}"},
    )
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    assert "[1 key(s) from environment]" in result.output
    assert "PASSGATE_RP_ID" in result.output and "localhost" in result.output
    for check in ("configuration is valid", "origins belong to the RP ID", "cookies", "database reachable"):
        assert re.search(rf"✔ {check}", result.output), check
    assert "✘" not in result.output


def test_doctor_masks_database_passwords(data_dir: Path) -> None:
    result = run("doctor", env={"PASSGATE_DATABASE_URL": "postgresql://admin:hunter2secret@127.0.0.1:1/db"})
    assert "hunter2secret" not in result.output
    assert result.exit_code != 0
    assert "✘ database reachable" in result.output
    assert "PASSGATE_DATABASE_URL" in result.output


@pytest.mark.postgres
def test_doctor_checks_the_url_with_the_servers_driver_too(data_dir: Path, postgres_url: str) -> None:
    """libpq takes `keepalives`; asyncpg, which serves the requests, would send it to the server as a
    setting, which the server refuses: doctor says so before `passgate serve` would."""
    result = run("doctor", env={"PASSGATE_DATABASE_URL": f"{postgres_url}?keepalives=1"})
    assert result.exit_code != 0
    assert "✘ database reachable" in result.output
    assert "asyncpg" in result.output and "keepalives" in result.output


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"PASSGATE_ORIGINS": "http://example.com"}, ["PASSGATE_RP_ID", "PASSGATE_ORIGINS"]),
        ({"PASSGATE_RP_ID": "example.com", "PASSGATE_ORIGINS": "http://example.com"}, ["https://"]),
        (
            {"PASSGATE_RP_ID": "example.com", "PASSGATE_ORIGINS": "https://evil.com"},
            ["PASSGATE_RP_ID", "evil.com"],
        ),
        ({"PASSGATE_RP_ID": "https://example.com"}, ["PASSGATE_RP_ID", "bare domain"]),
        ({"PASSGATE_SECRET_KEYS": "short"}, ["PASSGATE_SECRET_KEYS", "passgate keys generate"]),
        ({"PASSGATE_SECRET_KEYS": ""}, ["PASSGATE_SECRET_KEYS"]),
    ],
)
def test_bad_configuration_is_refused_with_the_fix(
    data_dir: Path, env: dict[str, str], names: list[str]
) -> None:
    doctor = run("doctor", env=env)
    assert doctor.exit_code != 0
    assert "✘ configuration" in doctor.output
    serve = run("serve", env=env)
    assert serve.exit_code == 2
    for result in (doctor, serve):
        for name in names:
            assert name in result.output, (name, result.output)
        assert "Traceback" not in result.output


RULES = "PASSGATE_FORWARD_AUTH_RULES"
TENANTS = "PASSGATE_PASSKEY_TENANTS"


def _tenant(**settings: object) -> str:
    """PASSGATE_PASSKEY_TENANTS declaring one tenant (what a [passkey_tenants.<uuid>] table holds)."""
    return json.dumps({"5b0e7a3a-8d4e-4b8a-9f3e-1a2b3c4d5e6f": settings})


# (what is wrong, environment, the setting or option the message must name). Every one of these must give
# a sentence from `doctor`, `serve` and `user list`, never a traceback.
BAD_CONFIGURATIONS: list[tuple[str, dict[str, str], str]] = [
    (
        "database url typo",
        {"PASSGATE_DATABASE_URL": "postgress://u:pw@127.0.0.1/db"},
        "PASSGATE_DATABASE_URL",
    ),
    ("unsupported database", {"PASSGATE_DATABASE_URL": "mysql://u@127.0.0.1/db"}, "PASSGATE_DATABASE_URL"),
    ("database path, not url", {"PASSGATE_DATABASE_URL": "/var/lib/passgate.db"}, "PASSGATE_DATABASE_URL"),
    ("database port", {"PASSGATE_DATABASE_URL": "postgresql://u@h:five/db"}, "PASSGATE_DATABASE_URL"),
    ("redis without scheme", {"PASSGATE_REDIS_URL": "127.0.0.1:6379"}, "PASSGATE_REDIS_URL"),
    ("redis scheme", {"PASSGATE_REDIS_URL": "http://127.0.0.1:6379"}, "PASSGATE_REDIS_URL"),
    ("public url without scheme", {"PASSGATE_PUBLIC_URL": "localhost:8000"}, "PASSGATE_PUBLIC_URL"),
    ("public url elsewhere", {"PASSGATE_PUBLIC_URL": "https://evil.example"}, "PASSGATE_PUBLIC_URL"),
    ("origin scheme", {"PASSGATE_ORIGINS": "ftp://localhost:8000"}, "PASSGATE_ORIGINS"),
    (
        "http origin off localhost",
        {"PASSGATE_RP_ID": "example.com", "PASSGATE_ORIGINS": "http://example.com"},
        "PASSGATE_ORIGINS",
    ),
    ("origin with a path", {"PASSGATE_ORIGINS": "http://localhost:8000/app"}, "PASSGATE_ORIGINS"),
    ("origin port", {"PASSGATE_ORIGINS": "http://localhost:99999"}, "PASSGATE_ORIGINS"),
    ("origin json", {"PASSGATE_ORIGINS": '["http://localhost:8000"'}, "PASSGATE_ORIGINS"),
    (
        "origin outside rp id",
        {"PASSGATE_RP_ID": "example.com", "PASSGATE_ORIGINS": "https://evil.com"},
        "PASSGATE_RP_ID",
    ),
    ("port not a number", {"PASSGATE_PORT": "eighty"}, "PASSGATE_PORT"),
    ("port too high", {"PASSGATE_PORT": "70000"}, "PASSGATE_PORT"),
    ("rp id with scheme", {"PASSGATE_RP_ID": "https://example.com"}, "PASSGATE_RP_ID"),
    ("rp id is an ip", {"PASSGATE_RP_ID": "127.0.0.1"}, "PASSGATE_RP_ID"),
    (
        "secret keys file missing",
        {"PASSGATE_SECRET_KEYS_FILE": "/nonexistent/keys"},
        "PASSGATE_SECRET_KEYS_FILE",
    ),
    ("secret key too short", {"PASSGATE_SECRET_KEYS": "short"}, "PASSGATE_SECRET_KEYS"),
    ("cookie domain public suffix", {"PASSGATE_COOKIE_DOMAIN": "co.uk"}, "PASSGATE_COOKIE_DOMAIN"),
    ("cookie domain elsewhere", {"PASSGATE_COOKIE_DOMAIN": "example.org"}, "PASSGATE_COOKIE_DOMAIN"),
    (
        "cookie domain with scheme",
        {"PASSGATE_COOKIE_DOMAIN": "https://example.com"},
        "PASSGATE_COOKIE_DOMAIN",
    ),
    ("trusted proxy", {"PASSGATE_TRUSTED_PROXIES": "my-proxy"}, "PASSGATE_TRUSTED_PROXIES"),
    (
        "return host with scheme",
        {"PASSGATE_RETURN_HOSTS": "https://app.example.com"},
        "PASSGATE_RETURN_HOSTS",
    ),
    ("rules json", {RULES: "{admins: {groups: [admins]}}"}, RULES),
    ("rules unknown key", {RULES: '{"admins": {"grups": ["admins"]}}'}, RULES),
    ("rules group name", {RULES: '{"admins": {"groups": ["Admins Team"]}}'}, RULES),
    ("rules name", {RULES: '{"my rule": {"users": ["ada"]}}'}, RULES),
    ("rules not an object", {RULES: '["admins"]'}, RULES),
    ("rate limit", {"PASSGATE_RATE_LIMIT": "lots"}, "PASSGATE_RATE_LIMIT"),
    ("challenge ttl", {"PASSGATE_CHALLENGE_TTL": "5"}, "PASSGATE_CHALLENGE_TTL"),
    ("body limit", {"PASSGATE_MAX_BODY_BYTES": "100"}, "PASSGATE_MAX_BODY_BYTES"),
    (
        "idle over max age",
        {"PASSGATE_SESSION_IDLE_TIMEOUT": "9000", "PASSGATE_SESSION_MAX_AGE": "600"},
        "PASSGATE_SESSION_IDLE_TIMEOUT",
    ),
    ("user verification", {"PASSGATE_USER_VERIFICATION": "always"}, "PASSGATE_USER_VERIFICATION"),
    ("algorithm", {"PASSGATE_ALGORITHMS": "ES256,RS1"}, "PASSGATE_ALGORITHMS"),
    ("boolean", {"PASSGATE_REGISTRATION_OPEN": "maybe"}, "PASSGATE_REGISTRATION_OPEN"),
    ("config file missing", {"PASSGATE_CONFIG": "/nonexistent/passgate.toml"}, "PASSGATE_CONFIG"),
    ("tenant id not a uuid", {TENANTS: '{"shop": {"rp_id": "shop.example"}}'}, TENANTS),
    ("tenant id reserved", {TENANTS: json.dumps({str(uuid.UUID(int=0)): {"rp_id": "a.example"}})}, TENANTS),
    ("tenant without rp id", {TENANTS: _tenant(name="Shop")}, TENANTS),
    ("tenant rp id with scheme", {TENANTS: _tenant(rp_id="https://shop.example")}, TENANTS),
    (
        "tenant origin outside",
        {TENANTS: _tenant(rp_id="shop.example", origins=["https://evil.example"])},
        TENANTS,
    ),
    (
        "tenant http origin",
        {TENANTS: _tenant(rp_id="shop.example", origins=["http://shop.example"])},
        TENANTS,
    ),
    ("tenant unknown key", {TENANTS: _tenant(rp_id="shop.example", origin="https://shop.example")}, TENANTS),
    ("tenant api key in the file", {TENANTS: _tenant(rp_id="shop.example", api_key="k" * 88)}, TENANTS),
    (
        "tenant user verification",
        {TENANTS: _tenant(rp_id="shop.example", user_verification="always")},
        TENANTS,
    ),
    ("tenant timeout", {TENANTS: _tenant(rp_id="shop.example", timeout_ms=5)}, TENANTS),
    ("tenant resident key", {TENANTS: _tenant(rp_id="shop.example", resident_key="always")}, TENANTS),
    ("tenant attestation", {TENANTS: _tenant(rp_id="shop.example", attestation="enterprise")}, TENANTS),
    ("tenants not a table", {TENANTS: '["shop"]'}, TENANTS),
    ("tenants json", {TENANTS: '{"shop": '}, TENANTS),
]


def _assert_one_sentence(result: Result, name: str) -> None:
    assert result.exit_code in (1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert name in result.output, result.output


@pytest.mark.parametrize(
    ("env", "name"), [case[1:] for case in BAD_CONFIGURATIONS], ids=[c[0] for c in BAD_CONFIGURATIONS]
)
def test_every_bad_configuration_is_one_sentence_from_every_command(
    data_dir: Path, env: dict[str, str], name: str
) -> None:
    for command in (["doctor"], ["serve"], ["user", "list"], ["migrate"]):
        result = run(*command, env=env)
        _assert_one_sentence(result, name)
        sentences = [
            line for line in result.output.splitlines() if name in line and not line.startswith("✘ ")
        ]
        assert sentences, (command, result.output)  # a sentence naming it, not only the table's mark
    doctor = run("doctor", env=env)
    assert "PASSGATE_RP_NAME" in doctor.output  # the configuration table is printed anyway
    assert "✘ configuration" in doctor.output


def test_doctor_marks_the_invalid_settings_in_the_table(data_dir: Path) -> None:
    result = run("doctor", env={"PASSGATE_DATABASE_URL": "postgress://u:hunter2@h/db", "PASSGATE_PORT": "x"})
    lines = result.output.splitlines()
    assert any(line.startswith("✘ PASSGATE_DATABASE_URL") for line in lines), result.output
    assert any(line.startswith("✘ PASSGATE_PORT") for line in lines)
    assert any(line.startswith("  PASSGATE_RP_ID") and "localhost" in line for line in lines)
    assert "hunter2" not in result.output


def test_an_empty_key_file_is_one_sentence(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "secret-keys").write_text("\n")
    for command in (["serve"], ["user", "list"]):
        _assert_one_sentence(run(*command), "PASSGATE_SECRET_KEYS")
    env = server_env(data_dir, 8000, "http", None)
    keys = subprocess.run(
        passgate_command("keys", "list"), env=env, capture_output=True, text=True, timeout=60
    )
    assert keys.returncode == 2 and "Traceback" not in keys.stderr and "PASSGATE_SECRET_KEYS" in keys.stderr


def test_invalid_toml_is_one_sentence(data_dir: Path) -> None:
    Path("passgate.toml").write_text("rp_id = \n")
    _assert_one_sentence(run("doctor"), "passgate.toml")
    _assert_one_sentence(run("serve"), "passgate.toml")


@pytest.fixture
def tls_pair(tmp_path: Path, data_dir: Path) -> tuple[Path, Path]:
    assert run("cert", "--out", str(tmp_path / "tls")).exit_code == 0
    return tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"


def test_serve_port_and_tls_mistakes_are_sentences(data_dir: Path, tls_pair: tuple[Path, Path]) -> None:
    cert, key = (str(path) for path in tls_pair)
    port = free_port()
    https = {"PASSGATE_ORIGINS": f"https://localhost:{port}"}
    cases: list[tuple[list[str], dict[str, str], list[str]]] = [
        (["--port", "8443"], {"PASSGATE_ORIGINS": "https://localhost:8000"}, ["8443", "PASSGATE_ORIGINS"]),
        (["--port", str(port)], https, ["--ssl-certfile", "PASSGATE_ORIGINS"]),
        (["--port", str(port), "--ssl-certfile", cert, "--ssl-keyfile", key], {}, ["https://"]),
        (["--port", str(port), "--ssl-certfile", cert], https, ["--ssl-keyfile"]),
        (
            ["--port", str(port), "--ssl-certfile", "/nonexistent.pem", "--ssl-keyfile", key],
            https,
            ["--ssl-certfile"],
        ),
        (
            ["--port", str(port), "--ssl-certfile", key, "--ssl-keyfile", cert],
            https,
            ["--ssl-keyfile", "PEM"],
        ),
        (["--host", "name.invalid", "--port", str(port)], {}, ["--host"]),
    ]
    for args, env, names in cases:
        result = run("serve", *args, env=env)
        assert result.exit_code == 2, (args, result.output)
        for name in names:
            assert name in result.output, (args, result.output)
        assert "Traceback" not in result.output
        assert "— open" not in result.output  # refused before the banner


def test_a_taken_port_is_a_sentence_not_errno_98(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = server_env(tmp_path / "data", port, "http", None)
        process = subprocess.run(
            passgate_command("serve", "--port", str(port)),
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert process.returncode == 2
    assert f"Port {port}" in process.stderr and "--port" in process.stderr
    assert "Errno" not in process.stderr + process.stdout and "Traceback" not in process.stderr
    assert "— open" not in process.stdout


def test_a_database_url_typo_stops_the_real_command_with_one_sentence(tmp_path: Path) -> None:
    env = server_env(tmp_path / "data", 8000, "http", {"PASSGATE_DATABASE_URL": "postgress://u@127.0.0.1/db"})
    for command in ("serve", "doctor"):
        process = subprocess.run(
            passgate_command(command), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert process.returncode in (1, 2)
        assert "Traceback" not in process.stderr + process.stdout
        assert "PASSGATE_DATABASE_URL starts with postgress://" in process.stderr + process.stdout


def test_serve_says_where_the_data_is_and_when_it_is_new(tmp_path: Path) -> None:
    with start_passgate(tmp_path) as server:
        assert f"Data: {server.data_dir} (new: no accounts yet)" in server.output()
    with start_passgate(tmp_path) as server:
        assert f"Data: {server.data_dir}\n" in server.output()


def test_a_relative_data_dir_is_made_absolute(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASSGATE_DATA_DIR", "relative-data")
    result = run("doctor")
    assert f"{Path.cwd() / 'relative-data'}" in result.output


def test_unreachable_database_stops_start_up(data_dir: Path) -> None:
    for command in (["serve"], ["migrate"], ["user", "list"]):
        result = run(*command, env={"PASSGATE_DATABASE_URL": UNREACHABLE_DB})
        assert result.exit_code == 2, (command, result.output)
        assert "PASSGATE_DATABASE_URL" in result.output and "Cannot reach the database" in result.output
        assert "Traceback" not in result.output


def test_unreachable_database_stops_the_real_command(tmp_path: Path) -> None:
    env = server_env(tmp_path / "data", 8000, "http", {"PASSGATE_DATABASE_URL": UNREACHABLE_DB})
    process = subprocess.run(
        passgate_command("serve"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert process.returncode == 2
    assert "PASSGATE_DATABASE_URL" in process.stderr and "Traceback" not in process.stderr


# ---------------------------------------------------------------- migrate and keys


def test_migrate_is_repeatable(data_dir: Path) -> None:
    for _ in range(2):
        result = run("migrate")
        assert result.exit_code == 0, result.output
        assert "Database is up to date" in result.output
    assert (data_dir / "passgate.db").exists()
    assert (data_dir / "secret-keys").stat().st_mode & 0o077 == 0  # created private


def test_keys_rotate_list_and_retire(data_dir: Path) -> None:
    assert run("migrate").exit_code == 0
    original = (data_dir / "secret-keys").read_text().split()
    assert len(original) == 1
    rotated = run("keys", "rotate")
    assert rotated.exit_code == 0, rotated.output
    keys = (data_dir / "secret-keys").read_text().split()
    assert len(keys) == 2 and keys[1] == original[0] and keys[0] != original[0]

    listed = run("keys", "list")
    assert listed.output.splitlines() == [
        f"{key_id(keys[0].encode())}  signs and verifies",
        f"{key_id(keys[1].encode())}  verifies",
    ]
    retired = run("keys", "retire", key_id(keys[1].encode()))
    assert retired.exit_code == 0, retired.output
    assert (data_dir / "secret-keys").read_text().split() == [keys[0]]
    last = run("keys", "retire", key_id(keys[0].encode()))
    assert last.exit_code == 1  # never the last key


def test_keys_rotate_with_keys_in_the_environment_prints_the_new_list(data_dir: Path) -> None:
    current = "c" * 40
    result = run("keys", "rotate", env={"PASSGATE_SECRET_KEYS": current})
    assert result.exit_code == 0
    new_list = result.output.strip().splitlines()[-1].split(",")
    assert len(new_list) == 2 and new_list[1] == current and len(new_list[0]) >= 32
    assert not (data_dir / "secret-keys").exists()


def test_keys_generate(data_dir: Path) -> None:
    first, second = run("keys", "generate").output.strip(), run("keys", "generate").output.strip()
    assert first != second and len(first) >= 32


# ---------------------------------------------------------------- users


def test_user_add_list_disable_enable_delete(data_dir: Path) -> None:
    name = unique_name()
    added = run("user", "add", name, "--display-name", "Ada L.")
    assert added.exit_code == 0, added.output
    assert f"User {name} created." in added.output
    assert re.search(r"http://localhost:8000/auth/\w+\.\w+\.\w+", added.output)

    listed = run("user", "list")
    assert re.search(rf"^{name}\t[0-9a-f-]{{36}}\t0 passkey\(s\)\tactive\t-$", listed.output, re.MULTILINE)
    assert run("user", "add", name).exit_code == 1  # taken

    assert run("user", "disable", name).exit_code == 0
    assert f"{name}\t" in run("user", "list").output and "\tdisabled" in run("user", "list").output
    assert run("user", "enable", name).exit_code == 0
    assert "\tactive" in run("user", "list").output

    refused = run("user", "delete", name, input="n\n")
    assert refused.exit_code == 1 and name in run("user", "list").output
    assert run("user", "delete", name, "--yes").exit_code == 0
    assert name not in run("user", "list").output
    missing = run("user", "delete", name, "--yes")
    assert missing.exit_code == 1 and "No user named" in missing.output


async def test_user_link_is_a_working_recovery_link(data_dir: Path) -> None:
    name = unique_name()
    assert run("user", "add", name).exit_code == 0
    result = run("user", "link", name)
    assert result.exit_code == 0, result.output
    assert QR_BLOCKS.search(result.output)  # the QR code, drawn in the terminal
    passphrase = re.search(r"Passphrase: (\S+)", result.output)
    assert passphrase is not None
    assert f"http://localhost:8000/auth/{passphrase[1]}" in result.output
    assert "single use" in result.output
    assert run("user", "link", "nobody-" + name).exit_code == 1

    # The person opens it on a new device and registers a passkey for that account.
    ctx = Context.build(make_settings(data_dir))
    try:
        async with app_client(ctx) as http:
            begin = await http.post("/auth/device/begin", json={"token": passphrase[1]})
            assert begin.status_code == 200, begin.text
            key = SoftAuthenticator()
            finish = await http.post("/auth/device/finish", json=key.create(begin.json(), origin=ORIGIN))
            assert finish.status_code == 200, finish.text
            assert (await http.get("/auth/me")).json()["user_name"] == name
            await http.post("/auth/logout")
            assert (await Passkeys(http, key).login(name)).status_code == 200
    finally:
        ctx.db.dispose()
    assert "\t1 passkey(s)\t" in run("user", "list").output


# ---------------------------------------------------------------- cert and https


def test_cert_writes_a_localhost_certificate(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "tls"
    result = run("cert", "--out", str(out), "--days", "30")
    assert result.exit_code == 0, result.output
    certificate = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    key = serialization.load_pem_private_key((out / "key.pem").read_bytes(), password=None)
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert certificate.public_key() == key.public_key()
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert 29 <= lifetime.days <= 31
    assert (out / "key.pem").stat().st_mode & 0o077 == 0
    assert "--ssl-certfile" in result.output


def test_serve_over_https(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "tls"
    assert run("cert", "--out", str(out)).exit_code == 0
    args = ["--ssl-certfile", str(out / "cert.pem"), "--ssl-keyfile", str(out / "key.pem")]
    with start_passgate(tmp_path, args=args) as server:
        assert server.url.startswith("https://localhost:")
        context = ssl.create_default_context(cafile=str(out / "cert.pem"))  # trusts exactly this cert
        with httpx.Client(verify=context, headers={"origin": server.url}) as http:
            me = http.get(f"{server.url}/auth/me")
            assert me.status_code == 401 and me.json()["code"] == "not_authenticated"
            assert "max-age=" in me.headers["strict-transport-security"]
            browser_key = SoftAuthenticator()
            begin = http.post(f"{server.url}/auth/register/begin", json={"user_name": unique_name()})
            finish = http.post(
                f"{server.url}/auth/register/finish", json=browser_key.create(begin.json(), origin=server.url)
            )
            assert finish.status_code == 200, finish.text
            cookie = finish.headers["set-cookie"]
            assert cookie.startswith("__Host-passgate=") and "Secure" in cookie
        with pytest.raises(httpx.TransportError):  # plain http is not served on that port
            httpx.get(f"http://localhost:{server.port}/auth/me", timeout=5)


# ---------------------------------------------------------------- serve: workers and latency


def test_serve_with_two_workers(tmp_path: Path) -> None:
    with start_passgate(tmp_path, workers=2) as server, httpx.Client(headers={"origin": server.url}) as http:
        key = SoftAuthenticator()
        name = unique_name()
        begin = http.post(f"{server.url}/auth/register/begin", json={"user_name": name})
        finish = http.post(
            f"{server.url}/auth/register/finish", json=key.create(begin.json(), origin=server.url)
        )
        assert finish.status_code == 200, finish.text
        for _ in range(10):  # connections may land on either worker
            with httpx.Client(cookies=http.cookies) as other:
                assert other.get(f"{server.url}/auth/me").json()["user_name"] == name
        assert (server.data_dir / "secret-keys").exists()


def _keep_alive_timings(port: int, request: bytes, count: int) -> list[float]:
    """Send `request` `count` times on one keep-alive connection; seconds per full response."""
    timings: list[float] = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        reader = connection.makefile("rb")
        for _ in range(count):
            started = time.perf_counter()
            connection.sendall(request)
            status = reader.readline()
            assert status.startswith(b"HTTP/1.1 "), status
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                assert name.strip().lower() != b"connection" or b"close" not in value.lower()
            body = reader.read(length)
            timings.append(time.perf_counter() - started)
            assert len(body) == length > 0
    return timings


def test_keep_alive_json_responses_do_not_stall(tmp_path: Path) -> None:
    """A server without TCP_NODELAY holds each keep-alive body back ~40 ms (Nagle)."""
    with start_passgate(tmp_path) as server:
        host = f"localhost:{server.port}"
        me = f"GET /auth/me HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        body = b"{}"
        begin = (
            f"POST /auth/login/begin HTTP/1.1\r\nHost: {host}\r\nOrigin: {server.url}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        for request in (me, begin):
            timings = _keep_alive_timings(server.port, request, 25)[5:]  # after warm-up
            assert statistics.median(timings) < 0.020, [round(t * 1000, 2) for t in timings]

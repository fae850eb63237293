"""The `passgate` command: serve, migrate, doctor, keys, user, audit, cert."""

from __future__ import annotations

import datetime
import gc
import ipaddress
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from passgate.cli_tenants import api_key_app, tenant_app
from passgate.config import ENV_PREFIX, Settings, load_settings, new_secret_key, read_or_create_key_file
from passgate.errors import ConfigError, PassgateError

T = TypeVar("T")

app = typer.Typer(help="Passgate: a self-hosted passkey server.", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="Session signing keys: the first signs, all verify.", no_args_is_help=True)
user_app = typer.Typer(
    help="Accounts: add, list, rename, e-mail, disable, delete, recovery links. NAME is a user name "
    "(any spelling of it: case and look-alike letters do not matter) or a user id from `user list`.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")
app.add_typer(user_app, name="user")
client_app = typer.Typer(
    help="OpenID Connect clients registered by command (those in the configuration file are listed too).",
    no_args_is_help=True,
)
app.add_typer(client_app, name="client")
group_app = typer.Typer(help="Group memberships (forward-auth rules, Remote-Groups).", no_args_is_help=True)
user_app.add_typer(group_app, name="group")
app.add_typer(tenant_app, name="tenant")
app.add_typer(api_key_app, name="api-key")


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        typer.secho(exc.message, fg="red", err=True)
        raise typer.Exit(2) from None


def _context(settings: Settings | None = None) -> object:
    from passgate.services.context import Context
    from passgate.services.tenant_settings import apply_declared

    settings = settings or _settings()
    try:
        ctx = Context.build(settings)
        ctx.db.check()
        ctx.db.migrate()
        applied = apply_declared(ctx)  # the configuration file's passkey-API tenants
    except ConfigError as exc:
        typer.secho(exc.message, fg="red", err=True)
        raise typer.Exit(2) from None
    for plan in applied:
        done = "created" if plan.action == "create" else f"updated ({', '.join(plan.changed)})"
        typer.echo(
            f"Passkey-API tenant {plan.tenant_id} ({plan.rp_id}) {done} from the configuration.", err=True
        )
    return ctx


def _prepare(settings: Settings) -> None:
    """What must hold before a worker starts: signing keys created, the database reachable and at the
    newest revision. Nothing of the app is imported for it (with `--workers`, this process only
    supervises), and a migration runs in a child process (`Database.migrate_apart`)."""
    from passgate.store.database import Database

    try:
        settings.signing_keys()
        database = Database(settings.sqlalchemy_url, timeout=settings.database_timeout)
        database.check()
        database.migrate_apart()
        database.dispose()
    except ConfigError as exc:
        typer.secho(exc.message, fg="red", err=True)
        raise typer.Exit(2) from None


def _preflight(settings: Settings, ssl_certfile: Path | None, ssl_keyfile: Path | None) -> None:
    from passgate.preflight import check_serve

    try:
        notices = check_serve(settings, ssl_certfile, ssl_keyfile)
    except ConfigError as exc:
        typer.secho(exc.message, fg="red", err=True)
        raise typer.Exit(2) from None
    for notice in notices:
        typer.echo(notice)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    ssl_certfile: Annotated[Path | None, typer.Option(help="TLS certificate (see `passgate cert`).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request (costs CPU).")] = False,
) -> None:
    """Start Passgate: pages, /auth, and everything else, on SQLite by default. Request heads, bodies and
    connections are bounded: see PASSGATE_MAX_HEADER_BYTES, _HEADER_TIMEOUT, _BODY_TIMEOUT, _IDLE_TIMEOUT
    and _MAX_CONNECTIONS in docs/configuration.md."""
    gc.disable()  # no collections while start-up makes what lives as long as the app: web/asgi.py
    import uvicorn

    from passgate.web import server
    from passgate.web.guard import MAX_MESSAGE

    if host is not None:
        os.environ[f"{ENV_PREFIX}HOST"] = host
    if port is not None:
        os.environ[f"{ENV_PREFIX}PORT"] = str(port)
    settings = _settings()
    _preflight(settings, ssl_certfile, ssl_keyfile)  # port free and the one people open, TLS files
    _prepare(settings)
    files = server.raise_open_file_limit()
    if settings.max_connections > files - server.RESERVED_FILES:
        typer.secho(
            f"PASSGATE_MAX_CONNECTIONS={settings.max_connections} is more than the open-file limit ({files}) "
            f"allows; each worker keeps at most {files - server.RESERVED_FILES} connections.",
            fg="yellow",
            err=True,
        )
    if workers > 1:
        gc.enable()  # this process only supervises: each worker builds its own app
    scheme = "https" if ssl_certfile else "http"
    typer.echo(f"Passgate on {scheme}://{settings.host}:{settings.port} — open {settings.public_url}")
    uvicorn.run(
        "passgate.web.asgi:build",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        loop="uvloop",
        http=server.PROTOCOL,  # httptools with bounded heads, bodies and connections
        ws="websockets-sansio",
        ws_max_size=MAX_MESSAGE,  # refused with close 1009 from the frame header, before buffering
        access_log=access_log,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    ctx = _context()
    typer.echo(f"Database is up to date: {ctx.db.safe_url()}")  # type: ignore[attr-defined]


@app.command()
def doctor(
    url: Annotated[
        str | None, typer.Option(help="A URL behind the forward-auth gate: explain Passgate's decisions.")
    ] = None,
) -> None:
    """Print the effective configuration (secrets masked) and check it."""
    from passgate.doctor import run_checks

    ok = run_checks(typer.echo)
    if url is not None and ok:
        from passgate.gate_doctor import explain

        ok = explain(_settings(), url, typer.echo)
    raise typer.Exit(0 if ok else 1)


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new random key (for PASSGATE_SECRET_KEYS)."""
    typer.echo(new_secret_key())


@keys_app.command("rotate")
def keys_rotate(
    oidc: Annotated[
        bool, typer.Option("--oidc", help="Rotate the OpenID Connect ID token keys instead.")
    ] = False,
) -> None:
    """Add a new signing key in front; old keys still verify until you remove them."""
    settings = _settings()
    if oidc:
        _rotate_oidc_keys(settings)
        return
    if settings.secret_keys:
        keys = [new_secret_key(), *(key.get_secret_value() for key in settings.secret_keys)]
        typer.echo("PASSGATE_SECRET_KEYS is set in the environment; set it to this and restart:")
        typer.echo(",".join(keys))
        return
    path = settings.secret_keys_file
    keys = [new_secret_key(), *read_or_create_key_file(path)]
    path.write_text("\n".join(keys) + "\n", encoding="utf-8")
    typer.echo(f"New signing key added to {path} ({len(keys)} keys). Restart Passgate to use it.")


def _rotate_oidc_keys(settings: Settings) -> None:
    """New OpenID Connect signing keys (RSA and P-256) in front: they sign after a restart; the old ones
    stay in the JWKS, so ID tokens they signed still verify (OIDC Core §10.1.1)."""
    from passgate.oidc.keys import rotate

    keys = rotate(settings.oidc_keys_file)
    typer.echo(f"New OpenID Connect signing keys in {settings.oidc_keys_file} ({len(keys)} keys).")
    typer.echo("Restart Passgate to sign with them; apps fetch the new JWKS by themselves.")


@keys_app.command("list")
def keys_list() -> None:
    """List the key ids, signing key first."""
    from passgate.services.tokens import key_id

    for index, key in enumerate(_settings().signing_keys()):
        typer.echo(f"{key_id(key)}  {'signs and verifies' if index == 0 else 'verifies'}")


@keys_app.command("retire")
def keys_retire(kid: str) -> None:
    """Remove a key (by id) from the data-directory key file: tokens it signed stop working."""
    from passgate.services.tokens import key_id

    settings = _settings()
    keys = read_or_create_key_file(settings.secret_keys_file)
    kept = [key for key in keys if key_id(key.encode()) != kid]
    if len(kept) == len(keys) or not kept:
        typer.secho("No such key, or it is the last one.", fg="red", err=True)
        raise typer.Exit(1)
    settings.secret_keys_file.write_text("\n".join(kept) + "\n", encoding="utf-8")
    typer.echo(f"Key {kid} retired. Restart Passgate.")


def run_service(action: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run one service call with the configured context; its PassgateError is one red sentence, exit 1."""
    ctx = _context()
    try:
        return action(ctx, *args, **kwargs)
    except PassgateError as exc:
        typer.secho(exc.message, fg="red", err=True)
        raise typer.Exit(1) from None


def _admin(action: str, *args: object) -> object:
    from passgate.services import users as module

    return run_service(getattr(module, action), *args)


@user_app.command("add")
def user_add(
    name: str, display_name: Annotated[str, typer.Option(help="Shown by authenticators.")] = ""
) -> None:
    """Create an account without a passkey, and print a link to register its first one."""
    user = _admin("add", name, display_name)
    typer.echo(f"User {user.user_name} created.")  # type: ignore[attr-defined]
    user_link(name)


@user_app.command("list")
def user_list() -> None:
    """List accounts with their passkey count and e-mail address."""
    rows = _admin("listing")
    typer.echo("NAME\tID\tPASSKEYS\tSTATE")
    for user, count in rows:  # type: ignore[attr-defined]
        state = "disabled" if user.disabled else "active"
        typer.echo(f"{user.user_name}\t{user.id}\t{count} passkey(s)\t{state}\t{user.email or '-'}")


@user_app.command("rename")
def user_rename(name: str, new_name: str) -> None:
    """Give an account another name (checked like a new one). Resolves a name clash left by an upgrade."""
    user = _admin("rename", name, new_name)
    typer.echo(f"User {user.id} is now {user.user_name}.")  # type: ignore[attr-defined]


@user_app.command("email")
def user_email(
    name: str,
    address: Annotated[str | None, typer.Argument(help="The address apps get as Remote-Email.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the address.")] = False,
) -> None:
    """Set the address the forward-auth gate sends as Remote-Email (only ever one set here)."""
    if clear == (address is not None):
        typer.secho("Give an ADDRESS, or --clear (not both).", fg="red", err=True)
        raise typer.Exit(2)
    email = _admin("set_email", name, address)
    typer.echo(
        f"{name}: Remote-Email {email}." if email else f"{name}: no e-mail address (Remote-Email empty)."
    )


@user_app.command("disable")
def user_disable(name: str) -> None:
    """Disable an account; its sessions end at once."""
    _admin("set_disabled", name, True)
    typer.echo(f"User {name} disabled; every session ended.")


@user_app.command("enable")
def user_enable(name: str) -> None:
    _admin("set_disabled", name, False)
    typer.echo(f"User {name} enabled.")


@user_app.command("delete")
def user_delete(name: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False) -> None:
    """Delete an account with its passkeys and sessions."""
    if not yes:
        typer.confirm(f"Delete {name} with all passkeys and sessions?", abort=True)
    _admin("delete", name)
    typer.echo(f"User {name} deleted.")


def _local_time(timestamp: float) -> str:
    """A moment in this machine's time zone, with the zone: `2026-01-31 14:05 CET (UTC+01:00)`."""
    moment = datetime.datetime.fromtimestamp(timestamp).astimezone()
    offset = moment.strftime("%z")
    zone = moment.strftime("%Z")
    shown = moment.strftime("%Y-%m-%d %H:%M")
    return f"{shown} UTC" if offset == "+0000" else f"{shown} {zone} (UTC{offset[:3]}:{offset[3:]})"


@user_app.command("link")
def user_link(name: str) -> None:
    """Print a single-use link (and QR code) to add a passkey: recovery for someone who lost them all."""
    link = _admin("recovery_link", name)
    expires = _local_time(link.expires_at)  # type: ignore[attr-defined]
    typer.echo(link.qr_terminal())  # type: ignore[attr-defined]
    typer.echo(f"Link for {name} (single use, until {expires}):")
    typer.echo(f"  {link.url}")  # type: ignore[attr-defined]
    typer.echo(f"Passphrase: {link.passphrase}")  # type: ignore[attr-defined]


def _clients(action: str, *args: object) -> object:
    from passgate.services.oidc import registry as module

    return run_service(getattr(module, action), *args)


@client_app.command("add")
def client_add(
    client_id: str,
    redirect_uri: Annotated[list[str], typer.Option("--redirect-uri", help="Exact redirect URI (repeat).")],
    name: Annotated[str, typer.Option(help="Shown on the consent page.")] = "",
    public: Annotated[
        bool, typer.Option("--public", help="A browser or native app: no secret, PKCE.")
    ] = False,
    post: Annotated[bool, typer.Option("--secret-post", help="Send the secret in the form body.")] = False,
    logout_uri: Annotated[
        list[str] | None, typer.Option("--post-logout-redirect-uri", help="Where logout may return (repeat).")
    ] = None,
    scope: Annotated[list[str] | None, typer.Option("--scope", help="Allowed scope (repeat).")] = None,
    trusted: Annotated[bool, typer.Option("--trusted", help="Skip the consent page.")] = False,
    es256: Annotated[bool, typer.Option("--es256", help="Sign its ID tokens with ES256, not RS256.")] = False,
    no_refresh: Annotated[bool, typer.Option("--no-refresh", help="Issue no refresh tokens.")] = False,
) -> None:
    """Register a client and print its secret (once: only a hash is kept)."""
    metadata: dict[str, object] = {
        "name": name,
        "redirect_uris": redirect_uri,
        "post_logout_redirect_uris": logout_uri or [],
        "token_endpoint_auth_method": "none"
        if public
        else ("client_secret_post" if post else "client_secret_basic"),
        "trusted": trusted,
        "id_token_signed_response_alg": "ES256" if es256 else "RS256",
        "refresh_tokens": not no_refresh,
    }
    if scope:
        metadata["scopes"] = scope
    try:
        added = _clients("add", client_id, metadata)
    except ConfigError as exc:
        typer.secho(exc.message, fg="red", err=True)
        raise typer.Exit(2) from None
    secret = added[1]  # type: ignore[index]
    typer.echo(f"Client {client_id} registered.")
    if secret:
        typer.echo(f"Secret (shown once, store it now): {secret}")
    typer.echo(f"Discovery: {_settings().public_url}/.well-known/openid-configuration")


@client_app.command("list")
def client_list() -> None:
    """Every client: id, kind, where it is declared, redirect URIs."""
    from passgate.services.context import Context
    from passgate.services.oidc import registry

    ctx = _context()
    assert isinstance(ctx, Context)
    rows = ctx.db.transact(lambda connection: registry.every(connection, ctx))
    for client, source in rows:
        kind = "public" if client.public else "confidential"
        typer.echo(f"{client.client_id}\t{kind}\t{source}\t{' '.join(client.config.redirect_uris)}")


@client_app.command("show")
def client_show(client_id: str) -> None:
    """A client's settings (never its secret)."""
    import json

    from passgate.services.context import Context
    from passgate.services.oidc import registry

    ctx = _context()
    assert isinstance(ctx, Context)
    client = ctx.db.transact(lambda connection: registry.find(connection, ctx, client_id))
    if client is None:
        typer.secho("No such client.", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(client.describe(), indent=2))


@client_app.command("rotate-secret")
def client_rotate_secret(client_id: str) -> None:
    """A new secret (printed once); the old one stops working at once."""
    secret = _clients("rotate_secret", client_id)
    typer.echo(f"New secret for {client_id} (shown once): {secret}")


@client_app.command("delete")
def client_delete(
    client_id: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False
) -> None:
    """Remove a client with every token, code and consent made for it."""
    if not yes:
        typer.confirm(f"Delete client {client_id} and revoke all its tokens?", abort=True)
    _clients("delete", client_id)
    typer.echo(f"Client {client_id} deleted.")


def _groups(action: str, *args: str) -> object:
    from passgate.services import groups as module

    return run_service(getattr(module, action), *args)


@group_app.command("add")
def group_add(name: str, group: str) -> None:
    """Put user NAME in GROUP (the gate sees it at once)."""
    added = _groups("add", name, group)
    typer.echo(f"{name} is {'now' if added else 'already'} in {group.strip().lower()}.")


@group_app.command("remove")
def group_remove(name: str, group: str) -> None:
    """Take user NAME out of GROUP."""
    removed = _groups("remove", name, group)
    typer.echo(f"{name} {'removed from' if removed else 'was not in'} {group.strip().lower()}.")


@group_app.command("list")
def group_list(name: str) -> None:
    """List the groups of user NAME."""
    for group in _groups("of_user", name):  # type: ignore[attr-defined]
        typer.echo(group)


@user_app.command("unflag")
def user_unflag(credential_id: str) -> None:
    """Clear a credential flagged after a sign-count regression, so it can sign in again."""
    from passgate.ceremony.encoding import b64url_decode

    _admin("clear_flag", b64url_decode(credential_id, field="credential_id"))
    typer.echo("Credential cleared.")


@app.command()
def audit(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's events.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 50,
) -> None:
    """Show the audit trail: sign-ins' step-ups, sessions ended and why, device links, passkeys added,
    flagged, unblocked or removed, each with the session that acted."""
    from passgate.services import audit as audit_service

    rows = run_service(audit_service.events, user, limit)
    typer.echo("time (UTC)\tuser\tevent\tsession\tdetails")
    for row in rows:
        at = datetime.datetime.fromtimestamp(row.pop("at"), datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        who = row.pop("user_name") or row.pop("user_id") or "-"
        row.pop("user_id", None)
        kind, session = row.pop("kind"), row.pop("session_id") or "-"
        details = " ".join(f"{key}={value}" for key, value in row.items() if value not in (None, ""))
        typer.echo(f"{at}\t{who}\t{kind}\t{session[:12]}\t{details}")


@app.command()
def cert(
    out: Annotated[
        Path | None, typer.Option(help="Directory for cert.pem and key.pem (default: the data directory).")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=825)] = 365,
) -> None:
    """Write a self-signed certificate for https://localhost (cert.pem, key.pem) into the data directory."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    out = (out or _settings().data_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    (out / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path = out / "key.pem"
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    typer.echo(f"Wrote {out / 'cert.pem'} and {key_path} (private). Start with:")
    typer.echo(
        f"  PASSGATE_ORIGINS=https://localhost:8000 passgate serve --ssl-certfile {out / 'cert.pem'} "
        f"--ssl-keyfile {key_path}"
    )
    typer.echo(
        "Browsers warn about a self-signed certificate until you trust it: import cert.pem into the "
        "browser's or system's certificate store (see docs/production.md, “A certificate for localhost”)."
    )


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        typer.secho(exc.message, fg="red", err=True)
        sys.exit(2)

"""`passgate tenant …` and `passgate api-key …`: tenants of the passkey API for other backends."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

T = TypeVar("T")
tenant_app = typer.Typer(
    help="Tenants of the passkey API for other backends (Hanko-compatible): each its own relying party.",
    no_args_is_help=True,
)
api_key_app = typer.Typer(
    help="API keys of a passkey-API tenant: shown once, stored hashed.", no_args_is_help=True
)
TenantOption = Annotated[str, typer.Option("--tenant", help="The tenant id (a UUID from `tenant list`).")]


def _run(action: Callable[..., T], *args: object, **kwargs: object) -> T:
    from passgate.cli import run_service

    return run_service(action, *args, **kwargs)


def _when(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


@tenant_app.command("add")
def tenant_add(
    name: Annotated[str, typer.Argument(help="What the tenant is called (and its RP name by default).")],
    rp_id: Annotated[str, typer.Option(help="The backend's site domain, e.g. example.com.")],
    origin: Annotated[
        list[str] | None, typer.Option(help="An allowed origin, e.g. https://example.com (repeatable).")
    ] = None,
    rp_name: Annotated[str, typer.Option(help="Shown by authenticators (default: NAME).")] = "",
    user_verification: Annotated[str, typer.Option(help="required, preferred or discouraged.")] = "required",
    timeout_ms: Annotated[int, typer.Option(help="Ceremony timeout in milliseconds.")] = 60_000,
    resident_key: Annotated[
        str, typer.Option(help="Discoverable credential: required (a passkey), preferred or discouraged.")
    ] = "required",
    attestation: Annotated[
        str, typer.Option(help="Attestation conveyance: none, indirect or direct.")
    ] = "none",
    key_bits: Annotated[
        int, typer.Option(help="RSA size of the token-signing key: 2048, 3072, 4096.")
    ] = 2048,
    api_key: Annotated[bool, typer.Option("--api-key/--no-api-key", help="Also create an API key.")] = True,
) -> None:
    """Create a tenant (a UUID id) with its first token-signing key and, by default, an API key."""
    from passgate.services import tenant_settings

    tenant = _run(
        tenant_settings.add_tenant,
        name=name,
        rp_id=rp_id,
        rp_name=rp_name,
        origins=origin or [],
        user_verification=user_verification,
        timeout_ms=timeout_ms,
        resident_key=resident_key,
        attestation=attestation,
        key_bits=key_bits,
    )
    typer.echo(f"Tenant {tenant.tenant_id} created for {tenant.rp_id} ({', '.join(tenant.origins)}).")
    typer.echo(f"Base URL: /passkeys/{tenant.tenant_id}")
    if api_key:
        api_key_add(tenant.tenant_id, "Initial API key")


UPDATE_HELP = (
    "Change a tenant's settings: only those given (--origin replaces the whole list). Takes effect at "
    "once, in every process.\n\n"
    "The RP ID cannot change once the tenant has passkeys: each passkey is scoped to the RP ID it was "
    "created for, and authenticators offer it for that RP ID only (W3C WebAuthn L3 §5.1.4), so every one "
    "of them would stop working. Add origins on subdomains of the RP ID instead, or make a new tenant.\n\n"
    "A tenant declared in the configuration file is changed in the file. The signing key changes with "
    "`tenant rotate-key`, API keys with `api-key`."
)


@tenant_app.command("update", help=UPDATE_HELP)
def tenant_update(
    tenant_id: str,
    name: Annotated[str | None, typer.Option(help="What the tenant is called.")] = None,
    rp_id: Annotated[
        str | None, typer.Option(help="A new RP ID: only while the tenant has no passkeys (see above).")
    ] = None,
    origin: Annotated[
        list[str] | None, typer.Option(help="An allowed origin (repeatable): replaces the whole list.")
    ] = None,
    rp_name: Annotated[str | None, typer.Option(help="Shown by authenticators.")] = None,
    user_verification: Annotated[str | None, typer.Option(help="required, preferred or discouraged.")] = None,
    timeout_ms: Annotated[int | None, typer.Option(help="Ceremony timeout in milliseconds.")] = None,
    resident_key: Annotated[
        str | None, typer.Option(help="Discoverable credential: required, preferred or discouraged.")
    ] = None,
    attestation: Annotated[
        str | None, typer.Option(help="Attestation conveyance: none, indirect or direct.")
    ] = None,
) -> None:
    from passgate.services import tenant_settings

    given = {
        "name": name,
        "rp_id": rp_id,
        "origins": origin,
        "rp_name": rp_name,
        "user_verification": user_verification,
        "timeout_ms": timeout_ms,
        "resident_key": resident_key,
        "attestation": attestation,
    }
    if all(value is None for value in given.values()):
        options = ", ".join(tenant_settings.OPTION_NAMES.values())
        typer.secho(f"Nothing to change: give at least one of {options}.", fg="red", err=True)
        raise typer.Exit(2)
    changed = _run(tenant_settings.update_tenant, tenant_id, **given)
    if not changed:
        typer.echo(f"Tenant {tenant_id} already has these settings: nothing changed.")
        return
    typer.echo(f"Tenant {tenant_id} updated:")
    for setting, (before, after) in changed.items():
        typer.echo(f"  {setting}: {_shown(before)} → {_shown(after)}")


def _shown(value: object) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


@tenant_app.command("list")
def tenant_list() -> None:
    """List the tenants: id, RP ID, name, and where each is declared (command or configuration file)."""
    from passgate.services import passkey_tenants

    declared = _declared()
    for tenant in _run(passkey_tenants.list_tenants):
        source = "config" if tenant.tenant_id in declared else "command"
        typer.echo(f"{tenant.tenant_id}\t{tenant.rp_id}\t{tenant.name}\t{source}")


def _declared() -> set[str]:
    from passgate.cli import _settings

    return set(_settings().passkey_tenants)


@tenant_app.command("show")
def tenant_show(tenant_id: str) -> None:
    """Show a tenant's policy, API keys (names and ids, never the keys) and signing keys."""
    from passgate.services import passkey_tenants

    tenant, keys, token_keys = _run(passkey_tenants.show_tenant, tenant_id)
    typer.echo(
        f"id: {tenant.tenant_id}\nname: {tenant.name}\nrp_id: {tenant.rp_id}\nrp_name: {tenant.rp_name}"
    )
    typer.echo(f"origins: {', '.join(tenant.origins)}\nuser_verification: {tenant.user_verification}")
    typer.echo(f"timeout_ms: {tenant.timeout_ms}\nresident_key: {tenant.resident_key}")
    typer.echo(f"attestation: {tenant.attestation}\ncreated: {_when(tenant.created_at)}")
    if tenant.tenant_id in _declared():
        typer.echo("declared in: the configuration file (change it there)")
    typer.echo(f"API keys ({len(keys)}):")
    for key in keys:
        typer.echo(f"  {key.id}\t{key.name}\t{_when(key.created_at)}")
    typer.echo("Token-signing keys (newest signs):")
    for token_key in token_keys:
        typer.echo(f"  {token_key.kid}\t{_when(token_key.created_at)}")


@tenant_app.command("delete")
def tenant_delete(
    tenant_id: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False
) -> None:
    """Delete a tenant with its users, passkeys, keys and transactions (one declared in the configuration
    file is removed from the file first)."""
    from passgate.services import tenant_settings

    if not yes:
        typer.confirm(f"Delete tenant {tenant_id} with all its users and passkeys?", abort=True)
    _run(tenant_settings.delete_tenant, tenant_id)
    typer.echo(f"Tenant {tenant_id} deleted.")


@tenant_app.command("rotate-key")
def tenant_rotate_key(
    tenant_id: str,
    key_bits: Annotated[int, typer.Option(help="RSA size: 2048, 3072 or 4096.")] = 2048,
) -> None:
    """A new token-signing key signs from now on; the old one stays in the JWKS until its tokens expire."""
    from passgate.services import passkey_tenants

    key = _run(passkey_tenants.rotate_token_key, tenant_id, key_bits)
    typer.echo(f"New signing key {key.kid} for tenant {tenant_id}.")


@api_key_app.command("add")
def api_key_add(
    tenant: TenantOption, name: Annotated[str, typer.Option(help="A label.")] = "API key"
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from passgate.services import passkey_tenants

    key = _run(passkey_tenants.add_api_key, tenant, name)
    typer.echo(f"API key {key.id} ({name}). Shown once; send it in the apiKey header:")
    typer.echo(key.secret)


@api_key_app.command("list")
def api_key_list(tenant: TenantOption) -> None:
    """List a tenant's API keys (ids and names; the keys themselves are not stored)."""
    from passgate.services import passkey_tenants

    for key in _run(passkey_tenants.list_api_keys, tenant):
        typer.echo(f"{key.id}\t{key.name}\t{_when(key.created_at)}")


@api_key_app.command("revoke")
def api_key_revoke(tenant: TenantOption, key_id: str) -> None:
    """Revoke an API key: it stops working at once, in every process."""
    from passgate.services import passkey_tenants

    _run(passkey_tenants.revoke_api_key, tenant, key_id)
    typer.echo(f"API key {key_id} revoked.")

"""A passkey-API tenant's settings: its name, RP ID, RP name, origins, user verification, timeout,
resident-key requirement and attestation conveyance.

They are checked by one model (`config/tenants.py`), whether they come from `passgate tenant add|update`
or from the configuration file's `[passkey_tenants.<uuid>]` tables. A declared tenant is created or
updated to match the file whenever Passgate (or any `passgate` command) starts; it is changed or deleted
only there, never by command. Every change is audited under the tenant's id, `by` `admin` or `config`.

The RP ID never changes while the tenant has passkeys: a credential is scoped to the RP ID it was
created for, and an authenticator offers it for that RP ID only (W3C WebAuthn L3 §5.1.4; §7.2 checks
`rpIdHash` against it), so every passkey would stop working.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from passgate.config.tenants import DEFAULT_TIMEOUT_MS, TenantConfig, describe_errors
from passgate.errors import BadRequest, ConfigError, Conflict, TenantNotFound
from passgate.services.context import Context
from passgate.services.passkey_tenants import (
    DEFAULT_KEY_BITS,
    audit_tenant,
    new_token_key,
    open_tenant,
    tenant_id_of,
)
from passgate.store import tenants as store
from passgate.store.database import now
from passgate.store.tenants import TenantRecord, TokenKeyRecord

# What the command line calls each setting, so that its messages name the option to fix.
OPTION_NAMES = {
    "name": "--name",
    "rp_id": "--rp-id",
    "rp_name": "--rp-name",
    "origins": "--origin",
    "user_verification": "--user-verification",
    "timeout_ms": "--timeout-ms",
    "resident_key": "--resident-key",
    "attestation": "--attestation",
}
SETTINGS = tuple(OPTION_NAMES)
Changes = dict[str, list[Any]]  # {setting: [before, after]}, as the audit log records them


def tenant_policy(**settings: Any) -> TenantConfig:
    """The settings checked by the configuration file's model; BadRequest naming the options to fix."""
    try:
        return TenantConfig.model_validate(settings, context={"names": OPTION_NAMES})
    except ValidationError as exc:
        raise BadRequest(" ".join(describe_errors(exc, OPTION_NAMES))) from None


def tenant_record(tenant_id: str, policy: TenantConfig, created_at: float) -> TenantRecord:
    return TenantRecord(tenant_id=tenant_id, created_at=created_at, **policy.model_dump())


def changes(current: TenantRecord, wanted: TenantRecord) -> Changes:
    return {
        name: [getattr(current, name), getattr(wanted, name)]
        for name in SETTINGS
        if getattr(current, name) != getattr(wanted, name)
    }


# --------------------------------------------------------------------------- by command


def add_tenant(
    ctx: Context,
    *,
    name: str,
    rp_id: str,
    rp_name: str = "",
    origins: list[str],
    user_verification: str = "required",
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    resident_key: str = "required",
    attestation: str = "none",
    key_bits: int = DEFAULT_KEY_BITS,
) -> TenantRecord:
    """A new tenant (a random UUID) with its first token-signing key (no API key yet: `add_api_key`)."""
    policy = tenant_policy(
        name=name,
        rp_id=rp_id,
        rp_name=rp_name,
        origins=origins,
        user_verification=user_verification,
        timeout_ms=timeout_ms,
        resident_key=resident_key,
        attestation=attestation,
    )
    tenant = tenant_record(str(uuid.uuid4()), policy, now())
    key = new_token_key(ctx, tenant.tenant_id, key_bits)
    ctx.db.transact(lambda connection: _create(connection, tenant, key, by="admin"))
    return tenant


def update_tenant(ctx: Context, tenant_id: str, **settings: Any) -> Changes:
    """Change the settings given (those not None) and return what changed; nothing is written or
    audited when nothing changes.

    Raises BadRequest for a bad value, Conflict for a tenant declared in the configuration file or for
    a new RP ID while the tenant has passkeys."""
    tid = tenant_id_of(tenant_id)
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise BadRequest(f"Unknown tenant settings: {', '.join(sorted(unknown))}.")
    refuse_if_declared(ctx, tid)

    def work(connection: Connection) -> Changes:
        current = open_tenant(connection, tid, None, key_required=False)
        given = {name: value for name, value in settings.items() if value is not None}
        policy = tenant_policy(**{name: getattr(current, name) for name in SETTINGS} | given)
        changed = changes(current, tenant_record(tid, policy, current.created_at))
        if "rp_id" in changed:
            passkeys = store.credential_count(connection, tid)
            if passkeys:
                raise Conflict(_rp_id_in_use(current, policy.rp_id, passkeys), code="rp_id_in_use")
        if changed:
            _update(connection, current, policy, changed, by="admin")
        return changed

    return ctx.db.transact(work)


def delete_tenant(ctx: Context, tenant_id: str) -> None:
    tid = tenant_id_of(tenant_id)
    refuse_if_declared(ctx, tid)

    def work(connection: Connection) -> None:
        if not store.remove(connection, tid):
            raise TenantNotFound()
        audit_tenant(connection, tid, "tenant_deleted")

    ctx.db.transact(work)


def refuse_if_declared(ctx: Context, tenant_id: str) -> None:
    """A tenant of the configuration file changes there only: the next start would undo a command."""
    if tenant_id in ctx.settings.passkey_tenants:
        raise Conflict(
            f"Tenant {tenant_id} is declared in the configuration file ([passkey_tenants.{tenant_id}]): "
            "edit it there. The file is applied when Passgate, or any passgate command, next starts.",
            code="tenant_declared",
        )


def is_declared(ctx: Context, tenant_id: str) -> bool:
    return tenant_id in ctx.settings.passkey_tenants


def _rp_id_in_use(current: TenantRecord, rp_id: str, passkeys: int) -> str:
    return (
        f"The RP ID of tenant {current.tenant_id} cannot change from {current.rp_id!r} to {rp_id!r}: its "
        f"{passkeys} passkey(s) work only with the RP ID they were created for (W3C WebAuthn L3 §5.1.4). "
        "Keep the RP ID (origins on its subdomains may be added), or make a new tenant and have its users "
        "register new passkeys there."
    )


def _create(connection: Connection, tenant: TenantRecord, key: TokenKeyRecord, *, by: str) -> None:
    store.create(connection, tenant)
    store.add_token_key(connection, key)
    audit_tenant(connection, tenant.tenant_id, "tenant_added", by=by, rp_id=tenant.rp_id)


def _update(
    connection: Connection, current: TenantRecord, policy: TenantConfig, changed: Changes, *, by: str
) -> None:
    store.update_settings(connection, tenant_record(current.tenant_id, policy, current.created_at))
    audit_tenant(connection, current.tenant_id, "tenant_updated", by=by, changed=changed)


# --------------------------------------------------------------------------- declared in the file


@dataclass(frozen=True, slots=True)
class Plan:
    """What applying the file does to one declared tenant; `problem` says why it cannot."""

    tenant_id: str
    rp_id: str
    action: Literal["create", "update", "keep"]
    changed: Changes = field(default_factory=dict)
    problem: str | None = None


def plan_declared(connection: Connection, declared: dict[str, TenantConfig]) -> list[Plan]:
    """What the next start will do to each declared tenant (`passgate doctor` shows it)."""
    return [_plan(connection, tenant_id, policy) for tenant_id, policy in declared.items()]


def apply_declared(ctx: Context) -> list[Plan]:
    """Create or update every tenant of the configuration file to match it: idempotent, and safe when
    several processes start at once. Returns what was created or updated.

    Raises ConfigError when a declared RP ID differs from the stored one of a tenant with passkeys."""
    done = [_apply_one(ctx, tenant_id, policy) for tenant_id, policy in ctx.settings.passkey_tenants.items()]
    return [plan for plan in done if plan.action != "keep"]


def _apply_one(ctx: Context, tenant_id: str, policy: TenantConfig) -> Plan:
    plan = ctx.db.transact(partial(_plan, tenant_id=tenant_id, policy=policy), write=False)
    if plan.action == "keep":
        return plan
    made = new_token_key(ctx, tenant_id) if plan.action == "create" else None  # slow: before the lock

    def key() -> TokenKeyRecord:
        return made or new_token_key(ctx, tenant_id)

    return ctx.db.transact(partial(_apply, tenant_id=tenant_id, policy=policy, key=key))


def _plan(connection: Connection, tenant_id: str, policy: TenantConfig) -> Plan:
    current = store.get(connection, tenant_id)
    if current is None:
        return Plan(tenant_id, policy.rp_id, "create")
    changed = changes(current, tenant_record(tenant_id, policy, current.created_at))
    if not changed:
        return Plan(tenant_id, policy.rp_id, "keep")
    passkeys = store.credential_count(connection, tenant_id) if "rp_id" in changed else 0
    problem = None
    if passkeys:
        problem = (
            f"PASSGATE_PASSKEY_TENANTS: the tenant {tenant_id!r}: rp_id cannot change from "
            f"{current.rp_id!r} to {policy.rp_id!r}: its {passkeys} passkey(s) work only with the RP ID "
            f"they were created for (W3C WebAuthn L3 §5.1.4). Put rp_id = {current.rp_id!r} back in "
            f"[passkey_tenants.{tenant_id}] (origins on its subdomains may be added), or declare a new "
            "tenant for the new RP ID."
        )
    return Plan(tenant_id, policy.rp_id, "update", changed, problem)


def _apply(
    connection: Connection, tenant_id: str, policy: TenantConfig, key: Callable[[], TokenKeyRecord]
) -> Plan:
    plan = _plan(connection, tenant_id, policy)  # again, in the writing transaction
    if plan.action == "create":
        try:
            with connection.begin_nested():
                _create(connection, tenant_record(tenant_id, policy, now()), key(), by="config")
            return plan
        except IntegrityError:  # another process created it a moment ago: match it instead
            plan = _plan(connection, tenant_id, policy)
    if plan.problem:
        raise ConfigError(plan.problem)
    if plan.action == "update":
        current = store.get(connection, tenant_id)
        assert current is not None
        _update(connection, current, policy, plan.changed, by="config")
    return plan

"""The passkey API for other backends, wire-compatible with Hanko's Passkey API: registration, login,
transaction and MFA ceremonies for the users a backend names by its own ids (their credentials are
managed in services/passkey_credentials.py).

Every ceremony runs the same core as the first-party pages (`ceremony/`, and `services/ceremonies.py`
for single-use challenges bound to purpose and tenant). Where Hanko is weaker, this is stricter:
the sign count is stored and a regression refuses the assertion, flags the credential and is audited
(W3C WebAuthn L3 §6.1.1); a transaction's challenge carries a hash of its data and its id comes from
the server-side challenge state, so a token for one transaction can never finish another; a
registration challenge cannot be finished as a login and vice versa, nor an MFA one at a passkey route.

MFA credentials (`mfa/registration`, Hanko's second factor: possession, UV preferred, not discoverable)
sign in through `mfa/login` only; every ceremony is audited with Hanko's event types
(services/passkey_audit.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import Connection

from passgate.ceremony.authentication import (
    CounterRegressed,
    begin_authentication,
    credential_id_of,
    verify_unknown,
)
from passgate.ceremony.encoding import b64url_decode, b64url_encode
from passgate.ceremony.policy import UserVerification
from passgate.ceremony.registration import (
    CHALLENGE_BYTES,
    Attestation,
    NewCredential,
    ResidentKey,
    begin_registration,
    finish_registration,
)
from passgate.errors import (
    ApiKeyMissing,
    AssertionFailed,
    AssertionUnreadable,
    AttestationFailed,
    BadRequest,
    CeremonyFailed,
    CreationUnreadable,
    MfaCredentialRefused,
    MfaCredentialRefusedForTransaction,
    NoCredentials,
    NotAuthenticated,
    PassgateError,
    RegistrationChallengeUnknown,
    SessionDataMissing,
    TransactionExists,
    UserNotFound,
)
from passgate.services import ceremonies, login, passkey_audit, passkey_tenants
from passgate.services.ceremonies import Purpose
from passgate.services.context import Context
from passgate.services.passkey_audit import NOBODY, Caller
from passgate.services.passkey_tenants import (
    Proof,
    issue_token,
    open_tenant,
    open_tenant_to_sign,
    require_key,
    tenant_context,
)
from passgate.services.registration import store_credential
from passgate.store import credentials, prepared, users
from passgate.store import tenants as store
from passgate.store.database import now
from passgate.store.records import ChallengeRecord, CredentialRecord, UserRecord
from passgate.store.tenants import TenantRecord, TokenKeyRecord

log = logging.getLogger("passgate.passkey_api")
R = TypeVar("R")
V = TypeVar("V")
USER_HANDLE_BYTES = 32  # the users row's own handle; authenticators get the backend's id (Hanko's choice)
MFA_USER_VERIFICATION: UserVerification = "preferred"  # Hanko's MFA default: a second factor, possession
# Hanko's audit-log event type of each ceremony: `<event>_init_succeeded`, `<event>_final_failed`, …
EVENTS: dict[Purpose, str] = {
    "api_register": "webauthn_registration",
    "api_mfa_register": "mfa_registration",
    "api_login": "webauthn_authentication",
    "api_mfa_login": "mfa_authentication",
    "api_transaction": "webauthn_transaction",
}


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Issued:
    """A token answer: `{"token": …}`."""

    token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Finished:
    tenant: TenantRecord
    key: TokenKeyRecord | None
    proof: Proof


# --------------------------------------------------------------------------- registration


async def registration_initialize(
    ctx: Context,
    tenant_id: str,
    api_key: str | None,
    *,
    user_id: str,
    username: str,
    display_name: str | None,
    caller: Caller = NOBODY,
    mfa: bool = False,
) -> dict[str, Any]:
    """Creation options for a passkey of the backend's user `user_id`: UV, resident key and attestation
    conveyance per the tenant, the user's existing credentials excluded. The user is created (or
    renamed) when it finishes. With `mfa`, for a second factor, as Hanko's MFA defaults: a roaming
    authenticator (`cross-platform`), no discoverable credential needed, UV preferred, attestation
    `none` (whatever the tenant's passkey policy)."""
    purpose: Purpose = "api_mfa_register" if mfa else "api_register"

    def work(connection: Connection) -> dict[str, Any] | PassgateError:
        tenant = open_tenant(connection, tenant_id, api_key, key_required=True)
        tctx = _context(ctx, tenant, mfa=mfa)

        def begin() -> dict[str, Any]:
            user = store.user_by_external_id(connection, tenant.tenant_id, user_id)
            shown = (display_name or "").strip() or username
            options, challenge = begin_registration(
                tctx.rp,
                user_handle=user_id.encode(),
                user_name=username,
                display_name=shown,
                exclude=credentials.ids_for_user(connection, user.id) if user else [],
                resident_key="discouraged" if mfa else _resident_key(tenant),
                attachment="cross-platform" if mfa else None,
                attestation="none" if mfa else _attestation(tenant),
            )
            state = {"user_id": user_id, "display_name": shown}
            _issue(connection, tctx, tenant, challenge, purpose, state)
            return options

        return _initialize(connection, tctx, caller, purpose, user_id, begin)

    return await ceremonies.run_finish(ctx, work)


async def registration_finalize(
    ctx: Context,
    tenant_id: str,
    credential: dict[str, Any],
    *,
    api_key: str | None = None,
    caller: Caller = NOBODY,
    mfa: bool = False,
) -> Issued:
    """Verify the attestation (W3C WebAuthn L3 §7.1, the core's checks) and store the credential; with
    `mfa` (the API key required) a second factor, from an `mfa/registration/initialize` challenge only."""
    purpose: Purpose = "api_mfa_register" if mfa else "api_register"
    tenancy = _Tenancy(ctx, tenant_id, api_key, key_required=mfa, mfa=mfa)

    def check(begun: ceremonies.Begun[None]) -> NewCredential:
        try:
            return finish_registration(
                tenancy.ctx.rp, credential=credential, expected_challenge=begun.record.challenge
            )
        except CeremonyFailed as exc:
            raise AttestationFailed(detail=exc.detail) from None
        except BadRequest as exc:
            raise CreationUnreadable(detail=exc.message) from None

    def write(connection: Connection, begun: ceremonies.Begun[None], new: NewCredential) -> _Finished:
        tctx, record = tenancy.ctx, begun.record
        key = passkey_tenants.opened(tctx, tenancy.key)  # a secret key gone: refused before any write
        user = _user_for(connection, tctx, str(record.state["user_id"]), str(record.state["display_name"]))
        try:
            store_credential(connection, tctx, user=user, new=new, is_mfa=mfa)
        except CeremonyFailed as exc:  # the credential id is registered already (any tenant)
            raise AttestationFailed(detail=exc.message) from None
        proof = Proof(
            user_id=user.user_name,
            credential_id=b64url_encode(new.credential_id),
            user_verified=new.user_verified,
            backup_eligible=new.backup_eligible,
        )
        return _Finished(tenant=tenancy.tenant, key=key, proof=proof)

    finished = await _finish(
        tenancy,
        caller,
        credential,
        purpose,
        ceremonies.read_nothing,
        check,
        write,
        RegistrationChallengeUnknown,
        CreationUnreadable,
    )
    return _token(ctx, finished)


def _user_for(connection: Connection, ctx: Context, external_id: str, display_name: str) -> UserRecord:
    """The tenant's user with the backend's id, created on its first passkey (its display name updated)."""
    user = store.user_by_external_id(connection, ctx.tenant_id, external_id)
    if user is not None:
        if user.display_name != display_name:
            store.set_display_name(connection, user.id, display_name)
        return user
    try:
        return users.create(
            connection,
            tenant_id=ctx.tenant_id,
            user_name=external_id,
            user_key=external_id,
            display_name=display_name,
            user_handle=secrets.token_bytes(USER_HANDLE_BYTES),
            at=now(),
        )
    except users.NameTaken:  # created by a concurrent finalize in the meantime
        found = store.user_by_external_id(connection, ctx.tenant_id, external_id)
        if found is None:
            raise
        return found


# --------------------------------------------------------------------------- login


async def login_initialize(
    ctx: Context,
    tenant_id: str,
    api_key: str | None,
    *,
    user_id: str | None,
    caller: Caller = NOBODY,
    mfa: bool = False,
) -> dict[str, Any]:
    """Request options: discoverable without `user_id` (no key needed); with it, the user's usable
    passkeys in `allowCredentials` (MFA credentials left out), and the API key is required (the answer
    lists them). With `mfa` (key and `user_id` required): every credential of the user, UV preferred."""
    purpose: Purpose = "api_mfa_login" if mfa else "api_login"

    def work(connection: Connection) -> dict[str, Any] | PassgateError:
        tenant = open_tenant(connection, tenant_id, api_key, key_required=mfa)
        if user_id is not None and not mfa:
            if not (api_key or "").strip():
                raise ApiKeyMissing()
            require_key(connection, tenant, api_key)
        tctx = _context(ctx, tenant, mfa=mfa)

        def begin() -> dict[str, Any]:
            offered, accepted, user = None, None, None
            if user_id is not None:
                user, offered, accepted = _usable(connection, tenant, user_id, UserNotFound, mfa=mfa)
            options, challenge = begin_authentication(tctx.rp, allow=offered or [])
            state = _assertion_state(accepted, user, require_uv=tctx.rp.require_user_verification)
            _issue(connection, tctx, tenant, challenge, purpose, state, user)
            return options

        return _initialize(connection, tctx, caller, purpose, user_id, begin)

    return await ceremonies.run_finish(ctx, work)


async def login_finalize(
    ctx: Context,
    tenant_id: str,
    credential: dict[str, Any],
    *,
    api_key: str | None = None,
    caller: Caller = NOBODY,
    mfa: bool = False,
) -> Issued:
    """Verify the assertion (W3C WebAuthn L3 §7.2, the core's checks, sign count included). With `mfa`
    (the API key required) the user is the one `mfa/login/initialize` named, whatever the userHandle."""
    purpose: Purpose = "api_mfa_login" if mfa else "api_login"
    return _token(ctx, await _assertion(ctx, tenant_id, api_key, credential, purpose, caller))


# --------------------------------------------------------------------------- transactions


async def transaction_initialize(
    ctx: Context,
    tenant_id: str,
    api_key: str | None,
    *,
    user_id: str,
    transaction_id: str,
    transaction_data: Any,
    caller: Caller = NOBODY,
) -> dict[str, Any]:
    """Request options for confirming a transaction: the challenge is 32 random bytes followed by
    SHA-256(transaction_id || canonical JSON of the data), as Hanko builds it, and the check must
    verify the user. A transaction id is used once per tenant (409 after)."""
    data = json.dumps(transaction_data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    challenge = (
        secrets.token_bytes(CHALLENGE_BYTES) + hashlib.sha256((transaction_id + data).encode()).digest()
    )

    def work(connection: Connection) -> dict[str, Any] | PassgateError:
        tenant = open_tenant(connection, tenant_id, api_key, key_required=True)
        tctx = tenant_context(ctx, tenant)

        def begin() -> dict[str, Any]:
            user = store.user_by_external_id(connection, tenant.tenant_id, user_id)
            if user is None:
                raise UserNotFound("unable to find user")
            try:
                store.add_transaction(
                    connection,
                    tenant_id=tenant.tenant_id,
                    transaction_id=transaction_id,
                    user_id=user.id,
                    data=data,
                    at=now(),
                )
            except store.TransactionExists:
                raise TransactionExists() from None
            _, offered, accepted = _usable(connection, tenant, user_id, UserNotFound, mfa=False)
            options, _ = begin_authentication(
                tctx.rp, allow=offered, user_verification="required", challenge=challenge
            )
            state = {**_assertion_state(accepted, user, require_uv=True), "transaction_id": transaction_id}
            _issue(connection, tctx, tenant, challenge, "api_transaction", state, user)
            return options

        return _initialize(
            connection, tctx, caller, "api_transaction", user_id, begin, transaction_id=transaction_id
        )

    return await ceremonies.run_finish(ctx, work)


async def transaction_finalize(
    ctx: Context, tenant_id: str, api_key: str | None, credential: dict[str, Any], caller: Caller = NOBODY
) -> Issued:
    return _token(ctx, await _assertion(ctx, tenant_id, api_key, credential, "api_transaction", caller))


# --------------------------------------------------------------------------- the assertion path


def _usable(
    connection: Connection, tenant: TenantRecord, user_id: str, missing: type[PassgateError], *, mfa: bool
) -> tuple[UserRecord, list[tuple[bytes, str]], list[bytes]]:
    """The user, the credentials to offer and those to accept. MFA credentials are offered to an MFA
    login only (as Hanko); every unflagged credential of the user is accepted, so that an MFA credential
    used for a login or a transaction gets the contract's own 400 once its signature verified. Either
    way nothing but an offered credential (W3C WebAuthn L3 §7.2 step 5) ever finishes the ceremony."""
    user = store.user_by_external_id(connection, tenant.tenant_id, user_id)
    if user is None or user.disabled:
        raise missing()
    usable = [record for record in credentials.for_user(connection, user.id) if record.flagged_at is None]
    offered = [(record.credential_id, record.transports) for record in usable if mfa or not record.is_mfa]
    if not offered:
        raise NoCredentials()
    return user, offered, [record.credential_id for record in usable]


def _assertion_state(
    accepted: list[bytes] | None, user: UserRecord | None, *, require_uv: bool
) -> dict[str, Any]:
    return {
        "allowed": [b64url_encode(cid) for cid in accepted] if accepted is not None else None,
        "require_uv": require_uv,
        "user": user.id if user else None,
        "actor": user.user_name if user else None,
    }


def _resident_key(tenant: TenantRecord) -> ResidentKey:
    return tenant.resident_key  # type: ignore[return-value]  # checked by config/tenants.py when set


def _attestation(tenant: TenantRecord) -> Attestation:
    return tenant.attestation  # type: ignore[return-value]  # checked by config/tenants.py when set


def _context(ctx: Context, tenant: TenantRecord, *, mfa: bool) -> Context:
    """The tenant's context; for MFA ceremonies with Hanko's MFA user-verification default."""
    tctx = tenant_context(ctx, tenant)
    return replace(tctx, rp=replace(tctx.rp, user_verification=MFA_USER_VERIFICATION)) if mfa else tctx


def _initialize(
    connection: Connection,
    tctx: Context,
    caller: Caller,
    purpose: Purpose,
    actor: str | None,
    begin: Callable[[], dict[str, Any]],
    **detail: Any,
) -> dict[str, Any] | PassgateError:
    """Run an initialize once its tenant (and key) passed, and audit it. A refusal is recorded and
    returned (`ceremonies.run_finish` raises it after the commit); what it began is rolled back."""
    event = EVENTS[purpose]
    try:
        with prepared.savepoint(connection):
            options = begin()
    except PassgateError as exc:
        if exc.status >= 500:
            raise
        passkey_audit.record(
            connection,
            tctx.tenant_id,
            caller,
            f"{event}_init_failed",
            actor=actor,
            error=exc.message,
            **detail,
        )
        return exc
    passkey_audit.record(connection, tctx.tenant_id, caller, f"{event}_init_succeeded", actor=actor, **detail)
    return options


def _issue(
    connection: Connection,
    tctx: Context,
    tenant: TenantRecord,
    challenge: bytes,
    purpose: Purpose,
    state: dict[str, Any],
    user: UserRecord | None = None,
) -> None:
    ceremonies.issue(
        connection,
        tctx,
        challenge=challenge,
        purpose=purpose,
        state=state,
        user_id=user.id if user else None,
        ttl=tenant.timeout_ms / 1000,
    )


async def _assertion(
    ctx: Context,
    tenant_id: str,
    api_key: str | None,
    credential: dict[str, Any],
    purpose: Purpose,
    caller: Caller,
) -> _Finished:
    keyed = purpose in ("api_transaction", "api_mfa_login")
    tenancy = _Tenancy(ctx, tenant_id, api_key, key_required=keyed, mfa=purpose == "api_mfa_login")

    credential_id = login.presented_id(credential)

    def read(connection: Connection, _record: ChallengeRecord) -> tuple[CredentialRecord, str] | None:
        if credential_id is None:
            return None
        return store.credential_in_tenant(connection, tenancy.tenant.tenant_id, credential_id)

    def check(begun: ceremonies.Begun[tuple[CredentialRecord, str] | None]) -> login.Verified[str]:
        record, found, tctx = begun.record, begun.found, tenancy.ctx
        if found is None:  # unknown here, or another tenant's: the same work, the same answer
            try:
                verify_unknown(tctx.rp, credential=credential, expected_challenge=record.challenge)
            except CeremonyFailed as exc:
                raise AssertionFailed(detail=exc.detail) from None
        assert found is not None
        stored, external_id = found
        try:
            # the user handle is what registration gave the authenticator as user.id: the backend's id
            handle = external_id.encode()
            return login.verify(tctx, credential, record, stored, external_id, handle, begun.client_data)
        except CeremonyFailed as exc:
            raise AssertionFailed(detail=exc.detail) from None

    def write(
        connection: Connection,
        begun: ceremonies.Begun[tuple[CredentialRecord, str] | None],
        verified: login.Verified[str],
    ) -> _Finished | PassgateError:
        return _record_assertion(connection, tenancy, begun.record, verified)

    return await _finish(
        tenancy,
        caller,
        credential,
        purpose,
        read,
        check,
        write,
        SessionDataMissing,
        AssertionUnreadable,
        savepoint=False,  # `_record_assertion` writes nothing before its last refusal
    )


def _record_assertion(
    connection: Connection, tenancy: _Tenancy, record: ChallengeRecord, verified: login.Verified[str]
) -> _Finished | PassgateError:
    """The write of a verified assertion, on the credential as it is now (another request may have used,
    flagged or deleted it since the check)."""
    tctx, tenant = tenancy.ctx, tenancy.tenant
    fresh = store.credential_in_tenant(connection, tenant.tenant_id, verified.stored.credential_id)
    if fresh is None or fresh[0].user_id != verified.stored.user_id:
        raise AssertionFailed(detail="credential deleted during the ceremony")
    stored, external_id = fresh
    result = login.counted(connection, tctx, verified, stored)
    if isinstance(result, CounterRegressed):
        return AssertionFailed(detail=result.detail)  # returned: the flag and its audit event are kept
    if stored.flagged_at is not None:
        raise AssertionFailed(detail="credential flagged after a sign-count regression")
    if record.user_id is not None and stored.user_id != record.user_id:
        raise AssertionFailed(detail="credential of another user than the ceremony's")
    if stored.is_mfa and record.purpose == "api_transaction":
        raise MfaCredentialRefusedForTransaction()
    if stored.is_mfa and record.purpose != "api_mfa_login":
        raise MfaCredentialRefused()
    key = passkey_tenants.opened(tctx, tenancy.key)  # a secret key gone: refused here, before any write
    transaction_id = record.state.get("transaction_id")
    if transaction_id is not None and not store.finish_transaction(
        connection, tenant.tenant_id, str(transaction_id), now()
    ):
        raise AssertionFailed(detail="transaction finished before")
    credentials.record_use(
        connection,
        stored.credential_id,
        sign_count=result.sign_count,
        backup_state=result.backup_state,
        user_verified=result.user_verified,
        at=now(),
    )
    proof = Proof(
        user_id=external_id,
        credential_id=b64url_encode(stored.credential_id),
        user_verified=result.user_verified,
        backup_eligible=stored.backup_eligible,
        transaction_id=str(transaction_id) if transaction_id is not None else None,
    )
    return _Finished(tenant=tenant, key=key, proof=proof)


class _Tenancy:
    """The tenant a finalize belongs to: opened (with its API key when the call needs one, and its
    signing key, in one statement) first in the finish's first unit of work, before any challenge is
    read (`ceremonies.finish_verified`'s `opening`); then its context, tenant and key for the steps."""

    def __init__(self, ctx: Context, tenant_id: str, api_key: str | None, *, key_required: bool, mfa: bool):
        self.base, self._tenant_id, self._api_key = ctx, tenant_id, api_key
        self._key_required, self._mfa = key_required, mfa
        self._opened: tuple[TenantRecord, TokenKeyRecord | None, Context] | None = None

    def open(self, connection: Connection) -> Context:
        tenant, key = open_tenant_to_sign(
            connection, self._tenant_id, self._api_key, key_required=self._key_required
        )
        self._opened = (tenant, key, _context(self.base, tenant, mfa=self._mfa))
        return self._opened[2]

    @property
    def tenant(self) -> TenantRecord:
        assert self._opened is not None
        return self._opened[0]

    @property
    def key(self) -> TokenKeyRecord | None:
        assert self._opened is not None
        return self._opened[1]

    @property
    def ctx(self) -> Context:
        assert self._opened is not None
        return self._opened[2]


async def _finish(
    tenancy: _Tenancy,
    caller: Caller,
    credential: dict[str, Any],
    purpose: Purpose,
    read: Callable[[Connection, ChallengeRecord], R],
    check: Callable[[ceremonies.Begun[R]], V],
    write: Callable[[Connection, ceremonies.Begun[R], V], _Finished | PassgateError],
    unknown: type[PassgateError],
    unreadable: type[PassgateError],
    *,
    savepoint: bool = True,
) -> _Finished:
    """The core's finish-exactly-once (`ceremonies.finish_verified`: the signature checked with no
    transaction open) in the tenant `tenancy` opens, with Hanko's titles for an unreadable body or
    unknown challenge, audited once a ceremony was consumed (an unknown challenge records nothing: no
    one can flood the log without first starting ceremonies, which is rate-limited)."""
    consumed: list[ChallengeRecord] = []
    registering = purpose in ("api_register", "api_mfa_register")

    def opening(connection: Connection) -> Context:
        tctx = tenancy.open(connection)
        _require_credential_shape(credential, unreadable)
        return tctx

    def audited(
        connection: Connection, record: ChallengeRecord, outcome: _Finished | PassgateError
    ) -> _Finished | PassgateError:
        consumed.append(record)
        if isinstance(outcome, PassgateError) and outcome.status >= 500:
            return outcome  # the server's own trouble (a signing key no secret opens): not the caller's
        if isinstance(outcome, PassgateError) and not isinstance(
            outcome, (NotAuthenticated, AttestationFailed, MfaCredentialRefused)
        ):
            outcome = (AttestationFailed if registering else AssertionFailed)(detail=outcome.detail)
        _audit_final(connection, tenancy.ctx, caller, purpose, record, credential, outcome)
        return outcome

    try:
        outcome = await ceremonies.finish_verified(
            tenancy.base,
            credential,
            purpose,
            read=read,
            check=check,
            write=write,
            failure=CeremonyFailed,
            savepoint=savepoint,
            opening=opening,
            consumed=audited,
        )
    except BadRequest as exc:  # clientDataJSON unreadable: nothing was consumed
        if isinstance(exc, unreadable):
            raise
        raise unreadable(detail=exc.detail or exc.message) from None
    if not consumed:  # the challenge was unknown, used, expired, another tenant's or for another purpose
        raise unknown(detail=outcome.detail if isinstance(outcome, PassgateError) else None)
    if isinstance(outcome, PassgateError):
        raise outcome
    return outcome


def _audit_final(
    connection: Connection,
    tctx: Context,
    caller: Caller,
    purpose: Purpose,
    record: ChallengeRecord,
    credential: dict[str, Any],
    outcome: _Finished | PassgateError,
) -> None:
    event = EVENTS[purpose]
    transaction_id = record.state.get("transaction_id")
    detail = {"transaction_id": str(transaction_id)} if transaction_id is not None else {}
    if isinstance(outcome, PassgateError):
        actor = _failed_actor(connection, tctx, record, credential)
        kind, error = f"{event}_final_failed", outcome.message
        passkey_audit.record(connection, tctx.tenant_id, caller, kind, actor=actor, error=error, **detail)
        return
    actor = outcome.proof.user_id
    passkey_audit.record(
        connection, tctx.tenant_id, caller, f"{event}_final_succeeded", actor=actor, **detail
    )


def _failed_actor(
    connection: Connection, tctx: Context, record: ChallengeRecord, credential: dict[str, Any]
) -> str | None:
    """Whom a failed finish concerned: the ceremony's user (a registration's, a named login's), else
    the owner of the credential presented, when this tenant knows it (a discoverable login's)."""
    named = record.state.get("user_id") or record.state.get("actor")
    if named is not None:
        return str(named)
    if record.purpose == "api_register" or record.purpose == "api_mfa_register":
        return None
    try:
        found = store.credential_in_tenant(connection, tctx.tenant_id, credential_id_of(credential))
    except BadRequest:  # no readable rawId: no one in particular
        return None
    return found[1] if found is not None else None


def _require_credential_shape(credential: dict[str, Any], unreadable: type[PassgateError]) -> None:
    """What go-webauthn's parser demands before anything else: a non-empty base64url `id`, `type`
    `public-key` and a `response` object."""
    raw_id = credential.get("id")
    if not isinstance(raw_id, str) or not raw_id or credential.get("type") != "public-key":
        raise unreadable(detail="id missing or type not public-key")
    if not isinstance(credential.get("response"), dict):
        raise unreadable(detail="response is not an object")
    try:
        b64url_decode(raw_id, field="id")
    except BadRequest:
        raise unreadable(detail="id is not base64url") from None


def _token(ctx: Context, finished: _Finished) -> Issued:
    if finished.key is None:
        raise PassgateError(detail=f"tenant {finished.tenant.tenant_id} has no signing key")
    return Issued(issue_token(ctx, finished.tenant, finished.key, finished.proof))

"""Sign-in: usernameless or named, and the signed-in re-check that step-up asks for."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection

from passgate.ceremony.authentication import (
    AssertionResult,
    CounterRegressed,
    StoredCredential,
    begin_authentication,
    check_counter,
    credential_id_of,
    finish_authentication,
    verify_unknown,
)
from passgate.ceremony.client_data import ClientData
from passgate.ceremony.encoding import b64url_decode, b64url_encode
from passgate.errors import BadRequest, CeremonyFailed, PassgateError, SignInFailed
from passgate.services import ceremonies, names, revocation, sessions
from passgate.services.ceremonies import Client
from passgate.services.context import Context
from passgate.services.decoys import decoy_allow_list, is_decoy
from passgate.services.sessions import Current, SignedIn
from passgate.store import audit, credentials, users
from passgate.store.database import now
from passgate.store.records import ChallengeRecord, CredentialRecord, SessionRecord, UserRecord

log = logging.getLogger("passgate.login")
Owner = TypeVar("Owner")


async def begin(
    ctx: Context, *, user_name: str | None, current: Current | None, client: Client
) -> dict[str, Any]:
    """Request options. With no name: usernameless (empty allowCredentials, conditional UI works).

    With a name, the options list that user's credentials, or a stable decoy list when the name is
    unknown, so the answer never tells whether an account exists (W3C WebAuthn L3 §14.6.2).
    With a signed-in session, finishing refreshes that session (the step-up re-check).
    """
    key = names.user_name(user_name, new=False).key if user_name else None
    uv = "required" if current is not None else None  # a re-check must verify the user
    session_id = current.session.id if current else None

    def options_for(allow: list[tuple[bytes, str]]) -> tuple[dict[str, Any], bytes, dict[str, Any]]:
        options, challenge = begin_authentication(ctx.rp, allow=allow, user_verification=uv)
        state = {
            "allowed": [b64url_encode(credential_id) for credential_id, _ in allow] if key else None,
            "require_uv": ctx.rp.require_user_verification or current is not None,
            "origin": client.origin,
        }
        return options, challenge, state

    # Usernameless (the common case) reads nothing: its options are made before the unit of work, which
    # then only stores the challenge (on SQLite the write lock is held for the insert alone).
    made = options_for([]) if key is None else None

    def work(connection: Connection) -> dict[str, Any]:
        options, challenge, state = made or options_for(_allowed(connection, ctx, key))
        ceremonies.issue(
            connection, ctx, challenge=challenge, purpose="login", state=state, session_id=session_id
        )
        return options

    return await ctx.db.run(work, atomic=False)  # one INSERT, after reads it does not depend on


def _allowed(connection: Connection, ctx: Context, key: str | None) -> list[tuple[bytes, str]]:
    """The named user's credentials, or a stable decoy list when the name is unknown or disabled."""
    assert key is not None  # a usernameless begin made its options before its unit of work
    user = users.by_key(connection, ctx.tenant_id, key)
    allow = credentials.ids_for_user(connection, user.id) if user and not user.disabled else []
    return allow or decoy_allow_list(connection, ctx, key)


class UnknownCredential(SignInFailed):
    """A failed sign-in like every other (same status, code and message), plus `unknown_credential`: the
    id of a credential that no account owns, so the page can call `signalUnknownCredential` and the
    browser stops offering a passkey that was deleted here.

    Why an unknown credential still looks like a bad signature from outside (W3C WebAuthn L3 §14.6.3): it is
    said only in a usernameless ceremony, where the credential id came from the person's own
    authenticator, never from a list this server handed out, and so tells its holder only that their
    own passkey is gone. It is never said for a credential some account owns (in any tenant), nor for
    the decoy ids that a named `login/begin` returns for unknown names (recognised by their tag): else
    replaying a decoy would reveal that the name has no account. The work done (decoy verification)
    is the same as for any other failure.
    """

    def __init__(self, credential_id: bytes, *, detail: str | None = None):
        super().__init__(detail=detail)
        self.credential_id = b64url_encode(credential_id)

    def to_json(self) -> dict[str, str]:
        return {**super().to_json(), "unknown_credential": self.credential_id}


def _unknown(
    ctx: Context, record: ChallengeRecord, credential: dict[str, Any], failure: CeremonyFailed, *, owned: bool
) -> SignInFailed:
    credential_id = credential_id_of(credential)
    usernameless = record.state.get("allowed") is None and record.session_id is None
    if owned or not usernameless or is_decoy(ctx, credential_id):
        return SignInFailed(detail=failure.detail)
    return UnknownCredential(credential_id, detail=failure.detail)


@dataclass(frozen=True, slots=True)
class Verified(Generic[Owner]):
    """An assertion whose signature verified, with the credential as read before the check and its owner
    (an account, or a passkey-API backend's user id); `result` is the counter's refusal when the sign
    count went backwards (a cloned authenticator, §6.1.1), for the write to act on."""

    stored: CredentialRecord
    owner: Owner
    result: AssertionResult | CounterRegressed


Found = tuple[CredentialRecord, UserRecord] | None


async def finish(
    ctx: Context, *, credential: dict[str, Any], client: Client, current: Current | None
) -> SignedIn:
    """Verify the assertion and start a session, or refresh the signed-in one (same user).

    Every failure answers SignInFailed with one message: unknown credential, wrong user, bad signature,
    replay, flagged credential or disabled account look the same from outside. On SQLite the verify holds
    no write lock (`ceremonies.finish_verified`); the write re-reads the credential and its owner.
    """
    credential_id = presented_id(credential)

    def read(connection: Connection, _record: ChallengeRecord) -> Found:
        return credentials.get_with_owner(connection, credential_id) if credential_id is not None else None

    def check(begun: ceremonies.Begun[Found]) -> Verified[UserRecord]:
        record, found = begun.record, begun.found
        # A re-check begun by a signed-in session can only be finished by that session (§13.5.3).
        if record.session_id is not None and (current is None or current.session.id != record.session_id):
            raise SignInFailed(detail="challenge bound to another session")
        if found is None or found[0].tenant_id != ctx.tenant_id:
            try:
                verify_unknown(ctx.rp, credential=credential, expected_challenge=record.challenge)
            except CeremonyFailed as exc:
                raise _unknown(ctx, record, credential, exc, owned=found is not None) from None
        assert found is not None
        stored, owner = found
        checked = verify(ctx, credential, record, stored, owner, owner.user_handle, begun.client_data)
        # W3C WebAuthn L3 §7.2 step 6: a re-check identified its user by the session; another account's
        # passkey does not finish it (sign out first to switch accounts).
        if record.session_id is not None and current is not None and owner.id != current.user.id:
            raise SignInFailed(detail="credential belongs to another account than the signed-in one")
        return checked

    def write(
        connection: Connection, begun: ceremonies.Begun[Found], verified: Verified[UserRecord]
    ) -> SignedIn | PassgateError:
        # What another request may have changed since the check: the sign count, a flag, the account.
        fresh = credentials.get_with_owner(connection, verified.stored.credential_id)
        if fresh is None or fresh[0].user_id != verified.stored.user_id:
            raise SignInFailed(detail="credential deleted during the sign-in")
        stored, owner = fresh
        result = counted(connection, ctx, verified, stored)
        if isinstance(result, CounterRegressed):
            return SignInFailed(detail=result.detail)  # returned: the flag and its audit event are kept
        if stored.flagged_at is not None or owner.disabled:
            raise SignInFailed(detail="credential flagged or account disabled")
        credentials.record_use(
            connection,
            stored.credential_id,
            sign_count=result.sign_count,
            backup_state=result.backup_state,
            user_verified=result.user_verified,
            at=now(),
        )
        return _sign_in(connection, ctx, begun.record, owner, stored, result, client, current)

    try:
        outcome = await ceremonies.finish_verified(
            ctx,
            credential,
            "login",
            read=read,
            check=check,
            write=write,
            failure=SignInFailed,
            savepoint=False,
        )
    except BadRequest as exc:  # unreadable clientDataJSON: nothing was consumed or written
        outcome = exc
    if isinstance(outcome, PassgateError):
        log.info("sign-in failed: %s", _loggable(outcome.detail or outcome.code))
        if isinstance(outcome, SignInFailed):  # UnknownCredential included
            raise outcome
        raise SignInFailed(detail=outcome.detail) if isinstance(outcome, BadRequest) else outcome
    return outcome


def presented_id(credential: dict[str, Any]) -> bytes | None:
    """The id of the credential presented; None when its rawId cannot be read, which the check then
    refuses like an unknown credential (the challenge burnt like any other failure's)."""
    try:
        return credential_id_of(credential)
    except BadRequest:
        return None


def verify_assertion(
    ctx: Context,
    credential: dict[str, Any],
    record: ChallengeRecord,
    stored: CredentialRecord,
    owner_user_handle: bytes,
    client_data: ClientData | None = None,
) -> AssertionResult:
    """W3C WebAuthn L3 §7.2 for a stored credential, with what the ceremony's begin recorded: the allowed
    ids, whether UV is required, the origin. Raises CeremonyFailed or CounterRegressed."""
    allowed = record.state.get("allowed")
    return finish_authentication(
        ctx.rp,
        credential=credential,
        expected_challenge=record.challenge,
        stored=StoredCredential(
            credential_id=stored.credential_id,
            public_key=stored.public_key,
            sign_count=stored.sign_count,
            backup_eligible=stored.backup_eligible,
            owner_user_handle=owner_user_handle,
        ),
        allowed_ids=frozenset(b64url_decode(item) for item in allowed) if allowed is not None else None,
        require_user_verification=bool(record.state.get("require_uv")),
        origin=record.state.get("origin"),
        client_data=client_data,
    )


def verify(
    ctx: Context,
    credential: dict[str, Any],
    record: ChallengeRecord,
    stored: CredentialRecord,
    owner: Owner,
    owner_user_handle: bytes,
    client_data: ClientData,
) -> Verified[Owner]:
    """`verify_assertion` for a finish that writes later (`ceremonies.finish_verified`): a sign count
    gone backwards is kept for the write, which flags the credential (`counted`), not raised."""
    try:
        result = verify_assertion(ctx, credential, record, stored, owner_user_handle, client_data)
    except CounterRegressed as exc:
        return Verified(stored, owner, exc)
    return Verified(stored, owner, result)


def counted(
    connection: Connection, ctx: Context, verified: Verified[Any], stored: CredentialRecord
) -> AssertionResult | CounterRegressed:
    """W3C WebAuthn L3 §7.2 step 22 once more, on `stored`, the credential as the write re-read it
    (another sign-in may have moved its count since the check): a count that went backwards flags the
    credential (`flag_clone`) and is returned as the refusal, to be committed with the flag."""
    result = verified.result
    try:
        if isinstance(result, CounterRegressed):
            raise result
        check_counter(result.sign_count, stored.sign_count)
    except CounterRegressed as exc:
        flag_clone(connection, ctx, stored, str(exc.detail))
        return exc
    return result


def _sign_in(
    connection: Connection,
    ctx: Context,
    record: ChallengeRecord,
    owner: UserRecord,
    stored: CredentialRecord,
    result: AssertionResult,
    client: Client,
    current: Current | None,
) -> SignedIn:
    signed_in_session = _session_to_refresh(record, owner, current)
    if signed_in_session is not None:
        return sessions.refresh(
            connection,
            ctx,
            signed_in_session,
            user=owner,
            credential_id=stored.credential_id,
            user_verified=result.user_verified,
            backup_eligible=stored.backup_eligible,
        )
    if current is not None:  # someone else signed in on this browser: the old session ends
        revocation.end_session_now(connection, ctx, current, reason="replaced_by_sign_in")
    return sessions.start(
        connection,
        ctx,
        user=owner,
        credential_id=stored.credential_id,
        user_verified=result.user_verified,
        backup_eligible=stored.backup_eligible,
        client=client,
    )


def _session_to_refresh(
    record: ChallengeRecord, owner: UserRecord, current: Current | None
) -> SessionRecord | None:
    if current is None or record.session_id != current.session.id or current.user.id != owner.id:
        return None
    return current.session


def flag_clone(connection: Connection, ctx: Context, stored: CredentialRecord, reason: str) -> None:
    """A cloned-authenticator signal (W3C WebAuthn L3 §6.1.1): the credential can no longer sign in until
    its owner clears it with another passkey, and every session it opened or confirmed ends: the clone's
    as well as the original's, since nobody can tell them apart."""
    at = now()
    revocation.end_every_session(
        connection,
        ctx,
        user_id=stored.user_id,
        reason="passkey_flagged",
        acting=None,
        credential_id=stored.credential_id,
    )
    credentials.flag(connection, stored.credential_id, reason, at)
    audit.record(
        connection,
        tenant_id=ctx.tenant_id,
        user_id=stored.user_id,
        kind="credential_flagged",
        at=at,
        credential_id=b64url_encode(stored.credential_id),
        reason=reason,
    )
    log.warning("credential %s flagged: %s", b64url_encode(stored.credential_id), reason)


def _loggable(text: str | None) -> str:
    """Library messages may quote attacker input: escape control characters before logging."""
    return (text or "").encode("unicode_escape").decode("ascii")[:300]

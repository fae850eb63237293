"""Step-up: the one table of what each action on an account needs, and the one check every face calls.

An action that changes how someone can get into an account (passkeys, device links) or ends what another
device can do (its sessions) needs a passkey check with user verification newer than
`PASSGATE_STEPUP_MAX_AGE` (ASVS 5.0 V7.5.1: adding or removing an authenticator needs re-authentication).
A stolen or idle cookie is then not an account: it can look, and sign itself out, but not change who gets
in. The only ways in without a session are signing up (the account's first passkey), signing in, and a
device link used by its holder.

Every face (REST, WebSocket, pages, and later OIDC and the passkey API) names its action with `acts` and
calls `require` (the services call it too, before their unit of work); a test walks the app's routes and
fails when a state-changing route names no action of this table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import Enum, StrEnum
from typing import Final, TypeVar

from passgate.errors import ReauthRequired
from passgate.services.context import Context
from passgate.services.sessions import Current
from passgate.store import audit
from passgate.store.database import now


class Need(Enum):
    NOTHING = "nothing: it is a way in, or ends only the caller's own session"
    SESSION = "a signed-in session"
    RECENT_CHECK = "a passkey check with user verification within PASSGATE_STEPUP_MAX_AGE"
    API_KEY = "a valid API key of the tenant named in the path (the passkey API for other backends)"


class Action(StrEnum):
    # ways in
    SIGN_UP = "sign_up"
    SIGN_IN = "sign_in"  # includes the signed-in re-check that step-up asks for
    USE_DEVICE_LINK = "use_device_link"
    SET_SESSION_COOKIE = "set_session_cookie"  # a token from a WebSocket ceremony becomes the cookie
    SIGN_OUT = "sign_out"  # this session only
    # what a session may do on its own account
    VIEW_ACCOUNT = "view_account"  # a POST for compatibility (`/auth/user-info`); changes nothing
    SET_DISPLAY_NAME = "set_display_name"
    ADD_PASSKEY = "add_passkey"
    RENAME_PASSKEY = "rename_passkey"
    DELETE_PASSKEY = "delete_passkey"
    UNBLOCK_PASSKEY = "unblock_passkey"
    CREATE_DEVICE_LINK = "create_device_link"
    REVOKE_DEVICE_LINK = "revoke_device_link"
    END_OTHER_SESSION = "end_other_session"
    END_ALL_SESSIONS = "end_all_sessions"
    # OpenID Connect: apps ask; the person signs in, re-checks and consents on Passgate's own pages
    OIDC_AUTHORIZE = "oidc_authorize"  # sends to sign-in or a re-check; issues a code to a signed-in user
    OIDC_GRANT_CONSENT = "oidc_grant_consent"
    OIDC_REVOKE_CONSENT = "oidc_revoke_consent"  # forgets the consent and revokes the app's tokens
    OIDC_TOKEN = "oidc_token"  # noqa: S105 - client-authenticated: code or refresh token for tokens
    OIDC_USERINFO = "oidc_userinfo"  # a bearer token reads its claims; changes nothing
    OIDC_REVOKE_TOKEN = "oidc_revoke_token"  # noqa: S105 - client-authenticated, RFC 7009
    OIDC_INTROSPECT = "oidc_introspect"  # client-authenticated, RFC 7662; changes nothing
    OIDC_END_SESSION = "oidc_end_session"  # this session only, after an ID token hint or a confirmation
    # the passkey API for other backends (services/passkey_api.py); its callers are backends, not sessions
    PASSKEY_API_REGISTER = "passkey_api_register"
    PASSKEY_API_SIGN_IN = "passkey_api_sign_in"
    PASSKEY_API_FINISH = "passkey_api_finish"
    PASSKEY_API_TRANSACTION = "passkey_api_transaction"
    PASSKEY_API_MANAGE = "passkey_api_manage"
    PASSKEY_API_MFA = "passkey_api_mfa"
    PASSKEY_API_NOT_FOUND = "passkey_api_not_found"


POLICY: Final[dict[Action, Need]] = {
    Action.SIGN_UP: Need.NOTHING,
    Action.SIGN_IN: Need.NOTHING,
    Action.USE_DEVICE_LINK: Need.NOTHING,
    Action.SET_SESSION_COOKIE: Need.NOTHING,
    Action.SIGN_OUT: Need.NOTHING,
    Action.VIEW_ACCOUNT: Need.SESSION,
    Action.SET_DISPLAY_NAME: Need.SESSION,  # what passkey pickers show; grants nothing
    Action.ADD_PASSKEY: Need.RECENT_CHECK,  # begin and finish
    Action.RENAME_PASSKEY: Need.RECENT_CHECK,
    Action.DELETE_PASSKEY: Need.RECENT_CHECK,
    Action.UNBLOCK_PASSKEY: Need.RECENT_CHECK,  # and the check was made with another passkey
    Action.CREATE_DEVICE_LINK: Need.RECENT_CHECK,
    Action.REVOKE_DEVICE_LINK: Need.RECENT_CHECK,
    Action.END_OTHER_SESSION: Need.RECENT_CHECK,
    Action.END_ALL_SESSIONS: Need.RECENT_CHECK,
    Action.OIDC_AUTHORIZE: Need.NOTHING,  # prompt/max_age/acr_values re-checks use is_recent below
    Action.OIDC_GRANT_CONSENT: Need.SESSION,
    Action.OIDC_REVOKE_CONSENT: Need.SESSION,  # only takes access away
    Action.OIDC_TOKEN: Need.NOTHING,
    Action.OIDC_USERINFO: Need.NOTHING,
    Action.OIDC_REVOKE_TOKEN: Need.NOTHING,
    Action.OIDC_INTROSPECT: Need.NOTHING,
    Action.OIDC_END_SESSION: Need.NOTHING,
    Action.PASSKEY_API_REGISTER: Need.API_KEY,  # starting a registration names the backend's user
    # A way in. Discoverable: anyone may ask for options. With a `user_id`, the key is required too
    # (checked in services/passkey_api.py), since the answer lists that user's credentials.
    Action.PASSKEY_API_SIGN_IN: Need.NOTHING,
    # A way in: the single-use challenge that a keyed (or discoverable) initialize issued is the proof.
    Action.PASSKEY_API_FINISH: Need.NOTHING,
    Action.PASSKEY_API_TRANSACTION: Need.API_KEY,  # initialize and finalize
    Action.PASSKEY_API_MANAGE: Need.API_KEY,  # rename and delete a tenant's credentials
    Action.PASSKEY_API_MFA: Need.API_KEY,  # MFA registration and login, initialize and finalize
    Action.PASSKEY_API_NOT_FOUND: Need.NOTHING,  # an unknown path under /passkeys: a 404 that changes nothing
}


def is_recent(current: Current, max_age: float) -> bool:
    """Whether the session's last passkey check used user verification and is at most `max_age` s old."""
    return now() <= recent_until(current, max_age)


def recent_until(current: Current, max_age: float) -> float:
    """The last moment `is_recent` holds (minus infinity when the last check did not verify the user)."""
    session = current.session
    return session.auth_time + max_age if session.user_verified else -math.inf


def allows(ctx: Context, current: Current, action: Action) -> bool:
    if POLICY[action] is Need.RECENT_CHECK:
        return is_recent(current, ctx.settings.stepup_max_age)
    return True


async def require(ctx: Context, current: Current, action: Action) -> None:
    """Raise ReauthRequired (audited) unless the session may do `action` now."""
    if allows(ctx, current, action):
        return
    await ctx.db.run(
        lambda connection: audit.record(
            connection,
            tenant_id=ctx.tenant_id,
            user_id=current.user.id,
            session_id=current.session.id,
            kind="stepup_required",
            at=now(),
            action=str(action),
        )
    )
    raise ReauthRequired()


F = TypeVar("F", bound=Callable[..., object])


def acts(action: Action) -> Callable[[F], F]:
    """Name the action a route or WebSocket endpoint performs (its row in POLICY), and say in its
    OpenAPI description what it needs."""

    def mark(endpoint: F) -> F:
        endpoint.passgate_action = action  # type: ignore[attr-defined]
        need = POLICY[action]
        if need is not Need.NOTHING:
            endpoint.__doc__ = f"{(endpoint.__doc__ or '').rstrip()}\n\nNeeds {need.value} (`{action}`)."
        return endpoint

    return mark

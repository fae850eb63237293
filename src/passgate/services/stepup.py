"""Step-up: one rule for every face — a passkey check with user verification newer than `max_age`."""

from __future__ import annotations

from passgate.errors import ReauthRequired
from passgate.services.sessions import Current
from passgate.store.database import now


def is_recent(current: Current, max_age: float) -> bool:
    return current.session.user_verified and now() - current.session.auth_time <= max_age


def require_recent(current: Current, max_age: float) -> None:
    """Raise ReauthRequired unless the session's last passkey check (with UV) is newer than max_age s."""
    if not is_recent(current, max_age):
        raise ReauthRequired()

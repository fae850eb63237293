"""The services' shared state: settings, database, relying party, token signer. Built once at start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from passgate.ceremony.policy import ALGORITHMS, RelyingParty
from passgate.config import Settings
from passgate.memo import Memo
from passgate.services.tokens import SessionTokens
from passgate.store.database import Database
from passgate.store.models import BUILTIN_TENANT


@dataclass
class Context:
    settings: Settings
    db: Database
    rp: RelyingParty
    tokens: SessionTokens
    keys: list[bytes]
    tenant_id: str = BUILTIN_TENANT
    # Told at once when sessions end (user id; session ids, or None for all of the user's): this
    # process's memories forget them before the next request (services/revocation.py).
    revocation_listeners: list[Callable[[str, list[str] | None], None]] = field(default_factory=list)
    # Sessions as last read, with the database's mark then (services/sessions.py `authenticate`).
    session_reads: Memo[str, tuple[object, object]] = field(default_factory=lambda: Memo(4096))

    @classmethod
    def build(cls, settings: Settings, db: Database | None = None) -> Context:
        keys = settings.signing_keys()
        rp = RelyingParty(
            rp_id=settings.rp_id,
            rp_name=settings.rp_name,
            origins=tuple(settings.origins),
            user_verification=settings.user_verification,
            algorithms=tuple(ALGORITHMS[name] for name in settings.algorithms),
            timeout_ms=settings.ceremony_timeout_ms,
        )
        return cls(
            settings=settings,
            db=db or Database(settings.sqlalchemy_url, timeout=settings.database_timeout),
            rp=rp,
            tokens=SessionTokens(keys),
            keys=keys,
        )

    def announce_revocation(self, user_id: str, session_ids: list[str] | None) -> None:
        for listener in self.revocation_listeners:
            listener(user_id, session_ids)

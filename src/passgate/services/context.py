"""The services' shared state: settings, database, relying party, token signer. Built once at start."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from passgate.ceremony.policy import ALGORITHMS, RelyingParty
from passgate.config import Settings
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
    _derived: dict[str, bytes] = field(default_factory=dict)

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

    def derived_key(self, purpose: str) -> bytes:
        """A key for one purpose (e.g. decoy credential ids), derived from the current signing key."""
        if purpose not in self._derived:
            self._derived[purpose] = hmac.new(self.keys[0], purpose.encode(), hashlib.sha256).digest()
        return self._derived[purpose]

"""ID token signing keys: an RSA key (RS256, which every OpenID provider must offer, OIDC Core §15.1)
and a P-256 key (ES256, per client), generated and kept as a JWK set of private keys.

The first key of each type signs; every key is published (public part only) in the JWKS with its `kid`
(the RFC 7638 thumbprint), so tokens signed before a rotation still verify until the old key is retired
(OIDC Core §10.1.1).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, KeySet, RSAKey

ALGORITHMS = {"RS256": "RSA", "ES256": "EC"}


def generate() -> list[dict[str, Any]]:
    """A new RSA 2048 and P-256 key pair, as private JWKs with `kid`, `alg` and `use`."""
    keys = []
    for alg, key in (("RS256", RSAKey.generate_key(2048)), ("ES256", ECKey.generate_key("P-256"))):
        data = key.as_dict(private=True)
        data.update({"kid": key.thumbprint(), "alg": alg, "use": "sig"})
        keys.append(data)
    return keys


class SigningKeys:
    """The private key set: signs ID tokens, and publishes the JWKS."""

    def __init__(self, keys: list[dict[str, Any]]):
        if not keys:
            raise ValueError("no OpenID Connect signing keys")
        self.private = KeySet.import_key_set({"keys": keys})
        self.signing: dict[str, RSAKey | ECKey] = {}
        for alg, kty in ALGORITHMS.items():
            first = next((key for key in self.private.keys if key.key_type == kty), None)
            if first is None:
                raise ValueError(f"no {kty} key for {alg} in the OpenID Connect key set")
            self.signing[alg] = first  # type: ignore[assignment]
        public = [{**key.as_dict(private=False), "use": "sig"} for key in self.private.keys]
        self.jwks: dict[str, Any] = {"keys": public}
        self.public = KeySet.import_key_set(self.jwks)  # type: ignore[arg-type]

    def key_for(self, alg: str) -> RSAKey | ECKey:
        return self.signing[alg]


def read_or_create(path: Path) -> list[dict[str, Any]]:
    """The key set in `path`, created (mode 0600, atomically: several workers may race) when missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_new(path, generate(), replace=False)
    data = json.loads(path.read_text(encoding="utf-8"))
    keys: list[dict[str, Any]] = data["keys"]
    return keys


def write_new(path: Path, keys: list[dict[str, Any]], *, replace: bool) -> None:
    """Write the key set to a fresh file beside `path`, then link or rename it into place."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"keys": keys}, handle)
    try:
        if replace:
            temporary.replace(path)
        else:
            with contextlib.suppress(FileExistsError):  # another worker made it first: use theirs
                os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def rotate(path: Path) -> list[dict[str, Any]]:
    """Put a new key of each type in front (it signs from the next start); old keys still verify."""
    keys = [*generate(), *read_or_create(path)]
    write_new(path, keys, replace=True)
    return keys

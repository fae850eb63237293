"""A tutorial-style passkey server: the same-run baseline `benchmarks/login.py` measures Passgate against.

    .venv/bin/python benchmarks/tutorial_server.py --port 8123 --database /tmp/tutorial.db

What a competent "passkeys in Python" tutorial builds (the stack of seed `000_*`): FastAPI routes with
pydantic bodies, py_webauthn for the options and the verification, the standard `sqlite3` module
called directly (challenge rows, account and credential rows, session rows), and a session cookie that
carries the session id signed with HMAC-SHA256 (a list of keys: the first signs, all verify), served
by uvicorn with one worker and its defaults (uvloop and httptools when installed, as they are with
`uvicorn[standard]`).

It is written to be fair, not slow: handlers are `async` and use one connection opened at start-up
(no thread hop per request), the database is in WAL mode with `synchronous=NORMAL` as Passgate's is,
and uvicorn's access log is off (`passgate serve` has none by default either). It does less than
Passgate per sign-in: no rate limit, no audit, no origin or purpose binding of the challenge beyond
what py_webauthn checks, no user-handle check, and sign-up does not start a session (as in the seed).

    POST /signup/begin   {"email": …}          → PublicKeyCredentialCreationOptionsJSON
    POST /signup/finish  credential.toJSON()   → {"account_id", "email"}   (no session)
    POST /signin/begin   {} or {"email": …}    → PublicKeyCredentialRequestOptionsJSON
    POST /signin/finish  credential.toJSON()   → {"account_id", "email"}   + Set-Cookie: session=…
    GET  /accounts/me    Cookie: session=…     → {"account_id", "email", "signed_in_at"}

Not part of Passgate; used only by the benchmarks and their smoke test. (No `from __future__ import
annotations` here: FastAPI resolves the closures' `Annotated[…, Depends(…)]` parameters at definition.)
"""

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import sqlite3
import time
import uuid
from typing import Annotated, Any

from fastapi import Body, Cookie, Depends, FastAPI, HTTPException
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

SESSION_COOKIE = "session"
CHALLENGE_SECONDS = 300
SESSION_SECONDS = 7 * 24 * 3600

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS credentials (
    id BLOB PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    public_key BLOB NOT NULL,
    sign_count INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS credentials_account ON credentials(account_id);
CREATE TABLE IF NOT EXISTS challenges (
    challenge BLOB PRIMARY KEY,
    purpose TEXT NOT NULL,
    account_id TEXT,
    email TEXT,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
"""


# --------------------------------------------------------------------------- signed session tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Tokens:
    """`<session id>.<HMAC-SHA256 of it>`: the first key signs, every key verifies (rotation)."""

    def __init__(self, keys: list[bytes]):
        if not keys:
            raise ValueError("at least one signing key")
        self.keys = keys

    def sign(self, session_id: str) -> str:
        return f"{session_id}.{_b64(hmac.new(self.keys[0], session_id.encode(), hashlib.sha256).digest())}"

    def verify(self, token: str) -> str | None:
        session_id, _, mac = token.rpartition(".")
        if not session_id:
            return None
        for key in self.keys:
            expected = _b64(hmac.new(key, session_id.encode(), hashlib.sha256).digest())
            if hmac.compare_digest(expected, mac):
                return session_id
        return None


# --------------------------------------------------------------------------- the app


class SignUpBegin(BaseModel):
    email: str


class SignInBegin(BaseModel):
    email: str | None = None


def open_database(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.executescript(SCHEMA)
    return db


def create_app(
    database: str, origin: str, rp_id: str = "localhost", keys: list[bytes] | None = None
) -> FastAPI:
    db = open_database(database)
    tokens = Tokens(keys or [secrets.token_bytes(32)])
    app = FastAPI(title="Tutorial passkey server")

    def transaction() -> None:
        db.execute("BEGIN IMMEDIATE")

    async def current_account(session: Annotated[str | None, Cookie()] = None) -> sqlite3.Row:
        session_id = tokens.verify(session) if session else None
        if session_id is None:
            raise HTTPException(401, "not signed in")
        row = db.execute(
            "SELECT a.id, a.email, s.created_at FROM sessions s JOIN accounts a ON a.id = s.account_id "
            "WHERE s.id = ? AND s.expires_at > ?",
            (session_id, time.time()),
        ).fetchone()
        if row is None:
            raise HTTPException(401, "not signed in")
        return row

    @app.post("/signup/begin")
    async def signup_begin(body: SignUpBegin) -> Response:
        if db.execute("SELECT 1 FROM accounts WHERE email = ?", (body.email,)).fetchone():
            raise HTTPException(409, "email already registered")
        account_id = uuid.uuid4()
        options = generate_registration_options(
            rp_id=rp_id,
            rp_name="Tutorial",
            user_name=body.email,
            user_id=account_id.bytes,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
        )
        transaction()
        db.execute(
            "INSERT INTO challenges (challenge, purpose, account_id, email, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (options.challenge, "signup", str(account_id), body.email, time.time() + CHALLENGE_SECONDS),
        )
        db.execute("COMMIT")
        return Response(options_to_json(options), media_type="application/json")

    @app.post("/signup/finish")
    async def signup_finish(credential: Annotated[dict[str, Any], Body()]) -> dict[str, str]:
        challenge = _challenge_of(credential)
        transaction()
        try:
            row = db.execute(
                "DELETE FROM challenges WHERE challenge = ? AND purpose = 'signup' "
                "RETURNING account_id, email, expires_at",
                (challenge,),
            ).fetchone()
            if row is None or row[2] < time.time():
                raise HTTPException(400, "unknown or expired challenge")
            account_id, email = row[0], row[1]
            try:
                verified = verify_registration_response(
                    credential=credential,
                    expected_challenge=challenge,
                    expected_rp_id=rp_id,
                    expected_origin=origin,
                )
            except InvalidRegistrationResponse as exc:
                raise HTTPException(400, str(exc)) from None
            now = time.time()
            db.execute(
                "INSERT INTO accounts (id, email, created_at) VALUES (?, ?, ?)", (account_id, email, now)
            )
            db.execute(
                "INSERT INTO credentials (id, account_id, public_key, sign_count, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    verified.credential_id,
                    account_id,
                    verified.credential_public_key,
                    verified.sign_count,
                    now,
                ),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return {"account_id": account_id, "email": email}

    @app.post("/signin/begin")
    async def signin_begin(body: SignInBegin | None = None) -> Response:
        allow: list[PublicKeyCredentialDescriptor] = []
        if body is not None and body.email:
            allow = [
                PublicKeyCredentialDescriptor(id=row[0])
                for row in db.execute(
                    "SELECT c.id FROM credentials c JOIN accounts a ON a.id = c.account_id WHERE a.email = ?",
                    (body.email,),
                )
            ]
        options = generate_authentication_options(
            rp_id=rp_id, allow_credentials=allow, user_verification=UserVerificationRequirement.PREFERRED
        )
        transaction()
        db.execute(
            "INSERT INTO challenges (challenge, purpose, expires_at) VALUES (?, ?, ?)",
            (options.challenge, "signin", time.time() + CHALLENGE_SECONDS),
        )
        db.execute("COMMIT")
        return Response(options_to_json(options), media_type="application/json")

    @app.post("/signin/finish")
    async def signin_finish(credential: Annotated[dict[str, Any], Body()]) -> JSONResponse:
        challenge = _challenge_of(credential)
        try:
            credential_id = base64url_to_bytes(credential["rawId"])
        except (KeyError, TypeError, ValueError):
            raise HTTPException(400, "malformed credential") from None
        transaction()
        try:
            row = db.execute(
                "DELETE FROM challenges WHERE challenge = ? AND purpose = 'signin' RETURNING expires_at",
                (challenge,),
            ).fetchone()
            if row is None or row[0] < time.time():
                raise HTTPException(400, "unknown or expired challenge")
            stored = db.execute(
                "SELECT c.public_key, c.sign_count, a.id, a.email FROM credentials c "
                "JOIN accounts a ON a.id = c.account_id WHERE c.id = ?",
                (credential_id,),
            ).fetchone()
            if stored is None:
                raise HTTPException(400, "unknown credential")
            try:
                verified = verify_authentication_response(
                    credential=credential,
                    expected_challenge=challenge,
                    expected_rp_id=rp_id,
                    expected_origin=origin,
                    credential_public_key=stored[0],
                    credential_current_sign_count=stored[1],
                )
            except InvalidAuthenticationResponse as exc:
                raise HTTPException(400, str(exc)) from None
            now = time.time()
            db.execute(
                "UPDATE credentials SET sign_count = ? WHERE id = ?", (verified.new_sign_count, credential_id)
            )
            session_id = secrets.token_urlsafe(24)
            db.execute(
                "INSERT INTO sessions (id, account_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                (session_id, stored[2], now, now + SESSION_SECONDS),
            )
            db.execute("COMMIT")
        except HTTPException:
            db.execute("COMMIT")  # the challenge is used up even when the sign-in fails
            raise
        except BaseException:
            db.execute("ROLLBACK")
            raise
        response = JSONResponse({"account_id": stored[2], "email": stored[3]})
        response.set_cookie(
            SESSION_COOKIE,
            tokens.sign(session_id),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="lax",
            secure=origin.startswith("https://"),
        )
        return response

    @app.get("/accounts/me")
    async def me(account: Annotated[sqlite3.Row, Depends(current_account)]) -> dict[str, Any]:
        return {"account_id": account[0], "email": account[1], "signed_in_at": int(account[2])}

    return app


def _challenge_of(credential: dict[str, Any]) -> bytes:
    """The challenge the browser signed, from `clientDataJSON` (verified again by py_webauthn)."""
    try:
        client_data = json.loads(base64url_to_bytes(credential["response"]["clientDataJSON"]))
        return base64url_to_bytes(client_data["challenge"])
    except (KeyError, TypeError, ValueError):
        raise HTTPException(400, "malformed credential") from None


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="A tutorial-style passkey server (benchmark baseline).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--database", default="tutorial.db")
    parser.add_argument("--origin", default=None, help="default: http://localhost:<port>")
    parser.add_argument("--rp-id", default="localhost")
    args = parser.parse_args(argv)
    app = create_app(args.database, args.origin or f"http://localhost:{args.port}", args.rp_id)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

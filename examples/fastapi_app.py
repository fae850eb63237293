"""A FastAPI app using Passgate's passkey API: its users register a passkey, and `POST /transfer` needs
a fresh passkey check (with user verification, at most 60 s old, for this very transfer).

    passgate tenant add "Shop" --rp-id localhost --origin http://localhost:3000
    PASSGATE_URL=http://localhost:8000 PASSKEY_TENANT_ID=… PASSKEY_API_KEY=… python examples/fastapi_app.py

The front end: `POST /transfer`; on `401` pass `detail` to `navigator.credentials.get` (e.g. with
`@github/webauthn-json`'s `get`), post the result to `/passkey/transaction/finalize`, and repeat the
transfer with the answer's token in the `X-Passkey-Token` header.
"""

import os
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request

from passgate.client import AsyncPasskeyClient, TokenClaims
from passgate.client.fastapi import PasskeyStepUp

passkeys = AsyncPasskeyClient(
    f"{os.environ['PASSGATE_URL']}/passkeys",
    os.environ["PASSKEY_TENANT_ID"],
    os.environ["PASSKEY_API_KEY"],
    audience=os.environ.get("PASSKEY_RP_ID", "localhost"),
)


def current_user(request: Request) -> str | None:
    """DEMO ONLY: your own sign-in (a session) names the user; this demo trusts a header."""
    return request.headers.get("X-Demo-User")


def signed_in(request: Request) -> str:
    user = current_user(request)
    if not user:
        raise HTTPException(401, "sign in first")
    return user


stepup = PasskeyStepUp(passkeys, user_id=current_user)
app = FastAPI()
app.post("/passkey/transaction/finalize")(stepup.finalize)


@app.post("/passkey/register/start")
async def register_start(user: Annotated[str, Depends(signed_in)]) -> Any:
    return await passkeys.registration_initialize(user, user)


@app.post("/passkey/register/finish")
async def register_finish(request: Request, user: Annotated[str, Depends(signed_in)]) -> Any:
    claims = await passkeys.verify_token(await passkeys.registration_finalize(await request.json()))
    if claims.subject != user:
        raise HTTPException(403, "not your passkey")
    return {"registered": claims.credential_id}


@app.post("/transfer")
async def transfer(
    request: Request, check: Annotated[TokenClaims, Depends(stepup.require(max_age=60))]
) -> Any:
    return {"transferred": await request.json(), "confirmed_with": check.credential_id}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))

"""A Flask app using Passgate's passkey API: its users register a passkey, and `POST /transfer` needs a
fresh passkey check (with user verification, at most 60 s old, for this very transfer).

    pip install 'passgate[flask]'
    passgate tenant add "Shop" --rp-id localhost --origin http://localhost:3000
    PASSGATE_URL=http://localhost:8000 PASSKEY_TENANT_ID=… PASSKEY_API_KEY=… python examples/flask_app.py

The front end: `POST /transfer`; on `401` pass `detail` to `navigator.credentials.get` (e.g. with
`@github/webauthn-json`'s `get`), post the result to `/passkey/transaction/finalize`, and repeat the
transfer with the answer's token in the `X-Passkey-Token` header.
"""

import os
from typing import Any

from flask import Flask, abort, g, request

from passgate.client import PasskeyClient
from passgate.client.flask import PasskeyStepUp

passkeys = PasskeyClient(
    f"{os.environ['PASSGATE_URL']}/passkeys",
    os.environ["PASSKEY_TENANT_ID"],
    os.environ["PASSKEY_API_KEY"],
    audience=os.environ.get("PASSKEY_RP_ID", "localhost"),
)


def current_user() -> str | None:
    """DEMO ONLY: your own sign-in (flask.session) names the user; this demo trusts a header."""
    return request.headers.get("X-Demo-User")


def signed_in() -> str:
    return current_user() or abort(401, "sign in first")


stepup = PasskeyStepUp(passkeys, user_id=current_user)
app = Flask(__name__)
app.add_url_rule("/passkey/transaction/finalize", view_func=stepup.finalize, methods=["POST"])


@app.post("/passkey/register/start")
def register_start() -> Any:
    user = signed_in()
    return passkeys.registration_initialize(user, user)


@app.post("/passkey/register/finish")
def register_finish() -> Any:
    user = signed_in()
    claims = passkeys.verify_token(passkeys.registration_finalize(request.get_json(force=True)))
    if claims.subject != user:
        abort(403, "not your passkey")
    return {"registered": claims.credential_id}


@app.post("/transfer")
@stepup.required(max_age=60)
def transfer() -> Any:
    return {"transferred": request.get_json(), "confirmed_with": g.passkey_claims.credential_id}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))

"""The sign-in benchmark must not rot: its tutorial-style baseline server and its lean signer work in
process, and a tiny `benchmarks/login.py` run (real servers, well under a second per phase) prints
every target with PASS or MISS. The figures themselves are not checked: that is the benchmark's job."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from softkey import SoftAuthenticator, b64url_decode

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import lean  # noqa: E402
import tutorial_server  # noqa: E402

ORIGIN = "http://localhost:8123"


async def test_the_tutorial_server_signs_up_signs_in_with_the_lean_signer_and_knows_who_is_signed_in(
    tmp_path: Path,
) -> None:
    app = tutorial_server.create_app(str(tmp_path / "tutorial.db"), ORIGIN)
    authenticator = SoftAuthenticator("ES256")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN) as http:
        begin = await http.post("/signup/begin", json={"email": "ada@example.com"})
        assert begin.status_code == 200
        finish = await http.post("/signup/finish", json=authenticator.create(begin.json(), origin=ORIGIN))
        assert finish.status_code == 200, finish.text
        assert (await http.post("/signup/begin", json={"email": "ada@example.com"})).status_code == 409
        assert (
            await http.get("/accounts/me")
        ).status_code == 401  # sign-up starts no session (as in the seed)

        signer = lean.FastSigner(authenticator.last_credential, ORIGIN, "localhost")
        for _ in range(2):  # the sign count rises
            options = await http.post("/signin/begin", json={})
            assert options.status_code == 200
            signed_in = await http.post(
                "/signin/finish",
                content=signer.for_options(options.content),
                headers={"content-type": "application/json"},
            )
            assert signed_in.status_code == 200, signed_in.text
        me = await http.get("/accounts/me")
        assert me.status_code == 200
        assert me.json()["email"] == "ada@example.com"

        replay = await http.post(
            "/signin/finish", content=signer.assertion(b"AAAA"), headers={"content-type": "application/json"}
        )
        assert replay.status_code == 400
        http.cookies.clear()
        http.cookies.set("session", "forged.token")
        assert (await http.get("/accounts/me")).status_code == 401


def test_the_lean_signer_says_what_the_software_authenticator_says() -> None:
    authenticator = SoftAuthenticator("ES256")
    authenticator.create(
        {
            "rp": {"id": "localhost", "name": "x"},
            "user": {"id": "dXNlcg", "name": "u", "displayName": "u"},
            "challenge": "Y2hhbGxlbmdl",
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
        },
        origin=ORIGIN,
    )
    credential = authenticator.last_credential
    options = {"challenge": "c29tZS1jaGFsbGVuZ2UtYnl0ZXM", "rpId": "localhost", "allowCredentials": []}
    reference = authenticator.get(options, origin=ORIGIN)
    credential.sign_count -= 1
    fast = json.loads(
        lean.FastSigner(credential, ORIGIN, "localhost").for_options(json.dumps(options).encode())
    )
    for member in ("clientDataJSON", "authenticatorData", "userHandle"):
        assert fast["response"][member] == reference["response"][member]
    assert {key: value for key, value in fast.items() if key != "response"} == {
        key: value for key, value in reference.items() if key != "response"
    }
    public_key = credential.private_key.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    signed = (
        b64url_decode(fast["response"]["authenticatorData"])
        + hashlib.sha256(b64url_decode(fast["response"]["clientDataJSON"])).digest()
    )
    public_key.verify(b64url_decode(fast["response"]["signature"]), signed, ec.ECDSA(hashes.SHA256()))


def test_a_tiny_benchmark_run_prints_every_target() -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PASSGATE_")}
    command = [
        sys.executable,
        str(BENCHMARKS / "login.py"),
        *("--seconds", "0.3", "--warmup", "0", "--rounds", "1", "--users", "8", "--memory", "40"),
        *("--no-scaling", "--no-startup"),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=BENCHMARKS)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    targets = run.stdout.split("Targets (issue 9):", 1)[1]
    for what in (
        "full sign-in, Passgate server CPU",
        "full sign-in, Passgate / tutorial",
        "full sign-up, Passgate server CPU",
        "/auth/me, Passgate server CPU",
        "/auth/me / bare ASGI 204",
        "RSS per worker",
    ):
        line = next(line for line in targets.splitlines() if what in line)
        assert line.rstrip().endswith(("PASS", "MISS")), line


def test_busy_speed_is_each_process_speed_against_one_alone() -> None:
    """The scaling phase's reading of the machine runs its three processes and gives a ratio. (Its value
    is the machine's: another test's server busy during the lone run makes it exceed 1.)"""
    sys.path.insert(0, str(BENCHMARKS))
    import login

    assert 0.05 < login.busy_speed(rounds=1) < 5


def test_a_tiny_passkey_api_benchmark_run_prints_its_target() -> None:
    """`benchmarks/passkey_api.py` with tiny phases: a tenant and key made with the CLI, users registered
    through the API, every phase without errors, the signature timed, both target lines judged."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PASSGATE_")}
    command = [
        sys.executable,
        str(BENCHMARKS / "passkey_api.py"),
        *("--seconds", "0.3", "--warmup", "0", "--rounds", "1", "--users", "8"),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=BENCHMARKS)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "RS256 signature, in process" in run.stdout
    rows = [" ".join(line.split()) for line in run.stdout.splitlines()]  # the table's columns padded
    for flow in ("first-party sign-in", "API login", "API transaction"):
        for phase in ("whole", "begin only", "finish only"):
            assert any(row.startswith(f"{flow} {phase} ") for row in rows), (flow, phase)
    targets = run.stdout.split("Target (issue 11):", 1)[1]
    for what in ("login/finalize server CPU", "transaction/finalize server CPU"):
        line = next(line for line in targets.splitlines() if what in line)
        assert line.rstrip().endswith(("PASS", "MISS")), line

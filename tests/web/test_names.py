"""One name, one person: user names that differ only by case, width, a look-alike letter or an invisible
character are one account (or refused), on every way in: REST and WebSocket sign-up, `passgate user add`,
the named sign-in; and `Remote-Email` carries only an address an administrator set."""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from appkit import app_client
from flows import ORIGIN, Passkeys
from gatekit import gate, gate_ctx
from passgate.cli import app
from passgate.services import names
from passgate.services.context import Context
from passgate.web.app import create_app
from softkey import SoftAuthenticator

with warnings.catch_warnings():
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

# Each Cyrillic letter looks like the Latin one (written as escapes: the linter flags look-alikes too).
CYRILLIC = str.maketrans("aceopxy", "\u0430\u0441\u0435\u043e\u0440\u0445\u0443")


def digits() -> str:
    return "".join(random.choices("0123456789", k=10))  # no Latin letters: a word of its own script


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[Context]:
    yield from gate_ctx(tmp_path)


@pytest.fixture
async def http(gated: Context) -> httpx.AsyncClient:
    async with app_client(gated) as client:
        yield client


async def begin(http: httpx.AsyncClient, user_name: str) -> httpx.Response:
    return await http.post("/auth/register/begin", json={"user_name": user_name})


async def test_look_alikes_of_a_name_cannot_sign_up(http: httpx.AsyncClient) -> None:
    name = f"Alice-{digits()}"
    assert (await Passkeys(http).register(name)).status_code == 200
    look_alikes = [
        name.lower(),
        name.upper(),
        name.translate({ord(c): ord(c) + 0xFEE0 for c in "Alice"}),  # fullwidth letters
        name.replace("l", "1"),  # digit one for l (UTS #39 confusables)
    ]
    for look_alike in look_alikes:
        taken = await begin(http, look_alike)
        assert taken.status_code == 409, (look_alike, taken.text)
        assert taken.json()["code"] == "user_name_taken"
        assert name not in taken.json()["error"]  # says no more than before: not whose name it is


async def test_whole_script_look_alike_is_taken(http: httpx.AsyncClient) -> None:
    number = digits()
    assert (await Passkeys(http).register(f"cope-{number}")).status_code == 200
    cyrillic = f"cope-{number}".translate(CYRILLIC)  # every letter Cyrillic: one script, same look
    assert cyrillic != f"cope-{number}"
    taken = await begin(http, cyrillic)
    assert taken.status_code == 409 and taken.json()["code"] == "user_name_taken"


@pytest.mark.parametrize(
    ("bait", "why"),
    [
        ("\u0430lice-{n}", "mixes"),  # Cyrillic a among Latin letters
        ("alice\u3164-{n}", "not allowed"),  # HANGUL FILLER: invisible
        ("ali\u034fce-{n}", "not allowed"),  # COMBINING GRAPHEME JOINER: invisible
        ("alice\u200b-{n}", "not allowed"),  # ZERO WIDTH SPACE
    ],
)
async def test_bait_names_are_refused_whether_or_not_the_real_one_exists(
    http: httpx.AsyncClient, bait: str, why: str
) -> None:
    number = digits()
    fresh = await begin(http, bait.format(n=number))  # no account looks like it yet
    assert (await Passkeys(http).register(f"alice-{number}")).status_code == 200
    after = await begin(http, bait.format(n=number))  # now one does: the same answer
    for refused in (fresh, after):
        assert refused.status_code == 400 and refused.json()["code"] == "invalid_name", refused.text
        assert why in refused.json()["error"]
    assert fresh.json() == after.json()


async def test_names_are_shown_as_typed_and_sign_in_by_any_spelling(http: httpx.AsyncClient) -> None:
    browser = Passkeys(http)
    name = f"Ada  Lovelace-{digits()}"  # runs of spaces become one
    assert (await browser.register(name)).status_code == 200
    assert (await browser.me()).json()["user_name"] == name.replace("  ", " ")
    await browser.post("/auth/logout")
    real = (await browser.login_options(name))["publicKey"]["allowCredentials"]
    for spelling in (name.upper(), name.lower().replace("l", "1")):
        assert (await browser.login_options(spelling))["publicKey"]["allowCredentials"] == real
    assert (await browser.login(name.upper())).status_code == 200


def test_register_new_over_websocket_uses_the_same_key(gated: Context) -> None:
    name = f"Bob-{digits()}"
    with TestClient(
        create_app(gated.settings, gated), base_url=ORIGIN, headers={"origin": ORIGIN}
    ) as browser:
        options = browser.post("/auth/register/begin", json={"user_name": name}).json()
        credential = SoftAuthenticator().create(options, origin=ORIGIN)
        assert browser.post("/auth/register/finish", json=credential).status_code == 200
        url = f"ws://localhost:8000/auth/ws/register_new?user_name={name.upper()}"
        with browser.websocket_connect(url, headers={"origin": ORIGIN}) as ws:
            message = ws.receive_json()
    assert message["status"] == "error" and message["code"] == "user_name_taken", message


# ---------------------------------------------------------------- the CLI and Remote-Email


def run(gated: Context, *args: str) -> Result:
    env = {"PASSGATE_DATA_DIR": str(gated.settings.data_dir), "PASSGATE_SECRET_KEYS": "k" * 48}
    return CliRunner().invoke(app, list(args), env=env)


async def test_user_add_refuses_look_alikes_and_admin_commands_find_any_spelling(gated: Context) -> None:
    name = f"Carol-{digits()}"
    assert run(gated, "user", "add", name).exit_code == 0
    for look_alike in (name.lower(), name.replace("l", "1")):
        refused = run(gated, "user", "add", look_alike)
        assert refused.exit_code == 1 and "is taken" in refused.output, refused.output
    assert run(gated, "user", "disable", name.upper()).exit_code == 0
    assert "\tdisabled" in run(gated, "user", "list").output


async def test_remote_email_is_only_an_address_an_admin_set(gated: Context, http: httpx.AsyncClient) -> None:
    name = f"ada-{digits()}@example.org"
    assert (await Passkeys(http).register(name)).status_code == 200
    signed_in = await gate(http)
    assert signed_in.status_code == 204
    assert signed_in.headers["remote-user"] == name
    assert signed_in.headers["remote-email"] == ""  # a name that looks like an address is not one

    bad = run(gated, "user", "email", name, "not an address")
    assert bad.exit_code == 1 and "not an e-mail address" in bad.output
    assert run(gated, "user", "email", name, "--clear", "x@example.org").exit_code == 2
    assert run(gated, "user", "email", name, "Ada@Example.ORG").exit_code == 0
    assert (await gate(http)).headers["remote-email"] == "Ada@example.org"  # domain normalised
    assert "\tAda@example.org" in run(gated, "user", "list").output

    assert run(gated, "user", "email", name, "--clear").exit_code == 0
    assert (await gate(http)).headers["remote-email"] == ""


def test_skeleton_follows_uts39() -> None:
    key = names.user_name
    assert key("paypal", new=True).key == key("PayPal", new=True).key == key("paypa1", new=True).key
    assert key("rnary", new=True).key == key("mary", new=True).key  # rn looks like m
    assert key("Straße", new=True).key == key("strasse", new=True).key  # PRECIS case folding
    assert key("田中さん", new=True).shown == "田中さん"  # Han with Hiragana: one writing system
    assert key("иван@example.com", new=True)  # a Cyrillic word beside Latin ones is fine
    with pytest.raises(Exception, match="mixes"):
        key("p\u0430ypal", new=True)
    assert key("p\u0430ypal", new=False).key == key("paypal", new=True).key  # lookups still find it


def test_printable_ascii_shortcut_is_what_the_libraries_say() -> None:
    """`user_name` skips PRECIS and the script lookup for printable ASCII: for each such character
    PRECIS's profile only lower-cases it and its script is Latin or Common, so names made of them get
    the keys and verdicts the libraries give, one character or many."""
    from confusable_homoglyphs import categories

    printable = [chr(code) for code in range(0x21, 0x7F)]
    assert all(names._PROFILE.enforce(char) == char.lower() for char in printable)
    assert {categories.alias(char) for char in [*printable, " "]} == {"LATIN", "COMMON"}
    assert all(names._printable_ascii(char) for char in [*printable, " "])
    assert not any(names._printable_ascii(char) for char in ["\x7f", "\x1f", "\t", "é", "\u0430"])
    rng = random.Random(9265)
    for _ in range(300):
        part = "".join(rng.choices(printable, k=rng.randint(1, 20)))
        assert names._key(part, refuse="x") == names._bounded(names.skeleton(names._PROFILE.enforce(part)))
        assert not names._mixes_scripts(part)

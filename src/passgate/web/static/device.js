// The add-a-device landing: check the link (or the six words typed here), then save a passkey on this
// device and sign in. The creation options are fetched once the link checks out, ahead of the click.
import { $, busy, clearProblem, config, say, setSignedIn, showProblem, t } from "/static/ui.js";
import { ApiError, api, createPasskey, Prefetch, signalAcceptedAfterSignIn } from "/static/webauthn.js";

let token = null; // the typed words; null means the passphrase the link left in its cookie
let options = null;

const body = () => (token ? { token } : {});
const when = (seconds) =>
  new Date(seconds * 1000).toLocaleString(config.locale, { dateStyle: "medium", timeStyle: "short" });

function showInvalid() {
  $("landing-checking").hidden = true;
  $("landing-valid").hidden = true;
  $("landing-invalid").hidden = false;
  $("landing-words").hidden = false;
}

async function check() {
  clearProblem();
  try {
    const link = await api("/auth/validate-device-token", body());
    options = new Prefetch(() => api("/auth/device/begin", body()), config.challengeTtl);
    options.warm();
    $("landing-for").textContent = t("landing_for", { name: link.user_name });
    $("landing-rules").textContent = t("landing_rules", { when: when(link.expires_at) });
    $("landing-checking").hidden = true;
    $("landing-invalid").hidden = true;
    $("landing-words").hidden = true;
    $("landing-intro").hidden = true;
    $("landing-valid").hidden = false;
    $("landing-add").focus();
  } catch (error) {
    if (error instanceof ApiError && ["link_invalid", "token_required"].includes(error.code)) {
      showInvalid();
      if (token) $("passphrase").focus();
    } else {
      $("landing-checking").hidden = true;
      showProblem(error);
    }
  }
}

async function addDevice() {
  await busy($("landing-add"), async () => {
    clearProblem();
    say(t("working"));
    try {
      const creation = await options.take();
      const credential = await createPasskey(creation);
      const result = await api("/auth/device/finish", credential);
      await signalAcceptedAfterSignIn(config.rpId, creation.publicKey.user.id);
      const me = await api("/auth/me");
      setSignedIn(me);
      $("landing-valid").hidden = true;
      $("landing-done-text").textContent = t("landing_done", { name: me.display_name || result.user_name });
      $("landing-done").hidden = false;
      say(t("passkey_added"));
      $("landing-done").querySelector("a").focus();
    } catch (error) {
      say("");
      if (error instanceof ApiError && error.code === "link_invalid") showInvalid();
      showProblem(error);
      options.warm();
    }
  });
}

$("landing-add").addEventListener("click", addDevice);
$("landing-words").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("passphrase").value.trim().toLowerCase().replace(/[\s-]+/g, ".");
  if (token) check();
});
if (config.fromLink) check();

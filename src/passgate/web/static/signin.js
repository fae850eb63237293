// The sign-in page: passkey autofill armed on load, a "Sign in with a passkey" button whose options are
// fetched ahead of the click, the autofill request aborted before the button's, and re-armed after errors.
import { $, busy, clearProblem, config, say, setSignedIn, showProblem, t } from "/static/ui.js";
import {
  ApiError,
  api,
  conditionalMediationAvailable,
  getPasskey,
  Prefetch,
  signalAcceptedAfterSignIn,
  signalUnknownCredential,
  webauthnAvailable,
} from "/static/webauthn.js";

const RECENT_MS = 10_000; // autofill failing this often…
const MAX_RECENT_FAILURES = 3; // …this many times waits for the person to focus the field again

const beginUsernameless = () => api("/auth/login/begin", {});
const buttonOptions = new Prefetch(beginUsernameless, config.challengeTtl);
let autofill = null; // the armed conditional request's AbortController
let failures = [];

function signedIn() {
  return document.body.dataset.signedIn === "yes";
}

/** One state at a time: the heading, the tab title and the sections say signed in, or they say signed out. */
function showState(isSignedIn) {
  const heading = $("signin-heading");
  const title = isSignedIn ? heading.dataset.signedIn : heading.dataset.signedOut;
  heading.textContent = title;
  document.title = `${title} · ${document.title.split(" · ").pop()}`;
  $("signed-out").hidden = isSignedIn;
  $("signed-in").hidden = !isSignedIn;
  $("signed-out-note")?.remove(); // "You are signed out." is about the past once anything happens here
}

async function finishSignIn(credential) {
  await api("/auth/login/finish", credential);
  await signalAcceptedAfterSignIn(config.rpId, credential.response.userHandle);
  if (config.returnTo) {
    say(t("redirecting", { host: config.returnHost }), "progress");
    location.assign(config.returnTo);
    return;
  }
  const me = await api("/auth/me");
  setSignedIn(me);
  showState(true);
  say(t("signed_in", { name: me.display_name || me.user_name }));
  $("manage").focus();
}

async function failed(error) {
  if (error instanceof ApiError && error.body?.unknown_credential) {
    await signalUnknownCredential(config.rpId, error.body.unknown_credential);
  }
  showProblem(error);
}

function recentFailures() {
  const since = Date.now() - RECENT_MS;
  failures = failures.filter((at) => at > since);
  return failures.length;
}

function stopAutofill() {
  const controller = autofill;
  autofill = null;
  controller?.abort();
}

/** Arm passkey autofill (conditional mediation) on the name field, unless signed in or already armed. */
async function arm() {
  if (signedIn() || autofill || !webauthnAvailable()) return;
  if (recentFailures() >= MAX_RECENT_FAILURES) {
    $("username").addEventListener("focus", () => { failures = []; arm(); }, { once: true });
    return;
  }
  const controller = new AbortController();
  autofill = controller;
  let credential;
  try {
    if (!(await conditionalMediationAvailable())) {
      autofill = null;
      return;
    }
    const options = await beginUsernameless();
    if (controller.signal.aborted) return;
    credential = await getPasskey(options, { mediation: "conditional", signal: controller.signal });
  } catch (error) {
    if (controller.signal.aborted) return; // stopped for the button: not a failure
    if (autofill === controller) autofill = null;
    failures.push(Date.now());
    if (error.name !== "NotAllowedError") showProblem(error); // a dismissed suggestion needs no message
    setTimeout(arm, 250);
    return;
  }
  if (autofill === controller) autofill = null;
  clearProblem();
  say(t("working"));
  try {
    await finishSignIn(credential);
  } catch (error) {
    failures.push(Date.now());
    await failed(error);
    setTimeout(arm, 250);
  }
}

async function signInWithButton(event) {
  event.preventDefault();
  await busy($("passkey-button"), async () => {
    const options = buttonOptions.take(); // before anything else: keeps get() inside the click
    stopAutofill(); // a pending conditional request would block the modal one
    clearProblem();
    say(t("working"));
    try {
      await finishSignIn(await getPasskey(await options));
    } catch (error) {
      await failed(error);
    }
    if (!signedIn()) {
      buttonOptions.warm();
      arm();
    }
  });
}

/** Signed in and sent here with a return URL (e.g. forward-auth wants a fresher check): check again, go. */
async function recheck(button, options) {
  await busy(button, async () => {
    clearProblem();
    try {
      const credential = await getPasskey(await options.take());
      await api("/auth/login/finish", credential);
      say(t("redirecting", { host: config.returnHost }), "progress");
      location.assign(config.returnTo);
    } catch (error) {
      showProblem(error);
      options.warm();
    }
  });
}

function switchAccount() {
  showState(false);
  say("");
  document.body.dataset.signedIn = "no";
  buttonOptions.warm();
  arm();
  $("username").focus();
}

$("signin-form").addEventListener("submit", signInWithButton);
$("switch").addEventListener("click", switchAccount);
const recheckButton = $("recheck");
if (recheckButton && config.me) {
  const options = new Prefetch(() => api("/auth/login/begin", { user_name: config.me.user_name }), config.challengeTtl);
  options.warm();
  recheckButton.addEventListener("click", () => recheck(recheckButton, options));
}
if (!signedIn()) {
  if (!webauthnAvailable()) showProblem({ name: "no_webauthn" });
  buttonOptions.warm();
  arm();
}

// The account page: passkeys (add, rename, remove), device links, sessions (end one or all), the display
// name. Changes that need a fresh passkey check go through the step-up dialog and are retried after it.
import {
  $,
  busy,
  clearProblem,
  config,
  confirmAction,
  say,
  showProblem,
  t,
  withStepUp,
} from "/static/ui.js";
import {
  ApiError,
  api,
  createPasskey,
  Prefetch,
  signalAllAcceptedCredentials,
  signalCurrentUserDetails,
} from "/static/webauthn.js";

const me = config.me;
const addOptions = new Prefetch(() => api("/auth/credentials/begin", {}), config.challengeTtl);

const credentialIds = () =>
  [...document.querySelectorAll("#passkey-list [data-credential-id]")].map((item) => item.dataset.credentialId);

function signalAccepted() {
  return signalAllAcceptedCredentials(config.rpId, me.user_handle, credentialIds());
}

/** Swap in fresh lists from the server (the same template the page was rendered with). */
async function refresh() {
  const response = await fetch("/account/parts", { credentials: "same-origin" });
  if (response.status === 401) {
    location.assign("/signin?return_to=%2Faccount");
    return;
  }
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ["warnings", "passkeys", "sessions", "device-links"]) {
    const replacement = fresh.getElementById(id);
    if (replacement) $(id).replaceWith(document.adoptNode(replacement));
  }
}

function focusHeading(id) {
  const heading = $(id);
  heading.tabIndex = -1;
  heading.focus();
}

/** Run one change: clear old messages, report success or the mapped error. */
async function change(button, work) {
  await busy(button, async () => {
    clearProblem();
    say(t("working"));
    try {
      await work();
    } catch (error) {
      showProblem(error);
      const gone = ["credential_not_found", "session_not_found", "link_not_found"];
      if (error instanceof ApiError && gone.includes(error.code)) {
        await refresh();
      }
    }
  });
}

// --- passkeys -----------------------------------------------------------------------------------------

async function addPasskey(button) {
  await change(button, async () => {
    let prefetched = addOptions.take(); // first try: options fetched ahead, so create() runs in the click
    await withStepUp(async () => {
      const options = prefetched ?? api("/auth/credentials/begin", {}); // a retry needs fresh ones
      prefetched = null;
      await api("/auth/credentials/finish", await createPasskey(await options));
    }).finally(() => addOptions.warm());
    await refresh();
    await signalAccepted();
    say(t("passkey_added"));
    focusHeading("passkeys-title");
  });
}

function startRename(card) {
  const form = card.querySelector("form.rename");
  form.hidden = false;
  card.querySelector("[data-action=rename]").hidden = true;
  form.querySelector("input").focus();
}

function cancelRename(card) {
  card.querySelector("form.rename").hidden = true;
  const button = card.querySelector("[data-action=rename]");
  button.hidden = false;
  button.focus();
}

async function rename(card, form) {
  const id = card.dataset.credentialId;
  const name = form.querySelector("input").value.trim();
  await change(form.querySelector("button[type=submit]"), async () => {
    await withStepUp(() => api("/auth/rename-credential", { credential_id: id, name }));
    await refresh();
    say(t("passkey_renamed"));
    document.querySelector(`[data-credential-id="${CSS.escape(id)}"] [data-action=rename]`)?.focus();
  });
}

async function removePasskey(card, button) {
  const id = card.dataset.credentialId;
  if (!(await confirmAction(t("confirm_remove", { name: card.dataset.name }), t("confirm_yes_remove")))) {
    button.focus();
    return;
  }
  await change(button, async () => {
    try {
      await withStepUp(() => api("/auth/delete-credential", { credential_id: id }));
    } catch (error) {
      button.focus();
      throw error;
    }
    await refresh();
    await signalAccepted();
    say(t("passkey_removed"));
    focusHeading("passkeys-title");
  });
}

async function unblockPasskey(card, button) {
  const id = card.dataset.credentialId;
  if (!(await confirmAction(t("confirm_unblock", { name: card.dataset.name }), t("confirm_yes_unblock")))) {
    button.focus();
    return;
  }
  await change(button, async () => {
    await withStepUp(() => api("/auth/clear-credential-flag", { credential_id: id }));
    await refresh();
    say(t("passkey_unblocked"));
    focusHeading("passkeys-title");
  });
}

// --- sessions -----------------------------------------------------------------------------------------

async function endSession(card, button) {
  await change(button, async () => {
    await withStepUp(() => api("/auth/delete-session", { session_id: card.dataset.sessionId }));
    await refresh();
    say(t("session_ended"));
    focusHeading("sessions-title");
  });
}

async function endAll(button) {
  if (!(await confirmAction(t("confirm_end_all"), t("confirm_yes_end_all")))) {
    button.focus();
    return;
  }
  await change(button, async () => {
    await withStepUp(() => api("/auth/logout-all", {}));
    location.assign("/signin?signed_out=1");
  });
}

// --- device links -------------------------------------------------------------------------------------

async function createDeviceLink(button) {
  await change(button, async () => {
    const link = await withStepUp(() => api("/auth/create-device-link", {}));
    $("device-qr").src = qrImage(link.qr_svg);
    $("device-url").value = link.addition_link;
    $("device-passphrase").textContent = link.passphrase;
    const until = new Date(link.expires_at * 1000).toLocaleString(config.locale, {
      dateStyle: "medium",
      timeStyle: "short",
    });
    $("device-rules").textContent = t("link_expires", { when: until });
    $("device-link").hidden = false;
    say("");
    $("device-url").focus();
    $("device-url").select();
    await refresh(); // the new link is listed with the others, revocable
  });
}

async function revokeLink(card, button) {
  await change(button, async () => {
    await withStepUp(() => api("/auth/revoke-device-link", { link_id: card.dataset.linkId }));
    await refresh();
    say(t("link_revoked"));
    focusHeading("device-title");
  });
}

async function revokeApp(card, button) {
  await change(button, async () => {
    await api("/auth/apps/revoke", { client_id: card.dataset.clientId });
    await refresh();
    focusHeading("apps-title");
  });
}

/** The server's inline SVG as an image (an image needs the SVG namespace that inline markup may omit). */
function qrImage(svg) {
  const standalone = svg.includes("xmlns=") ? svg : svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"');
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(standalone)}`;
}

async function copyLink() {
  const input = $("device-url");
  try {
    await navigator.clipboard.writeText(input.value);
    say(t("link_copied"));
  } catch {
    input.focus();
    input.select();
    say(t("link_copy_failed"));
  }
}

// --- display name -------------------------------------------------------------------------------------

async function saveDisplayName(event) {
  event.preventDefault();
  await change($("profile-save"), async () => {
    const result = await withStepUp(() =>
      api("/auth/set-display-name", { display_name: $("display_name").value.trim() }),
    );
    me.display_name = result.display_name;
    $("account-display-name").textContent = result.display_name;
    $("display_name").value = result.display_name;
    await signalCurrentUserDetails(config.rpId, me.user_handle, result.user_name, result.display_name);
    say(t("display_saved"));
  });
}

// --- wiring (delegated: the lists are replaced after each change) ---------------------------------------

document.querySelector("main").addEventListener("click", (event) => {
  const button = event.target.closest("[data-action]");
  if (!button) return;
  const card = button.closest(".card");
  const actions = {
    "add-passkey": () => addPasskey(button),
    rename: () => startRename(card),
    "rename-cancel": () => cancelRename(card),
    remove: () => removePasskey(card, button),
    unblock: () => unblockPasskey(card, button),
    "end-session": () => endSession(card, button),
    "end-all": () => endAll(button),
    "revoke-link": () => revokeLink(card, button),
    "revoke-app": () => revokeApp(card, button),
  };
  actions[button.dataset.action]?.();
});
document.querySelector("main").addEventListener("submit", (event) => {
  const form = event.target.closest("form.rename");
  if (!form) return;
  event.preventDefault();
  rename(form.closest(".card"), form);
});
document.querySelector("main").addEventListener("keydown", (event) => {
  const form = event.target.closest("form.rename");
  if (form && event.key === "Escape") cancelRename(form.closest(".card"));
});
$("device-create").addEventListener("click", () => createDeviceLink($("device-create")));
$("device-copy").addEventListener("click", copyLink);
$("profile-form").addEventListener("submit", saveDisplayName);

if (config.canAddPasskey) addOptions.warm();
signalAccepted();

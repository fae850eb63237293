// The sign-up page: a name, an optional display name, one button; the passkey is created and you are in.
// Options are fetched while the person types, so create() runs inside the click.
import { $, busy, clearProblem, config, say, showProblem, t } from "/static/ui.js";
import { ApiError, api, createPasskey, Prefetch } from "/static/webauthn.js";

const form = $("signup-form");
const nameInput = $("user_name");
const displayInput = $("display_name");
const nameError = $("user_name-error");
let prefetched = null; // {key, options: Prefetch} for the names as typed
let typing = 0;

const names = () => ({ user_name: nameInput.value.trim(), display_name: displayInput.value.trim() });
const keyOf = (values) => JSON.stringify(values);

function fieldError(message) {
  nameError.textContent = message;
  nameError.hidden = !message;
  if (message) nameInput.setAttribute("aria-invalid", "true");
  else nameInput.removeAttribute("aria-invalid");
}

function warm() {
  const values = names();
  if (!values.user_name) return;
  const key = keyOf(values);
  if (prefetched?.key !== key) {
    prefetched = { key, options: new Prefetch(() => api("/auth/register/begin", values), config.challengeTtl) };
  }
  prefetched.options.warm()?.then(
    () => { if (prefetched?.key === key) fieldError(""); },
    (error) => {
      if (prefetched?.key !== key) return;
      prefetched = null;
      if (error instanceof ApiError && error.code === "user_name_taken") fieldError(t("code_user_name_taken"));
    },
  );
}

function optionsNow() {
  const values = names();
  const ready = prefetched?.key === keyOf(values) ? prefetched.options.take() : api("/auth/register/begin", values);
  prefetched = null;
  return ready;
}

async function signUp(event) {
  event.preventDefault();
  clearProblem();
  const { user_name: userName, display_name: displayName } = names();
  if (!userName) {
    fieldError(t("name_needed"));
    nameInput.focus();
    return;
  }
  await busy($("create-button"), async () => {
    const options = optionsNow();
    say(t("working"));
    try {
      await api("/auth/register/finish", await createPasskey(await options));
      say(t("signed_up", { name: displayName || userName }));
      location.assign(config.returnTo || "/account?welcome=1");
    } catch (error) {
      say("");
      if (error instanceof ApiError && error.code === "user_name_taken") {
        fieldError(t("code_user_name_taken"));
        nameInput.focus();
      } else {
        showProblem(error);
      }
    }
  });
}

if (form) {
  form.addEventListener("submit", signUp);
  for (const input of [nameInput, displayInput]) {
    input.addEventListener("input", () => {
      fieldError("");
      clearTimeout(typing);
      typing = setTimeout(warm, 600);
    });
    input.addEventListener("change", warm);
  }
}

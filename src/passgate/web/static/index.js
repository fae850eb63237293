// The demo page: Sign Up / Sign In / Who Am I with a random name, using only the /auth API. Its status
// lines are plain "<action>: done." / "<action> failed: <message>"; the header follows the session.
import { $, setSignedIn, t } from "/static/ui.js";
import { api, register, signIn } from "/static/webauthn.js";

const status = (text) => { $("status").textContent = text; };
const show = (value) => {
  $("output").textContent = JSON.stringify(value, null, 2);
  $("output").hidden = false;
};

/** The header (Your account / Sign out, or Sign in / Create account) matches the session after each call. */
async function refreshHeader() {
  try {
    setSignedIn(await api("/auth/me"));
  } catch {
    setSignedIn(null);
  }
}

async function run(label, action) {
  status(t("index_working", { label }));
  try {
    const result = await action();
    show(result);
    status(t("index_done", { label }));
  } catch (error) {
    show({ error: error.message, code: error.code ?? error.name });
    status(t("index_failed", { label, message: error.message }));
  }
  await refreshHeader();
}

$("user_name").value = `user-${Math.random().toString(36).slice(2, 8)}@example.com`;
$("signup").addEventListener("click", () => run(t("index_sign_up"), () => register($("user_name").value)));
$("signin").addEventListener("click", () => run(t("index_sign_in"), () => signIn("")));
$("whoami").addEventListener("click", () => run(t("index_who"), () => api("/auth/me")));
$("logout").addEventListener("click", () => run(t("index_sign_out"), () => api("/auth/logout", {})));

// The first page: Sign Up / Sign In / Who Am I with a random name (seed 000), using only the /auth API.
import { api, createPasskey, register, signIn } from "/static/webauthn.js";

const $ = (id) => document.getElementById(id);
const status = (text) => { $("status").textContent = text; };
const show = (value) => { $("output").textContent = JSON.stringify(value, null, 2); };

async function run(label, action) {
  status(`${label}…`);
  try {
    const result = await action();
    show(result);
    status(`${label}: done.`);
  } catch (error) {
    show({ error: error.message, code: error.code ?? error.name });
    status(`${label} failed: ${error.message}`);
  }
}

$("user_name").value = `user-${Math.random().toString(36).slice(2, 8)}@example.com`;
$("signup").addEventListener("click", () => run("Sign up", () => register($("user_name").value)));
$("signin").addEventListener("click", () => run("Sign in", () => signIn("")));
$("whoami").addEventListener("click", () => run("Who am I", () => api("/auth/me")));
$("logout").addEventListener("click", () => run("Sign out", () => api("/auth/logout", {})));

const params = new URLSearchParams(location.search);
if (params.get("device") === "1") {
  api("/auth/validate-device-token", {}).then((link) => {
    $("device").hidden = false;
    $("device-text").textContent = `This link adds a passkey for ${link.user_name}. It works once.`;
    $("device-add").addEventListener("click", () => run("Add this device", async () => {
      const options = await api("/auth/device/begin", {});
      return api("/auth/device/finish", await createPasskey(options));
    }));
  }).catch((error) => status(error.message));
} else if (params.get("device") === "invalid") {
  status("This device link is invalid, already used or expired. Ask for a new one.");
}

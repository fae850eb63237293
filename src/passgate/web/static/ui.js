// What every page shares: its configuration and strings, the status and problem regions, errors turned
// into words people can act on, the step-up dialog, a confirm dialog, and the header's sign-out button.
import { ApiError, api, getPasskey, Prefetch } from "/static/webauthn.js";

export const config = JSON.parse(document.getElementById("passgate-config").textContent);
const strings = config.strings;

export const $ = (id) => document.getElementById(id);

/** The string `key` with its `{placeholders}` filled from `values`. */
export function t(key, values = {}) {
  const template = strings[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (match, name) => (name in values ? String(values[name]) : match));
}

const SUCCESS_SHOWN_MS = 8000; // a success line fades out after this; progress stays until replaced
let clearTimer = 0;

/** Polite status line: `kind` "progress" (neutral, e.g. "Working…") or "success" (green, clears itself). */
export function say(text, kind = text === t("working") ? "progress" : "success") {
  const message = $("message");
  if (!message) return;
  clearTimeout(clearTimer);
  message.textContent = text;
  message.dataset.kind = kind;
  if (text && kind === "success") clearTimer = setTimeout(() => say(""), SUCCESS_SHOWN_MS);
}

export class StepUpCancelled extends Error {
  constructor() {
    super("step-up cancelled");
    this.name = "StepUpCancelled";
  }
}

/** `{message, code, selftest}`: what happened and what to do; `code` is the server's or the DOMException's. */
export function describe(error) {
  if (error instanceof ApiError) {
    if (error.body?.unknown_credential) return { message: t("code_unknown_credential"), code: error.code };
    const key = `code_${error.code}`;
    const message = key in strings ? t(key, { detail: error.message }) : error.message;
    return { message, code: error.code, selftest: error.code === "cross_site_request" };
  }
  if (error?.name === "StepUpCancelled") return { message: t("stepup_cancelled") };
  if (error?.name === "NetworkError") return { message: t("network") };
  const key = `dom_${error?.name}`;
  const pageKey = `${key}_${config.page}`; // the same browser error can need other words on another page
  if (pageKey in strings) return { message: t(pageKey), code: error.name };
  if (key in strings) return { message: t(key), code: error.name, selftest: error.name === "SecurityError" };
  return { message: error?.message || String(error), code: error?.name };
}

/** Show an error in an alert region (the page's `#problem` unless another is given). */
export function showProblem(error, region = $("problem")) {
  const { message, code, selftest } = describe(error);
  const what = document.createElement("p");
  what.className = "what";
  what.textContent = message;
  const parts = [what];
  if (code) {
    const detail = document.createElement("p");
    detail.className = "code";
    detail.textContent = t("code", { code });
    parts.push(detail);
  }
  if (selftest) {
    const link = document.createElement("a");
    link.href = "/auth/selftest";
    link.textContent = t("selftest_link");
    parts.push(link);
  }
  region.replaceChildren(...parts);
  region.hidden = false;
  if (region.id === "problem") {
    say("");
    region.scrollIntoView({ block: "nearest" });
  }
}

export function clearProblem(region = $("problem")) {
  region.replaceChildren();
  region.hidden = true;
}

/** Toggle the header and page parts marked `data-when="signed-in|signed-out"`; fill `data-me` fields. */
export function setSignedIn(me) {
  config.me = me;
  document.body.dataset.signedIn = me ? "yes" : "no";
  for (const element of document.querySelectorAll("[data-when]")) {
    element.hidden = (element.dataset.when === "signed-in") !== Boolean(me);
  }
  for (const element of document.querySelectorAll("[data-me]")) {
    element.textContent = me ? me[element.dataset.me] ?? "" : "";
  }
}

/** Run `work` once at a time for `button`, marking it busy; returns undefined while already busy. */
export async function busy(button, work) {
  if (button.getAttribute("aria-busy") === "true") return undefined;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.removeAttribute("aria-busy");
  }
}

// --- Step-up ---------------------------------------------------------------------------------------------

/** Run `action`; when the server answers `reauth_required`, ask for a passkey check and run it again. */
export async function withStepUp(action) {
  try {
    return await action();
  } catch (error) {
    if (!(error instanceof ApiError) || error.code !== "reauth_required") throw error;
  }
  say("");
  await stepUp();
  return action();
}

/** The passkey check dialog: resolves once the session's `auth_time` is fresh, rejects when cancelled. */
export function stepUp() {
  const dialog = $("stepup");
  const confirm = $("stepup-confirm");
  const cancel = $("stepup-cancel");
  const problem = $("stepup-problem");
  const body = config.me?.user_name ? { user_name: config.me.user_name } : {};
  const options = new Prefetch(() => api("/auth/login/begin", body), config.challengeTtl);
  options.warm();
  clearProblem(problem);
  return new Promise((resolve, reject) => {
    const close = (error) => {
      confirm.removeEventListener("click", onConfirm);
      cancel.removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onEscape);
      dialog.close();
      if (error) reject(error);
      else resolve();
    };
    async function onConfirm() {
      await busy(confirm, async () => {
        clearProblem(problem);
        try {
          const credential = await getPasskey(await options.take());
          await api("/auth/login/finish", credential);
          close();
        } catch (error) {
          showProblem(error, problem);
          options.warm();
          confirm.focus();
        }
      });
    }
    const onCancel = () => close(new StepUpCancelled());
    const onEscape = (event) => {
      event.preventDefault();
      onCancel();
    };
    confirm.addEventListener("click", onConfirm);
    cancel.addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onEscape);
    dialog.showModal();
    confirm.focus();
  });
}

// --- Confirm ------------------------------------------------------------------------------------------

/** A modal question; resolves true when the person confirms. Cancel has the focus first. */
export function confirmAction(question, yesLabel) {
  const dialog = $("confirm");
  const yes = $("confirm-yes");
  const no = $("confirm-no");
  $("confirm-text").textContent = question;
  yes.textContent = yesLabel;
  return new Promise((resolve) => {
    const done = (answer) => {
      yes.removeEventListener("click", onYes);
      no.removeEventListener("click", onNo);
      dialog.removeEventListener("close", onNo);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onYes = () => done(true);
    const onNo = () => done(false);
    yes.addEventListener("click", onYes);
    no.addEventListener("click", onNo);
    dialog.addEventListener("close", onNo);
    dialog.showModal();
    no.focus();
  });
}

// --- Header ---------------------------------------------------------------------------------------------

export async function signOut() {
  try {
    await api("/auth/logout", {});
  } finally {
    location.assign("/signin?signed_out=1");
  }
}

$("sign-out")?.addEventListener("click", () => signOut());

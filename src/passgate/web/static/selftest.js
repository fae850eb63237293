// The self-test: what this browser reports next to what the server expects, and which mismatch would
// break sign-in. Nothing here signs anyone in.
import { $, config, t } from "/static/ui.js";
import { webauthnAvailable } from "/static/webauthn.js";

const server = config.server;
const yesNo = (value) => (value === undefined ? t("unknown") : value ? t("yes") : t("no"));

async function ask(question) {
  try {
    return await question();
  } catch {
    return undefined;
  }
}

function verdict(kind, text) {
  const item = document.createElement("li");
  item.className = kind;
  item.textContent = text;
  return item;
}

/** The capabilities people care about, in words; the raw names only behind "technical details". */
function capabilityList(capabilities) {
  if (!capabilities) return document.createTextNode(t("cap_none"));
  const list = document.createElement("ul");
  list.className = "capabilities";
  list.id = "capabilities-plain";
  for (const [name, value] of Object.entries(capabilities)) {
    if (!(`cap_${name}` in config.strings)) continue;
    const item = document.createElement("li");
    item.textContent = `${t(`cap_${name}`)}: ${yesNo(value)}`;
    list.append(item);
  }
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = t("cap_more", { n: Object.keys(capabilities).length });
  const raw = document.createElement("ul");
  raw.className = "capabilities";
  for (const [name, value] of Object.entries(capabilities).sort()) {
    const item = document.createElement("li");
    item.textContent = `${name}: ${yesNo(value)}`;
    raw.append(item);
  }
  details.append(summary, raw);
  const wrapper = document.createDocumentFragment();
  wrapper.append(list, details);
  return wrapper;
}

async function run() {
  const available = webauthnAvailable();
  const PKC = window.PublicKeyCredential;
  const conditional = available ? await ask(() => PKC.isConditionalMediationAvailable?.()) : false;
  const platform = available ? await ask(() => PKC.isUserVerifyingPlatformAuthenticatorAvailable()) : false;
  const capabilities = available ? await ask(() => PKC.getClientCapabilities?.()) : undefined;
  const host = location.hostname;

  $("fact-origin").textContent = location.origin;
  $("fact-secure").textContent = yesNo(window.isSecureContext);
  $("fact-webauthn").textContent = yesNo(available);
  $("fact-json").textContent = yesNo(available && typeof PKC.parseRequestOptionsFromJSON === "function");
  $("fact-conditional").textContent = yesNo(conditional);
  $("fact-platform").textContent = yesNo(platform);
  $("fact-capabilities").replaceChildren(capabilityList(capabilities));

  const problems = [];
  if (!window.isSecureContext) problems.push(verdict("bad", t("check_secure")));
  if (!available) problems.push(verdict("bad", t("check_webauthn")));
  if (host !== server.rp_id && !host.endsWith(`.${server.rp_id}`)) {
    problems.push(verdict("bad", t("check_rp_id", { host, rp_id: server.rp_id })));
  }
  if (!server.origins.includes(location.origin)) {
    problems.push(verdict("bad", t("check_origin", { origin: location.origin, origins: server.origins.join(", ") })));
  }
  const items = problems.length ? problems : [verdict("ok", t("check_ok"))];
  if (available && !conditional) items.push(verdict("warn", t("check_conditional")));
  if (available && platform === false) items.push(verdict("warn", t("check_platform")));
  $("verdict").replaceChildren(...items);
  document.body.dataset.selftest = problems.length ? "problems" : "ok";
}

run();

// Passgate's WebAuthn module: the /auth API, passkey ceremonies with the browser's JSON helpers (and a small
// base64url fallback for browsers without them), prefetched options, and the Signal API (feature-detected).

export const b64url = {
  encode(buffer) {
    const bytes = new Uint8Array(buffer);
    let text = "";
    for (const byte of bytes) text += String.fromCharCode(byte);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
  decode(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
    return Uint8Array.from(atob(base64), (char) => char.charCodeAt(0)).buffer;
  },
};

const withIds = (list) => (list || []).map((item) => ({ ...item, id: b64url.decode(item.id) }));

function creationOptions(json) {
  if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  return {
    ...json,
    challenge: b64url.decode(json.challenge),
    user: { ...json.user, id: b64url.decode(json.user.id) },
    excludeCredentials: withIds(json.excludeCredentials),
  };
}

function requestOptions(json) {
  if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  return { ...json, challenge: b64url.decode(json.challenge), allowCredentials: withIds(json.allowCredentials) };
}

function toJSON(credential) {
  if (typeof credential.toJSON === "function") return credential.toJSON();
  const response = credential.response;
  const json = {
    id: credential.id,
    rawId: b64url.encode(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment ?? undefined,
    clientExtensionResults: credential.getClientExtensionResults(),
    response: { clientDataJSON: b64url.encode(response.clientDataJSON) },
  };
  if (response.attestationObject) {
    json.response.attestationObject = b64url.encode(response.attestationObject);
    json.response.transports = response.getTransports ? response.getTransports() : [];
  } else {
    json.response.authenticatorData = b64url.encode(response.authenticatorData);
    json.response.signature = b64url.encode(response.signature);
    if (response.userHandle) json.response.userHandle = b64url.encode(response.userHandle);
  }
  return json;
}

/** A failed /auth call: `status`, the server's stable `code`, and the whole JSON `body`. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body.error || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = body.code;
    this.body = body;
  }
}

/** The server could not be reached at all. */
export class NetworkError extends Error {
  constructor(cause) {
    super(cause?.message || "network error");
    this.name = "NetworkError";
  }
}

/** GET `path` without `body`, POST JSON with it; resolves to the JSON answer, throws ApiError. */
export async function api(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (error) {
    throw new NetworkError(error);
  }
  const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const webauthnAvailable = () => typeof window.PublicKeyCredential === "function";

export async function createPasskey(options, signal) {
  const credential = await navigator.credentials.create({ publicKey: creationOptions(options.publicKey), signal });
  return toJSON(credential);
}

export async function getPasskey(options, { signal, mediation } = {}) {
  const request = { publicKey: requestOptions(options.publicKey), signal };
  if (mediation) request.mediation = mediation;
  return toJSON(await navigator.credentials.get(request));
}

export async function conditionalMediationAvailable() {
  if (!webauthnAvailable()) return false;
  try {
    if (PublicKeyCredential.getClientCapabilities) {
      const capabilities = await PublicKeyCredential.getClientCapabilities();
      if (typeof capabilities.conditionalGet === "boolean") return capabilities.conditionalGet;
    }
    return Boolean(await PublicKeyCredential.isConditionalMediationAvailable?.());
  } catch {
    return false;
  }
}

/**
 * Ceremony options fetched ahead of the click, so `create()` / `get()` run inside the click's user
 * activation (Safari drops it after an awaited fetch). Options are single use: `take()` hands them over
 * and starts no new fetch; call `warm()` again when the page may need another set.
 */
export class Prefetch {
  constructor(fetchOptions, maxAgeSeconds) {
    this.fetchOptions = fetchOptions;
    this.maxAgeMs = Math.max(10, maxAgeSeconds - 30) * 1000;
    this.pending = null;
    this.value = null;
    this.at = 0;
  }

  /** Start fetching unless fresh options are here or on their way; returns the fetch in flight, if any. */
  warm() {
    if (this.pending || (this.value && Date.now() - this.at < this.maxAgeMs)) return this.pending;
    this.value = null;
    this.pending = this.fetchOptions().then(
      (value) => { this.value = value; this.at = Date.now(); this.pending = null; return value; },
      (error) => { this.pending = null; throw error; },
    );
    this.pending.catch(() => {});
    return this.pending;
  }

  /** The prefetched options (synchronously when ready), else a fetch in flight or a new one. */
  take() {
    const fresh = this.value && Date.now() - this.at < this.maxAgeMs;
    const value = fresh ? this.value : null;
    this.value = null;
    if (value) return value;
    const pending = this.pending || this.fetchOptions();
    this.pending = null;
    return pending;
  }
}

// --- WebAuthn Signal API (feature-detected; failures never matter to the page) --------------------------

async function signal(method, details) {
  const call = webauthnAvailable() && PublicKeyCredential[method];
  if (typeof call !== "function") return false;
  try {
    await call.call(PublicKeyCredential, details);
    return true;
  } catch {
    return false;
  }
}

/** The server says no account owns this credential: the browser may stop offering it. */
export const signalUnknownCredential = (rpId, credentialId) =>
  signal("signalUnknownCredential", { rpId, credentialId });

/** Every credential id the account still accepts: the browser may hide the others. */
export const signalAllAcceptedCredentials = (rpId, userId, allAcceptedCredentialIds) =>
  signal("signalAllAcceptedCredentials", { rpId, userId, allAcceptedCredentialIds });

/** The account's current names, so passkey pickers show them. */
export const signalCurrentUserDetails = (rpId, userId, name, displayName) =>
  signal("signalCurrentUserDetails", { rpId, userId, name, displayName });

/** After a sign-in: tell the browser which of this account's passkeys still exist. */
export async function signalAcceptedAfterSignIn(rpId, userHandle) {
  if (!userHandle || !window.PublicKeyCredential?.signalAllAcceptedCredentials) return;
  try {
    const info = await api("/auth/user-info", {});
    const ids = info.credentials.map((item) => item.credential_id);
    await signalAllAcceptedCredentials(rpId, userHandle, ids);
    await signalCurrentUserDetails(rpId, userHandle, info.user.user_name, info.user.display_name);
  } catch {
    // a signal is a courtesy to the browser; the sign-in itself already succeeded
  }
}

// --- The helpers the demo page at / uses ------------------------------------------------------------

export async function register(userName, displayName = "") {
  const options = await api("/auth/register/begin", { user_name: userName, display_name: displayName });
  return api("/auth/register/finish", await createPasskey(options));
}

export async function signIn(userName) {
  const options = await api("/auth/login/begin", userName ? { user_name: userName } : {});
  return api("/auth/login/finish", await getPasskey(options));
}

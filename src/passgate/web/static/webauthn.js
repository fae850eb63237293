// Passgate's WebAuthn helpers: the browser's JSON helpers when present, a small base64url fallback otherwise.

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

function creationOptions(json) {
  if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  return {
    ...json,
    challenge: b64url.decode(json.challenge),
    user: { ...json.user, id: b64url.decode(json.user.id) },
    excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: b64url.decode(c.id) })),
  };
}

function requestOptions(json) {
  if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  return {
    ...json,
    challenge: b64url.decode(json.challenge),
    allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: b64url.decode(c.id) })),
  };
}

function toJSON(credential) {
  if (typeof credential.toJSON === "function") return credential.toJSON();
  const response = credential.response;
  const json = { id: credential.id, rawId: b64url.encode(credential.rawId), type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment ?? undefined,
    clientExtensionResults: credential.getClientExtensionResults(), response: {} };
  json.response.clientDataJSON = b64url.encode(response.clientDataJSON);
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

export class ApiError extends Error {
  constructor(status, body) {
    super(body.error || `HTTP ${status}`);
    this.status = status;
    this.code = body.code;
  }
}

export async function api(path, body) {
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export async function createPasskey(options, signal) {
  const credential = await navigator.credentials.create({ publicKey: creationOptions(options.publicKey), signal });
  return toJSON(credential);
}

export async function getPasskey(options, { signal, mediation } = {}) {
  const credential = await navigator.credentials.get({ publicKey: requestOptions(options.publicKey), signal, mediation });
  return toJSON(credential);
}

export async function register(userName, displayName = "") {
  const options = await api("/auth/register/begin", { user_name: userName, display_name: displayName });
  return api("/auth/register/finish", await createPasskey(options));
}

export async function signIn(userName) {
  const options = await api("/auth/login/begin", userName ? { user_name: userName } : {});
  return api("/auth/login/finish", await getPasskey(options));
}

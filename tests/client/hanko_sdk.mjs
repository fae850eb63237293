// Runs one call of @teamhanko/passkeys-sdk, as a Node backend would, and prints its result as JSON.
// node hanko_sdk.mjs SDK_ENTRY BASE_URL TENANT_ID API_KEY STEP [JSON_ARGUMENT]
import { pathToFileURL } from "node:url";

const [entry, baseUrl, tenantId, apiKey, step, argument] = process.argv.slice(2);
const { tenant } = await import(pathToFileURL(entry).href);
const passkeys = tenant({ baseUrl, tenantId, apiKey });
const arg = argument ? JSON.parse(argument) : undefined;
const steps = {
  "registration.initialize": () => passkeys.registration.initialize(arg),
  "registration.finalize": () => passkeys.registration.finalize(arg),
  "login.initialize": () => passkeys.login.initialize(),
  "login.finalize": () => passkeys.login.finalize(arg),
  "user.credentials": () => passkeys.user(arg).credentials(),
  // MFA: the argument names the user ({userId, ...}); finalize takes {userId, credential}
  "mfa.registration.initialize": () => passkeys.user(arg.userId).mfa.registration.initialize(arg),
  "mfa.registration.finalize": () => passkeys.user(arg.userId).mfa.registration.finalize(arg.credential),
  "mfa.login.initialize": () => passkeys.user(arg.userId).mfa.login.initialize(),
  "mfa.login.finalize": () => passkeys.user(arg.userId).mfa.login.finalize(arg.credential),
  "credential.remove": () => passkeys.credential(arg).remove(),
  "jwks": () => passkeys.jwks(),
};
try {
  process.stdout.write(JSON.stringify({ ok: await steps[step]() }));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error.message) }));
}

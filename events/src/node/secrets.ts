import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { credentialsPath, parseEnvFile, SECRETS_KEY_VAR, SECRETS_KEYS_PREVIOUS_VAR } from "./credentials.ts";

/**
 * Sealing of job secrets (a proxy's password). Everything in TROUPE_EVENTS is
 * readable by the projector, the UI and the dashboard's read-only `live` user,
 * and the log is kept forever; so the master seals a submitted proxy password
 * with a key only it and the workers hold (`TROUPE_SECRETS_KEY`, generated into
 * credentials.env beside the NATS passwords) and the log carries only the
 * sealed form. A worker opens it just before the browser authenticates.
 *
 * AES-256-GCM, a fresh 96-bit IV per seal, the job id as additional data (a
 * sealed password copied into another job does not open there).
 * Format: `v1.<iv>.<ciphertext + 16-byte tag>`, both base64url.
 */

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const SEALED = /^v1\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22,})$/;

export class SecretError extends Error {}

/** Decodes a key; throws a SecretError naming `where` when it is not 32 bytes of base64url. */
export function parseSecretsKey(text: string, where = SECRETS_KEY_VAR): Buffer {
  const t = text.trim();
  const key = /^[A-Za-z0-9_-]+$/.test(t) ? Buffer.from(t, "base64url") : Buffer.alloc(0);
  if (key.length !== KEY_BYTES) throw new SecretError(`${where}: expected ${KEY_BYTES} bytes as base64url (43 characters, as \`troupe nats\` writes it), got ${JSON.stringify(t.slice(0, 8))}… of ${t.length} characters`);
  return key;
}

/** `<dataDir>/credentials.env`, read only when a variable is not in the environment, and then once. */
function credentialsFile(dataDir: string) {
  const file = credentialsPath(dataDir);
  let vars: Record<string, string> | undefined;
  return { file, vars: () => (vars ??= existsSync(file) ? parseEnvFile(readFileSync(file, "utf8"), file) : {}) };
}

function currentKey(env: Record<string, string | undefined>, f: ReturnType<typeof credentialsFile>): Buffer | undefined {
  const fromEnv = env[SECRETS_KEY_VAR];
  if (fromEnv) return parseSecretsKey(fromEnv);
  const v = f.vars()[SECRETS_KEY_VAR];
  return v ? parseSecretsKey(v, `${f.file}: ${SECRETS_KEY_VAR}`) : undefined;
}

/**
 * The secrets key: from the environment when set, else from
 * `<dataDir>/credentials.env`; undefined when neither has one.
 */
export function loadSecretsKey(dataDir: string, env: Record<string, string | undefined> = process.env): Buffer | undefined {
  return currentKey(env, credentialsFile(dataDir));
}

/**
 * Every key a worker may open with: the current one, then the rotated-out ones
 * (TROUPE_SECRETS_KEYS_PREVIOUS, comma-separated, newest first). Each variable
 * comes from the environment when set there, else from credentials.env; a bad
 * key throws a SecretError naming the variable and its place in the list.
 */
export function loadSecretsKeys(dataDir: string, env: Record<string, string | undefined> = process.env): Buffer[] {
  const f = credentialsFile(dataDir);
  const current = currentKey(env, f);
  const prevText = env[SECRETS_KEYS_PREVIOUS_VAR] ?? f.vars()[SECRETS_KEYS_PREVIOUS_VAR] ?? "";
  const where = env[SECRETS_KEYS_PREVIOUS_VAR] !== undefined ? SECRETS_KEYS_PREVIOUS_VAR : `${f.file}: ${SECRETS_KEYS_PREVIOUS_VAR}`;
  const previous = prevText.split(",").map((k) => k.trim()).filter(Boolean).map((k, i) => parseSecretsKey(k, `${where}[${i}]`));
  return [...(current ? [current] : []), ...previous];
}

/** Opens with the first of `keys` that fits (current, then rotated-out ones); the SecretError of openSecret when none does. */
export function openSecretWithAny(sealed: string, keys: Buffer[], context: string): string {
  let last: unknown = new SecretError(`no ${SECRETS_KEY_VAR} to open the sealed secret with`);
  for (const key of keys) {
    try {
      return openSecret(sealed, key, context);
    } catch (e) {
      // A malformed secret will not open with any key.
      if (!(e instanceof SecretError) || !/does not open/.test(e.message)) throw e;
      last = e;
    }
  }
  throw last;
}

export function sealSecret(plain: string, key: Buffer, context: string): string {
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv("aes-256-gcm", key, iv);
  c.setAAD(Buffer.from(context, "utf8"));
  const body = Buffer.concat([c.update(plain, "utf8"), c.final(), c.getAuthTag()]);
  return `v1.${iv.toString("base64url")}.${body.toString("base64url")}`;
}

/** Opens a sealed secret; a SecretError says why not (wrong key, other job, damaged). */
export function openSecret(sealed: string, key: Buffer, context: string): string {
  const m = SEALED.exec(sealed);
  if (!m) throw new SecretError("not a sealed secret (expected v1.<iv>.<data>)");
  const iv = Buffer.from(m[1] as string, "base64url");
  const body = Buffer.from(m[2] as string, "base64url");
  if (iv.length !== IV_BYTES || body.length < TAG_BYTES) throw new SecretError("sealed secret is truncated");
  const d = createDecipheriv("aes-256-gcm", key, iv);
  d.setAAD(Buffer.from(context, "utf8"));
  d.setAuthTag(body.subarray(body.length - TAG_BYTES));
  try {
    return Buffer.concat([d.update(body.subarray(0, body.length - TAG_BYTES)), d.final()]).toString("utf8");
  } catch {
    throw new SecretError(`the sealed secret does not open with this ${SECRETS_KEY_VAR} (a different key from the master's, or sealed for another job)`);
  }
}

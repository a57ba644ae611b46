/** Ids appear as subject tokens, so they are limited to `[A-Za-z0-9_-]` and a bounded length. */
export const ID_PATTERN = "^[A-Za-z0-9_-]+$";
export const ID_MAX_LENGTH = 64;
const ID_RE = /^[A-Za-z0-9_-]+$/;

export function isValidId(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= ID_MAX_LENGTH && ID_RE.test(value);
}

/** Throws a message naming the field, for config and CLI arguments. */
export function assertValidId(value: unknown, field: string): string {
  if (!isValidId(value)) {
    throw new Error(
      `${field}: expected an id of 1-${ID_MAX_LENGTH} characters from [A-Za-z0-9_-], got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";
/** Random bytes for ids, about 330 ids' worth per refill. */
const pool = new Uint8Array(4092);
let poolAt = pool.length;

/**
 * A time-ordered unique id (base36 millis + 12 random chars). Used for event ids
 * (also the Nats-Msg-Id) and job ids; ordering by id follows creation time.
 */
export function newId(prefix = ""): string {
  const time = Date.now().toString(36).padStart(9, "0");
  // Random bytes come from a pool refilled 4 kB at a time: one getRandomValues call per id was a
  // measurable share of the master's CPU per job (docs/benchmarks.md).
  let rand = "";
  while (rand.length < 12) {
    const b = randomByte();
    // 252 = 7 × 36: bytes above it are skipped, so every character is equally likely (b % 36 favoured 0-3).
    if (b < 252) rand += ALPHABET[b % 36];
  }
  return `${prefix}${time}${rand}`;
}

function randomByte(): number {
  if (poolAt >= pool.length) {
    globalThis.crypto.getRandomValues(pool);
    poolAt = 0;
  }
  return pool[poolAt++] as number;
}

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** A secret for one attempt (payloads.ts AttemptToken): 132 random bits as 22 base64url characters. */
export function newAttemptToken(): string {
  let out = "";
  // 64 divides 256: every character equally likely.
  for (let i = 0; i < 22; i++) out += B64URL[randomByte() & 63];
  return out;
}

/** "Worker Node Demo 01" → "wn-demo-01"; "Worker Node US-East-1" → "wn-us-east-1". */
export function slugWorkerName(name: string): string {
  let slug = name
    .trim()
    .toLowerCase()
    .replace(/^worker[\s_-]+node\b/, "wn")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  if (slug.length > ID_MAX_LENGTH) slug = slug.slice(0, ID_MAX_LENGTH).replace(/-+$/, "");
  return slug;
}

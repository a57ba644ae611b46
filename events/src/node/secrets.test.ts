import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkEvent } from "../codec.ts";
import { createEvent } from "../codec.ts";
import { credentialsPath, ensureCredentials, newSecretsKey, parseEnvFile, rotateSecretsKey, SECRETS_KEY_VAR, SECRETS_KEYS_PREVIOUS_VAR } from "./credentials.ts";
import { loadSecretsKey, loadSecretsKeys, openSecret, openSecretWithAny, parseSecretsKey, sealSecret, SecretError } from "./secrets.ts";

const key = parseSecretsKey(newSecretsKey());

describe("sealed secrets", () => {
  it("opens what it sealed, with the same key and job, and the sealed form hides the secret", () => {
    const sealed = sealSecret("s3cret-pässword", key, "j1");
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain("s3cret");
    expect(sealSecret("s3cret-pässword", key, "j1")).not.toBe(sealed); // a fresh IV each time
    expect(openSecret(sealed, key, "j1")).toBe("s3cret-pässword");
  });

  it("fits the Proxy schema of the log, and a clear password does not", () => {
    const base = { jobId: "j1", spec: { url: "https://example.com", priority: 5, maxAttempts: 3, timeoutMs: 120_000 } };
    const ok = createEvent("job.submitted", { ...base, spec: { ...base.spec, proxy: { server: "http://p:3128", username: "u", sealedPassword: sealSecret("x".repeat(200), key, "j1") } } }, "m");
    expect(checkEvent(ok)).toBeNull();
    const clear = createEvent("job.submitted", { ...base, spec: { ...base.spec, proxy: { server: "http://p:3128", password: "x" } as never } }, "m");
    expect(checkEvent(clear)?.message).toMatch(/unknown property|additional/i);
  });

  it.each([
    ["another key", () => openSecret(sealSecret("pw", key, "j1"), parseSecretsKey(newSecretsKey()), "j1"), /does not open with this TROUPE_SECRETS_KEY/],
    ["another job", () => openSecret(sealSecret("pw", key, "j1"), key, "j2"), /sealed for another job/],
    ["a changed byte", () => {
      const s = sealSecret("pw", key, "j1");
      const last = s.at(-1) === "A" ? "B" : "A";
      return openSecret(s.slice(0, -1) + last, key, "j1");
    }, /does not open/],
    ["not sealed at all", () => openSecret("hunter2", key, "j1"), /not a sealed secret/],
  ])("refuses %s with a SecretError that says why", (_what, f, message) => {
    expect(f).toThrow(SecretError);
    expect(f).toThrow(message);
  });

  it.each([["", /43 characters/], ["short", /43 characters/], ["!".repeat(43), /base64url/], [Buffer.alloc(16).toString("base64url"), /32 bytes/]])("rejects the key %j", (text, message) => {
    expect(() => parseSecretsKey(text)).toThrow(message);
  });

  it("is generated into credentials.env once, kept on later runs, and loaded from the environment first", () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-secrets-"));
    expect(loadSecretsKey(dir, {})).toBeUndefined();
    ensureCredentials(dir);
    const first = readFileSync(join(dir, "credentials.env"), "utf8");
    expect(first).toMatch(new RegExp(`^${SECRETS_KEY_VAR}=[A-Za-z0-9_-]{43}$`, "m"));
    ensureCredentials(dir);
    expect(readFileSync(join(dir, "credentials.env"), "utf8")).toBe(first);
    const fromFile = loadSecretsKey(dir, {});
    expect(fromFile?.length).toBe(32);
    const other = newSecretsKey();
    expect(loadSecretsKey(dir, { [SECRETS_KEY_VAR]: other })?.equals(Buffer.from(other, "base64url"))).toBe(true);
    writeFileSync(join(dir, "credentials.env"), `${SECRETS_KEY_VAR}=nope\n`);
    expect(() => loadSecretsKey(dir, {})).toThrow(/credentials.env: TROUPE_SECRETS_KEY: expected 32 bytes/);
  });
});

describe("rotating the secrets key", () => {
  it("writes a new key, keeps the old ones (newest first, at most 5) for opening, and leaves the NATS passwords alone", () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-rotate-"));
    const creds = ensureCredentials(dir);
    const read = () => parseEnvFile(readFileSync(credentialsPath(dir), "utf8"));
    const k0 = read()[SECRETS_KEY_VAR] as string;
    const sealed = sealSecret("pw-before", parseSecretsKey(k0), "job-1");
    const r1 = rotateSecretsKey(dir);
    expect(r1.key).not.toBe(k0);
    expect(read()).toMatchObject({ [SECRETS_KEY_VAR]: r1.key, [SECRETS_KEYS_PREVIOUS_VAR]: k0 });
    expect(statSync(credentialsPath(dir)).mode & 0o777).toBe(0o600);
    // What a worker loads: the new key first; a job sealed before the rotation still opens, and a new seal uses the new key.
    const keys = loadSecretsKeys(dir, {});
    expect(keys.map((k) => k.toString("base64url"))).toEqual([r1.key, k0]);
    expect(openSecretWithAny(sealed, keys, "job-1")).toBe("pw-before");
    expect(() => openSecretWithAny(sealed, keys.slice(0, 1), "job-1")).toThrow(/does not open with this TROUPE_SECRETS_KEY/);
    expect(() => openSecretWithAny(sealed, keys, "job-2")).toThrow(SecretError);
    // Later runs of `troupe nats` keep the list; five rotations later the oldest is gone.
    expect(ensureCredentials(dir)).toEqual(creds);
    expect(read()[SECRETS_KEYS_PREVIOUS_VAR]).toBe(k0);
    let last = r1;
    for (let i = 0; i < 5; i++) last = rotateSecretsKey(dir);
    expect(last.previous).toHaveLength(5);
    expect(last.previous).not.toContain(k0);
    expect(read()[SECRETS_KEY_VAR]).toBe(last.key);
  });

  it("takes the previous keys from the environment first and names a bad one by its place", () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-rotate-env-"));
    const a = newSecretsKey();
    const b = newSecretsKey();
    expect(loadSecretsKeys(dir, { [SECRETS_KEY_VAR]: a, [SECRETS_KEYS_PREVIOUS_VAR]: ` ${b} ,` }).map((k) => k.toString("base64url"))).toEqual([a, b]);
    expect(() => loadSecretsKeys(dir, { [SECRETS_KEY_VAR]: a, [SECRETS_KEYS_PREVIOUS_VAR]: `${b},short` })).toThrow(/TROUPE_SECRETS_KEYS_PREVIOUS\[1\]: expected 32 bytes/);
    expect(loadSecretsKeys(dir, {})).toEqual([]);
  });
});

import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { renderNatsConf, WORKER_USERS_MARKER } from "./nats-conf.ts";
import { NATS_CONF } from "./nats-server.ts";
import { addWorkerUser, loadWorkerUsers, removeWorkerUser, workerCredential, workerUserConf, workerUsersPath } from "./worker-users.ts";
import { ensureCredentials } from "./credentials.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "troupe-wu-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("worker-users.json", () => {
  it("adds, lists and removes users, in a file only its owner reads", () => {
    expect(loadWorkerUsers(dir)).toEqual([]);
    const a = addWorkerUser(dir, "eu-1", { now: new Date("2026-11-29T10:00:00Z") });
    expect(a).toMatchObject({ workerId: "eu-1", user: "worker-eu-1", createdAt: "2026-11-29T10:00:00.000Z" });
    expect(a.password).toMatch(/^[A-Za-z][A-Za-z0-9_-]{20,}$/);
    addWorkerUser(dir, "eu-2");
    expect(loadWorkerUsers(dir).map((u) => u.workerId)).toEqual(["eu-1", "eu-2"]);
    expect(statSync(workerUsersPath(dir)).mode & 0o777).toBe(0o600);
    expect(removeWorkerUser(dir, "eu-1")).toBe(true);
    expect(removeWorkerUser(dir, "eu-1")).toBe(false);
    expect(loadWorkerUsers(dir).map((u) => u.workerId)).toEqual(["eu-2"]);
  });

  it("refuses a second user for a worker unless rotating, which changes only the password", () => {
    const first = addWorkerUser(dir, "w1");
    expect(() => addWorkerUser(dir, "w1")).toThrow(/already has a user \(worker-w1\); --rotate/);
    const rotated = addWorkerUser(dir, "w1", { rotate: true });
    expect(rotated.user).toBe(first.user);
    expect(rotated.password).not.toBe(first.password);
    expect(loadWorkerUsers(dir)).toEqual([rotated]);
  });

  it.each(["", "a.b", "a b", "*", ">", "x".repeat(65), "w1\n"])("refuses the worker id %j (it becomes a subject token)", (id) => {
    expect(() => addWorkerUser(dir, id)).toThrow(/invalid worker id/);
  });

  it("names a malformed file instead of reading it as empty (which would drop every user at the next reload)", () => {
    writeFileSync(workerUsersPath(dir), "{not json");
    expect(() => loadWorkerUsers(dir)).toThrow(/worker-users\.json: not valid JSON/);
    writeFileSync(workerUsersPath(dir), JSON.stringify({ version: 1, users: [{ workerId: "w1", user: "worker-w2", password: "p".repeat(20), createdAt: "x" }] }));
    expect(() => loadWorkerUsers(dir)).toThrow(/users\[0\] is not a worker user/);
    writeFileSync(workerUsersPath(dir), JSON.stringify({ version: 1, users: [{ workerId: "w1", user: "worker-w1", password: "p\" }", createdAt: "x" }] }));
    expect(() => loadWorkerUsers(dir)).toThrow(/users\[0\] is not a worker user/);
    const u = { workerId: "w1", user: "worker-w1", password: "p".repeat(20), createdAt: "x" };
    writeFileSync(workerUsersPath(dir), JSON.stringify({ version: 1, users: [u, u] }));
    expect(() => loadWorkerUsers(dir)).toThrow(/listed twice/);
    writeFileSync(workerUsersPath(dir), JSON.stringify({ users: [] }));
    expect(() => loadWorkerUsers(dir)).toThrow(/expected \{"version": 1/);
  });
});

describe("a per-worker user in nats.conf", () => {
  const u = { workerId: "eu-1", user: "worker-eu-1", password: "pSecret_123456789012" };

  it("is the worker role narrowed to its own id: its commands, heartbeat, worker events, inbox; artifacts write-only", () => {
    const block = workerUserConf("acme", u);
    const allow = (kind: "publish" | "subscribe") => JSON.parse(new RegExp(`${kind}: \\{ allow: (\\[.*\\]) \\}`).exec(block)![1]!) as string[];
    expect(allow("subscribe")).toEqual([
      "acme.worker.eu-1.assign", "acme.worker.eu-1.cancel", "acme.worker.eu-1.drain", "acme.worker.eu-1.resume", "acme.worker.eu-1.presence",
      "$SRV.*", "$SRV.*.troupe-worker", "$SRV.*.troupe-worker.*", "_INBOX.w.eu-1.>",
    ]);
    // No _INBOX.> (replies go by allow_responses) and no stream info (it lists every subject: job ids); of the
    // heartbeats only its own last one (the server's stamp, for its clock).
    expect(allow("publish")).toEqual([
      "acme.evt.worker.eu-1.registered", "acme.evt.worker.eu-1.draining", "acme.evt.worker.eu-1.deregistered",
      "acme.evt.job.*.started", "acme.evt.job.*.progress", "acme.evt.job.*.completed", "acme.evt.job.*.failed",
      "acme.hb.eu-1", "acme.worker.eu-1.presence", "acme.rpc.attempts.check",
      "$O.acme-artifacts.C.*", "$O.acme-artifacts.M.*",
      "$JS.API.DIRECT.GET.ACME_HEARTBEATS.acme.hb.eu-1",
    ]);
    expect(block).toContain("allow_responses: true");
    expect(block).toContain('user: "worker-eu-1"');
    expect(block).toContain('password: "pSecret_123456789012"');
    expect(block).toContain('allowed_connection_types: ["STANDARD"]');
  });

  it("is written at the marker inside authorization.users, after the prefix's renaming (a worker id naming troupe stays)", () => {
    const conf = readFileSync(NATS_CONF, "utf8");
    expect(renderNatsConf(conf, "troupe", [])).toBe(conf);
    const out = renderNatsConf(conf, "acme", [{ ...u, workerId: "troupe-1", user: "worker-troupe-1", createdAt: "x" }]);
    const marker = out.split("\n").findIndex((l) => l.includes(WORKER_USERS_MARKER));
    expect(out.split("\n")[marker + 2]).toContain("# Worker troupe-1 only");
    expect(out).toContain('"acme.worker.troupe-1.assign"');
    expect(out.indexOf('user: "worker-troupe-1"')).toBeLessThan(out.lastIndexOf("]"));
  });

  it("cannot be written into a nats.conf without the marker", () => {
    expect(() => renderNatsConf("authorization { users: [] }", "troupe", [{ ...u, createdAt: "x" }])).toThrow(/no "# @troupe:worker-users" line/);
    expect(renderNatsConf("authorization { users: [] }", "troupe", [])).toBe("authorization { users: [] }");
  });
});

describe("workerCredential", () => {
  it("takes the environment's, else the worker's own user in the data dir, else the shared one", () => {
    const shared = ensureCredentials(dir).worker;
    const own = addWorkerUser(dir, "wn-local-01");
    expect(workerCredential(dir, "wn-local-01", {})).toEqual({ user: own.user, password: own.password, from: "own user" });
    expect(workerCredential(dir, "wn-remote", {})).toEqual({ user: shared.user, password: shared.password, from: "shared user" });
    const env = { TROUPE_NATS_WORKER_USER: "worker-x", TROUPE_NATS_WORKER_PASSWORD: "Pw0123456789abcdefgh" };
    expect(workerCredential(dir, "wn-local-01", env)).toEqual({ user: "worker-x", password: "Pw0123456789abcdefgh", from: "environment" });
  });

  it("goes on as the shared user, saying why, when worker-users.json cannot be read; the file's own errors tell reading from parsing", () => {
    const shared = ensureCredentials(dir).worker;
    writeFileSync(workerUsersPath(dir), "{ truncated");
    const cred = workerCredential(dir, "wn-remote", {});
    expect(cred).toMatchObject({ user: shared.user, from: "shared user" });
    expect(cred.problem).toMatch(/worker-users\.json: not valid JSON .*; fix it \(its users are cut off at the next reload without it\)$/);
    rmSync(workerUsersPath(dir));
    mkdirSync(workerUsersPath(dir)); // a directory: readable by nobody as a file
    expect(() => loadWorkerUsers(dir)).toThrow(/worker-users\.json: cannot be read \(EISDIR/);
  });
});

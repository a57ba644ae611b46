import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { credentialsPath, ensureCredentials, loadCredential, loadRouteCredential, parseEnvFile, ROLES } from "./credentials.ts";
import { routeWithCredential } from "./nats-server.ts";

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "troupe-cred-"));
  dirs.push(d);
  return d;
};
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("credentials", () => {
  it("generates one private user per role, stable across runs", () => {
    const dir = tmp();
    const first = ensureCredentials(dir);
    expect(Object.keys(first)).toEqual([...ROLES]);
    expect(statSync(credentialsPath(dir)).mode & 0o777).toBe(0o600);
    expect(ensureCredentials(dir)).toEqual(first);
    expect(new Set(ROLES.map((r) => first[r].password)).size).toBe(ROLES.length);
  });

  it("generates passwords nats.conf reads as strings (start with a letter, token characters)", () => {
    for (let i = 0; i < 200; i++) {
      const c = ensureCredentials(tmp());
      for (const r of ROLES) expect(c[r].password).toMatch(/^[A-Za-z][A-Za-z0-9_-]{20,}$/);
    }
  });

  it("adds the cluster route user to a file from before it, keeping every role; the environment overrides it", () => {
    const dir = tmp();
    const first = ensureCredentials(dir);
    writeFileSync(credentialsPath(dir), readFileSync(credentialsPath(dir), "utf8").split("\n").filter((l) => !l.startsWith("TROUPE_NATS_ROUTE_")).join("\n"));
    const route = loadRouteCredential(dir, {});
    expect(route).toMatchObject({ user: "route", password: expect.stringMatching(/^p[A-Za-z0-9_-]{20,}$/) });
    expect(ensureCredentials(dir)).toEqual(first);
    expect(loadRouteCredential(dir, {})).toEqual(route);
    expect(loadRouteCredential(dir, { TROUPE_NATS_ROUTE_USER: "r2", TROUPE_NATS_ROUTE_PASSWORD: "px" })).toEqual({ user: "r2", password: "px" });
  });

  it("puts the route user into route URLs that name none, and keeps one that does", () => {
    const c = { user: "route", password: "pA-b_c" };
    expect(routeWithCredential("nats://n2:6222", c)).toBe("nats://route:pA-b_c@n2:6222");
    expect(routeWithCredential("nats://other:pw@n3:6222", c)).toBe("nats://other:pw@n3:6222");
  });

  it("adds a missing role without changing the others", () => {
    const dir = tmp();
    const first = ensureCredentials(dir);
    const kept = readFileSync(credentialsPath(dir), "utf8").split("\n").filter((l) => !l.startsWith("TROUPE_NATS_LIVE_")).join("\n");
    writeFileSync(credentialsPath(dir), kept);
    const second = ensureCredentials(dir);
    expect(second.master).toEqual(first.master);
    expect(second.live.password).not.toBe(first.live.password);
  });

  it("reads the environment first, then the file, and says where it looked", () => {
    const dir = tmp();
    const file = ensureCredentials(dir);
    expect(loadCredential("worker", dir, {})).toEqual(file.worker);
    expect(loadCredential("worker", dir, { TROUPE_NATS_WORKER_USER: "w", TROUPE_NATS_WORKER_PASSWORD: "pw" })).toEqual({ user: "w", password: "pw" });
    expect(() => loadCredential("worker", tmp(), {})).toThrow(/give this command --data-dir <dir> or TROUPE_DATA_DIR=<dir>; on another machine set TROUPE_NATS_WORKER_USER and TROUPE_NATS_WORKER_PASSWORD .*`pnpm troupe nats` \(or `up`\) creates/);
    // One of the two is a mistake, not "use the file" (a worker ran as the shared user under another's id).
    expect(() => loadCredential("worker", dir, { TROUPE_NATS_WORKER_USER: "worker-us-east-1" })).toThrow(/TROUPE_NATS_WORKER_USER is set but TROUPE_NATS_WORKER_PASSWORD is not: set both/);
    expect(() => loadCredential("ui", dir, { TROUPE_NATS_UI_PASSWORD: "wrong" })).toThrow(/TROUPE_NATS_UI_PASSWORD is set but TROUPE_NATS_UI_USER is not/);
  });

  it("parses env files and rejects malformed lines with the line number", () => {
    expect(parseEnvFile("# c\nA=1\nexport B='two'\n\nC=\"3\"")).toEqual({ A: "1", B: "two", C: "3" });
    expect(() => parseEnvFile("A=1\nnot a line", "x.env")).toThrow(/x\.env:2: expected KEY=VALUE/);
  });
});

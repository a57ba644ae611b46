import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "@troupe/events/node";
import { waitFor } from "../harness/index.ts";
import { ensureUiBuild } from "../../ui/launch/build.ts";
import { startProcess, type Managed } from "../../ui/launch/processes.ts";

/** The token rule of `troupe ui`, against the real server process (no NATS needed for it). */

const TROUPE = fileURLToPath(new URL("../../bin/troupe.mjs", import.meta.url));
const TOKEN = "e2e-token-0123456789abcdef";
let dataDir: string;
let ui: Managed | undefined;
let url: string;
const out: string[] = [];

beforeAll(async () => {
  await ensureUiBuild(() => {});
  dataDir = mkdtempSync(join(tmpdir(), "troupe-ui-token-"));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  ui = startProcess("ui", process.execPath, [TROUPE, "ui", "--no-build", "--port", String(port), "--data-dir", dataDir, "--nats-url", "nats://127.0.0.1:1"], { ...process.env, TROUPE_UI_TOKEN: TOKEN }, (l) => out.push(l));
  await waitFor("the UI to listen", async () => (await fetch(`${url}/login`).catch(() => null))?.ok, 60_000, 100);
}, 300_000);

afterAll(async () => {
  await ui?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("troupe ui token rule", () => {
  it("refuses to bind a non-loopback address without a token (exit 2, says why)", async () => {
    const env = { ...process.env };
    delete env.TROUPE_UI_TOKEN;
    const child = spawn(process.execPath, [TROUPE, "ui", "--no-build", "--host", "0.0.0.0", "--port", "0"], { env });
    let err = "";
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((res) => child.once("exit", res));
    expect(code).toBe(2);
    expect(err).toMatch(/refusing to serve the dashboard on 0\.0\.0\.0 without a login: set TROUPE_UI_TOKEN/);
  });

  it.each([
    ["a CA file it cannot read", (dir: string) => ["--nats-ca", join(dir, "missing-ca.crt")], /TROUPE_NATS_CA: .*missing-ca\.crt/],
    ["a --db that is no SQLite file", (dir: string) => ["--db", join(dir, "notes.txt")], /--db: cannot open read models .*notes\.txt: .*not a database/],
  ])("refuses to start with %s (exit 2, says which; it served pages that all failed)", async (_what, args, message) => {
    writeFileSync(join(dataDir, "notes.txt"), "not a database, just some text that is long enough to have a header's size and more\n".repeat(20));
    const child = spawn(process.execPath, [TROUPE, "ui", "--no-build", "--port", "0", "--data-dir", dataDir, ...args(dataDir)], { env: { ...process.env, TROUPE_UI_TOKEN: TOKEN } });
    let err = "";
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    try {
      // Up and serving instead, it would not exit at all: bounded, and killed after.
      const code = await Promise.race([new Promise<number | null>((res) => child.once("exit", res)), new Promise<string>((res) => setTimeout(() => res("still running after 20 s"), 20_000))]);
      expect(code, err).toBe(2);
      expect(err).toMatch(message);
    } finally {
      child.kill("SIGKILL");
    }
  }, 30_000);

  it("with a token, the API needs `Authorization: Bearer` and answers 401 in the error shape without it", async () => {
    const anon = await fetch(`${url}/api/workers`);
    expect(anon.status).toBe(401);
    expect(await anon.json()).toMatchObject({ success: false, error: { code: "unauthorized" } });
    // The API by another spelling of its path (SvelteKit routes it as /api/stats) answers as the API, not with the login's redirect.
    const encoded = await fetch(`${url}/%61pi/stats`, { redirect: "manual" });
    expect(encoded.status).toBe(401);
    expect(await encoded.json()).toMatchObject({ success: false, error: { code: "unauthorized" } });
    const wrong = await fetch(`${url}/api/workers`, { headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    const ok = await fetch(`${url}/api/workers`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ success: true, workers: [] });
  });

  it("pages redirect to the login, which sets a cookie that opens them", async () => {
    const page = await fetch(`${url}/workers`, { redirect: "manual" });
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toBe("/login?next=%2Fworkers");
    const login = await fetch(`${url}/login`, {
      method: "POST", redirect: "manual", body: new URLSearchParams({ token: TOKEN, next: "/workers" }),
      headers: { origin: url, accept: "text/html" },
    });
    expect(login.status).toBe(303);
    expect(login.headers.get("location")).toBe("/workers");
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] as string;
    expect(cookie).toMatch(/^troupe_token=/);
    const again = await fetch(`${url}/workers`, { headers: { cookie }, redirect: "manual" });
    expect(again.status).toBe(200);
    const bad = await fetch(`${url}/login`, { method: "POST", redirect: "manual", body: new URLSearchParams({ token: "wrong-token-000000" }), headers: { origin: url, accept: "text/html" } });
    expect(bad.status).toBe(401);
  });

  it("answers a login post that is no form 400, logs no stack, and shows the read models' path to no one signed out", async () => {
    const before = out.length;
    for (const [type, body] of [["text/plain", "x"], ["multipart/form-data; boundary=zz", "--zz\r\nbroken"]] as const) {
      const r = await fetch(`${url}/login`, { method: "POST", redirect: "manual", body, headers: { origin: url, accept: "text/html", "content-type": type } });
      expect(r.status, type).toBe(400);
    }
    expect(out.slice(before).filter((l) => /Error|at .*\.js:\d+/.test(l))).toEqual([]);
    // The login page's data is served to anyone: it named the server's read-model file.
    const data = await (await fetch(`${url}/login/__data.json`)).text();
    expect(data).not.toContain(dataDir);
    expect(data).not.toContain("readmodels");
  });

  it("answers a malformed path without a login with 400 and stays up (a redirect thrown there was an unhandled rejection that ended the process)", async () => {
    for (const path of ["/%FF", "/jobs/%FF", "/favicon.ico%", "/api/workers/%FF"]) {
      const r = await fetch(`${url}${path}`, { redirect: "manual" });
      expect(r.status, path).toBe(400);
      // JSON in the API's error shape, pages and API alike: no page (and none of its data) is rendered for it.
      expect(await r.json(), path).toMatchObject({ success: false, error: { code: "invalid" } });
    }
    expect((await fetch(`${url}/login`)).status).toBe(200);
    expect(ui?.exited ? await Promise.race([ui.exited.then(() => "exited"), new Promise((r) => setTimeout(() => r("running"), 200))]) : "running").toBe("running");
  });
});

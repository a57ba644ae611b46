import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "@troupe/events/node";
import { startTestNats, waitFor, type TestNats } from "../harness/index.ts";
import { ensureUiBuild } from "../../ui/launch/build.ts";
import { startProcess, type Managed } from "../../ui/launch/processes.ts";
import { startDemoSite, type DemoSite } from "../../ui/demo/site.ts";

/**
 * Every service must stop when told to even if NATS has gone away first — the
 * order a SIGKILLed `troupe up` produces (all children get SIGTERM at once,
 * nats-server is gone in milliseconds), or a VPS worker stopped while its
 * network is down. A connection whose drain fails keeps reconnecting forever;
 * the master used to hang on exactly that.
 */

const TROUPE = fileURLToPath(new URL("../../bin/troupe.mjs", import.meta.url));
let nats: TestNats | undefined;
let site: DemoSite | undefined;
const procs = new Map<string, Managed>();
const logs = new Map<string, string[]>();

afterAll(async () => {
  await Promise.all([...procs.values()].map((p) => p.stop("SIGKILL", 1000)));
  await site?.close();
  await nats?.stop();
}, 60_000);

describe("stopping while NATS is down", () => {
  it("master, projector, UI and worker each exit 0 on SIGTERM after nats-server was killed, without the CLI's exit safety net", async () => {
    await ensureUiBuild((l) => console.log(l));
    nats = await startTestNats({ init: true });
    site = await startDemoSite(0);
    const uiPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env, ...nats.env(),
      TROUPE_HEARTBEAT_MS: "1000", TROUPE_MASTER_PORT: "0", TROUPE_PROJECTOR_PORT: "0",
      TROUPE_UI_PORT: String(uiPort), TROUPE_UI_BUILD: "false", TROUPE_NATS_WS_PORT: nats.wsUrl.split(":").pop() as string,
      TROUPE_WORKER_ID: "wn-stop-01", TROUPE_WORKER_PORT: "0", TROUPE_ALLOWED_TARGETS: "127.0.0.1", TROUPE_MAX_CPU: "100", TROUPE_MIN_FREE_MEMORY_MB: "0",
      TROUPE_DRAIN_GRACE_MS: "1000", TROUPE_LOG_LEVEL: "info",
    };
    for (const name of ["master", "projector", "ui", "worker"]) {
      const lines: string[] = [];
      logs.set(name, lines);
      procs.set(name, startProcess(name, process.execPath, [TROUPE, name], env, (l) => lines.push(l)));
    }
    const out = (name: string) => (logs.get(name) ?? []).slice(-40).join("\n");
    const base = `http://127.0.0.1:${uiPort}`;

    // A job through the UI's API: it opens the UI's own NATS connection (lazy) and proves all four are connected.
    const body = JSON.stringify({ url: `${site.url}/product/1`, scenario: { title: "stop test", steps: [{ type: "navigate", url: `${site.url}/product/1` }] } });
    const jobId = await waitFor("the job accepted", async () => {
      const r = await fetch(`${base}/api/jobs`, { method: "POST", headers: { "content-type": "application/json" }, body }).catch(() => null);
      if (!r) return null;
      if (r.status === 503) return null; // no master yet
      if (r.status !== 201) throw new Error(`submit refused: ${r.status} ${await r.text()}`);
      return ((await r.json()) as { jobId: string }).jobId;
    }, 120_000, 250);
    await waitFor(`job ${jobId} completed (worker: ${out("worker")})`, async () => {
      const r = await fetch(`${base}/api/jobs/${jobId}`).catch(() => null);
      return r?.ok && ((await r.json()) as { job: { status: string } }).job.status === "completed";
    }, 120_000, 250);

    await nats.server.stop("SIGKILL");
    // Each has seen the connection go (awaited, not slept): its drain would now fail.
    for (const name of procs.keys()) {
      await waitFor(`${name} to see NATS go (${out(name)})`, () => logs.get(name)?.some((l) => /nats (disconnect|reconnecting)/.test(l)), 30_000, 50);
    }
    const started = Date.now();
    for (const p of procs.values()) p.child.kill("SIGTERM");
    const codes = await Promise.all([...procs.entries()].map(async ([name, p]) => {
      const code = await Promise.race([p.exited, new Promise<string>((r) => setTimeout(() => r("still running"), 60_000))]);
      return [name, code] as const;
    }));
    for (const [name, code] of codes) {
      expect(code, `${name} exit (${out(name)})`).toBe(0);
      expect(out(name), name).not.toMatch(/still running .* after it finished/);
    }
    // The master's and the worker's connections could not drain, and were closed instead of left reconnecting.
    for (const name of ["master", "worker"]) expect(out(name), name).toMatch(/not drained .*closing it/);
    console.log(`all four stopped ${Date.now() - started} ms after SIGTERM`);
  }, 300_000);

  it("a worker stopped while its registration cannot be stored (no `troupe init`) says why, exits 0 and leaves no Chromium profile behind", async () => {
    const bare = await startTestNats(); // streams never created: the registration gets "no responders"
    const tmp = mkdtempSync(join(tmpdir(), "troupe-stop-tmp-"));
    try {
      const lines: string[] = [];
      const env: NodeJS.ProcessEnv = { ...process.env, ...bare.env(), TMPDIR: tmp, TROUPE_WORKER_ID: "wn-stop-02", TROUPE_WORKER_PORT: "0", TROUPE_LOG_LEVEL: "info" };
      const w = startProcess("worker-2", process.execPath, [TROUPE, "worker"], env, (l) => lines.push(l));
      procs.set("worker-2", w);
      await waitFor(`the registration retried with a hint (${lines.slice(-10).join("\n")})`, () => lines.some((l) => l.includes("publish failed; retrying") && l.includes("troupe init")), 60_000, 50);
      expect(readdirSync(tmp).some((d) => d.startsWith("troupe-chromium-")), "a browser profile while starting").toBe(true);
      w.child.kill("SIGTERM");
      const code = await Promise.race([w.exited, new Promise<string>((r) => setTimeout(() => r("still running"), 30_000))]);
      expect(code, lines.slice(-10).join("\n")).toBe(0);
      expect(lines.join("\n")).not.toMatch(/still running .* after it finished/);
      expect(readdirSync(tmp).filter((d) => d.startsWith("troupe-chromium-")), "browser profiles left in TMPDIR").toEqual([]);
    } finally {
      await bare.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 120_000);
});

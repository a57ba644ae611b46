import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { Command } from "@troupe/events";
import { startTestNats, waitFor, type TestNats } from "../harness/index.ts";
import { startDemoSite, type DemoSite } from "../../ui/demo/site.ts";
import { startProcess, type Managed } from "../../ui/launch/processes.ts";

/** `troupe worker` and its signals as an operator sends them (Ctrl-C, Ctrl-C again). */

const TROUPE = fileURLToPath(new URL("../../bin/troupe.mjs", import.meta.url));
let nats: TestNats | undefined;
let site: DemoSite | undefined;
let worker: Managed | undefined;
const tmp = mkdtempSync(join(tmpdir(), "troupe-signals-tmp-"));

afterAll(async () => {
  await worker?.stop("SIGKILL", 1000);
  await site?.close();
  await nats?.stop();
  rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describe("troupe worker signals", () => {
  it("a second SIGTERM during the drain stops at once (exit 1) but still closes the browser and removes its profile", async () => {
    nats = await startTestNats({ init: true });
    site = await startDemoSite(0);
    const lines: string[] = [];
    const out = () => lines.slice(-20).join("\n");
    worker = startProcess("worker", process.execPath, [TROUPE, "worker"], {
      ...process.env, ...nats.env(), TMPDIR: tmp, TROUPE_WORKER_ID: "wn-signals-01", TROUPE_WORKER_PORT: "0", TROUPE_ALLOWED_TARGETS: "127.0.0.1",
      TROUPE_MAX_CPU: "100", TROUPE_MIN_FREE_MEMORY_MB: "0", TROUPE_DRAIN_GRACE_MS: "60000", TROUPE_LOG_LEVEL: "info",
    }, (l) => lines.push(l));
    await waitFor(`the worker registered (${out()})`, () => lines.some((l) => l.includes("worker registered")), 120_000, 50);

    // A job that runs for a minute, so the drain has something to wait for.
    const master = await nats.connect("master");
    const started = new Promise<void>((res) => {
      const sub = master.subscribe("troupe.evt.job.job-signals-1.started", { callback: () => { sub.unsubscribe(); res(); } });
    });
    await master.flush();
    const url = `${site.url}/slow?ms=60000`;
    const assign: Command<"worker.assign"> = { jobId: "job-signals-1", attempt: 1, epoch: 1, spec: { url, priority: 5, maxAttempts: 3, timeoutMs: 120_000, scenario: { steps: [{ type: "navigate", url }] } } };
    expect((await master.request("troupe.worker.wn-signals-01.assign", JSON.stringify(assign), { timeout: 10_000 })).json()).toEqual({ accepted: true });
    await started;
    expect(readdirSync(tmp).some((d) => d.startsWith("troupe-chromium-")), "the job's browser profile").toBe(true);

    worker.child.kill("SIGTERM");
    await waitFor(`the drain (${out()})`, () => lines.some((l) => l.includes('"msg":"draining"')), 20_000, 20);
    const t0 = Date.now();
    worker.child.kill("SIGTERM");
    const code = await Promise.race([worker.exited, new Promise<string>((r) => setTimeout(() => r("still running"), 30_000))]);
    expect(code, out()).toBe(1);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(out()).toMatch(/second signal: stopping now/);
    expect(readdirSync(tmp).filter((d) => d.startsWith("troupe-chromium-")), "browser profiles left").toEqual([]);
  }, 300_000);

  it("the next start removes the browser profile a SIGKILLed worker left (its Chromium removed its own lock, so it stayed for an hour or more)", async () => {
    nats ??= await startTestNats({ init: true });
    const profiles = () => readdirSync(tmp).filter((d) => d.startsWith("troupe-chromium-"));
    const start = (lines: string[]) => startProcess("worker", process.execPath, [TROUPE, "worker"], {
      ...process.env, ...nats!.env(), TMPDIR: tmp, TROUPE_WORKER_ID: "wn-signals-02", TROUPE_WORKER_PORT: "0", TROUPE_ALLOWED_TARGETS: "127.0.0.1",
      TROUPE_MAX_CPU: "100", TROUPE_MIN_FREE_MEMORY_MB: "0", TROUPE_LOG_LEVEL: "info",
    }, (l) => lines.push(l));
    const first: string[] = [];
    worker = start(first);
    await waitFor(`the worker registered (${first.slice(-20).join("\n")})`, () => first.some((l) => l.includes("worker registered")), 120_000, 50);
    const pid = worker.child.pid!;
    expect(profiles().filter((d) => d.includes(`-${pid}-`)), "the first worker's profile").toHaveLength(1);
    worker.child.kill("SIGKILL");
    await worker.exited;
    // Chromium follows its worker (the pipe closes) and leaves its profile behind.
    await waitFor("the first worker's browser to exit", () => !readdirSync(join(tmp, profiles().find((d) => d.includes(`-${pid}-`))!)).includes("SingletonLock"), 30_000, 50);
    const second: string[] = [];
    worker = start(second);
    await waitFor(`the second worker registered (${second.slice(-20).join("\n")})`, () => second.some((l) => l.includes("worker registered")), 120_000, 50);
    expect(second.some((l) => l.includes("removed the profiles of browsers that died without cleaning up")), second.slice(-20).join("\n")).toBe(true);
    expect(profiles().filter((d) => d.includes(`-${pid}-`)), "the killed worker's profile").toEqual([]);
    expect(profiles().filter((d) => d.includes(`-${worker!.child.pid}-`)), "the running worker's own profile").toHaveLength(1);
    await worker.stop("SIGTERM", 20_000);
  }, 300_000);
});

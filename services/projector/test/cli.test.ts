import { spawn } from "node:child_process";
import { readdirSync, readlinkSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createEvent, type TroupeEvent } from "@troupe/events";
import { freePort, publishEvent } from "@troupe/events/node";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openReadModels, registration, Script, spec, tempDbPath } from "./helpers.ts";

/** `troupe projector` as an operator runs it: metrics over HTTP, lag in the status row, clean stop on SIGTERM. */

const ROOT = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
let nats: TestNats;
beforeAll(async () => {
  nats = await startTestNats({ init: true });
});
afterAll(async () => {
  await nats?.stop();
});

describe("troupe projector (child process)", () => {
  it("serves lag and counters at GET /metrics, writes the lag row, and stops cleanly on SIGTERM", async () => {
    const port = await freePort();
    const path = tempDbPath();
    const child = spawn(process.execPath, ["bin/troupe.mjs", "projector", "--db", path], {
      cwd: ROOT, env: { ...process.env, ...nats.env(), TROUPE_PROJECTOR_PORT: String(port), TROUPE_LOG_LEVEL: "warn" }, stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    try {
      await waitFor(`projector /healthz (stderr: ${stderr})`, async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 30_000, 100);
      const s = new Script({ master: (await nats.js("master")).js, worker: (await nats.js("worker")).js }, Date.now() - 5000);
      await s.emit("worker.registered", registration("w1"));
      await s.emit("job.submitted", { jobId: "j1", spec });
      const rm = openReadModels(path);
      await waitFor("j1 in the read models", () => rm.getJob("j1"), 20_000);
      const status = rm.projectorLag()!;
      expect(status).toMatchObject({ mode: "live", checkpoints: { TROUPE_EVENTS: 2 } });
      expect(status.lagMs).toBeGreaterThanOrEqual(0);
      rm.close();
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/^troupe_projector_events_applied_total 2$/m);
      expect(metrics).toMatch(/^troupe_projector_checkpoint_sequence\{stream="TROUPE_EVENTS"\} 2$/m);
      expect(metrics).toMatch(/^troupe_projector_lag_seconds_count 2$/m);
      expect(metrics).toMatch(/^troupe_projector_lag_p99_seconds \d/m);
      expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited, stderr).toBe(0);
  }, 60_000);

  it("started before the streams exist, waits for them (503 on /healthz meanwhile), then follows them; it exited with 'stream not found'", async () => {
    const bare = await startTestNats();
    const port = await freePort();
    const path = tempDbPath();
    const child = spawn(process.execPath, ["bin/troupe.mjs", "projector", "--db", path], {
      cwd: ROOT, env: { ...process.env, ...bare.env(), TROUPE_PROJECTOR_PORT: String(port), TROUPE_LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    for (const out of [child.stdout, child.stderr]) out.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    try {
      await waitFor("the projector to say what it waits for", () => /streams TROUPE_EVENTS, TROUPE_HEARTBEATS not found: waiting for `troupe init` or a master to create them/.test(stderr), 30_000, 100);
      const waiting = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect([waiting.status, await waiting.text()]).toEqual([503, "waiting for the streams (troupe init)\n"]);
      expect(child.exitCode).toBeNull();
      await bare.init();
      await waitFor(`projector /healthz (stderr: ${stderr})`, async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 30_000, 100);
      const s = new Script({ master: (await bare.js("master")).js, worker: (await bare.js("worker")).js }, Date.now() - 5000);
      await s.emit("job.submitted", { jobId: "j-late", spec });
      const rm = openReadModels(path);
      await waitFor("j-late in the read models", () => rm.getJob("j-late"), 20_000);
      rm.close();
      child.kill("SIGTERM");
      expect(await exited, stderr).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      await bare.stop();
    }
  }, 60_000);

  it("refuses to start a second projector on a database another one writes (exit 1, names the holder)", async () => {
    const path = tempDbPath();
    const start = async () => {
      const port = await freePort();
      const child = spawn(process.execPath, ["bin/troupe.mjs", "projector", "--db", path], {
        cwd: ROOT, env: { ...process.env, ...nats.env(), TROUPE_PROJECTOR_PORT: String(port), TROUPE_LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      const exited = new Promise<number | null>((r) => child.on("exit", r));
      return { child, port, exited, output: () => output };
    };
    const first = await start();
    try {
      await waitFor(`first projector /healthz (${first.output()})`, async () => (await fetch(`http://127.0.0.1:${first.port}/healthz`)).ok, 30_000, 100);
      const second = await start();
      expect(await second.exited, second.output()).toBe(1);
      expect(second.output()).toMatch(new RegExp(`another projector writes .*readmodels.sqlite \\(pid ${first.child.pid} on `));
      expect((await fetch(`http://127.0.0.1:${first.port}/healthz`)).ok).toBe(true);
    } finally {
      first.child.kill("SIGTERM");
    }
    expect(await first.exited, first.output()).toBe(0);
  }, 60_000);

  it("rejects a bad option value with exit code 2 and names it", async () => {
    const child = spawn(process.execPath, ["bin/troupe.mjs", "projector", "--batch", "0"], { cwd: ROOT, env: { ...process.env, ...nats.env() }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    expect(await new Promise((r) => child.on("exit", r))).toBe(2);
    expect(stderr).toMatch(/--batch: must be at least 1/);
  }, 30_000);
});

describe("troupe projector --rebuild stopped midway", () => {
  it("stops within seconds on SIGTERM even while the read waits on a NATS that went silent, exit 0, no unfinished file left", async () => {
    const own = await startTestNats({ init: true });
    const path = tempDbPath();
    const { js } = await own.js("master");
    // Enough events that the rebuild is still reading when the server is frozen below (batches of 1 slow it further).
    for (let i = 0; i < 30; i++) {
      await Promise.all(Array.from({ length: 1000 }, (_, k) => publishEvent(js, createEvent("job.submitted", { jobId: `j-${i}-${k}`, spec }, "master-test") as TroupeEvent)));
    }
    const child = spawn(process.execPath, ["bin/troupe.mjs", "projector", "--db", path, "--rebuild", "--rebuild-batch", "1"], {
      cwd: ROOT, env: { ...process.env, ...own.env(), TROUPE_PROJECTOR_PORT: "0", TROUPE_LOG_LEVEL: "info" }, stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    const server = own.server.process;
    try {
      await waitFor(`the rebuild reading (${out.slice(-2000)})`, () => out.includes("rebuilding from stream"), 60_000, 5);
      server.kill("SIGSTOP"); // nothing arrives any more, and nothing is answered
      expect(out, "the rebuild finished before the server was frozen: make it longer").not.toMatch(/rebuild swapped in/);
      const t0 = Date.now();
      child.kill("SIGTERM");
      const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("still running"), 30_000))]);
      expect(code, out.slice(-2000)).toBe(0);
      expect(out).toMatch(/rebuild stopped before it finished; the read models are unchanged/);
      console.log(`projector stopped ${Date.now() - t0} ms after SIGTERM mid-rebuild`);
      // The one generation left is the one the read models point at (the empty database made at start), not the unfinished rebuild.
      const current = basename(readlinkSync(path));
      expect(readdirSync(dirname(path)).filter((f) => f.includes(".g-") && f !== current).join(", "), `unfinished generation files\n${out.slice(-2000)}`).toBe("");
    } finally {
      server.kill("SIGCONT");
      if (child.exitCode === null) child.kill("SIGKILL");
      await own.stop();
    }
  }, 180_000);
});

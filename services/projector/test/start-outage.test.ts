import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/nats-core";
import { subjects } from "@troupe/events";
import { connectAs, freePort } from "@troupe/events/node";
import { startLatencyProxy, startTestNats, waitFor, type LatencyProxy, type TestNats } from "@troupe/tests/harness";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { prepareFile } from "../src/init-file.ts";
import { LiveProjector } from "../src/live.ts";
import { ProjectorMetrics } from "../src/metrics.ts";
import { waitForStreams } from "../src/wait-streams.ts";
import { openReadModels, quietLog, rebuildInto, registration, Script, spec, STREAMS, tempDbPath } from "./helpers.ts";

/**
 * A projector whose nats-server stalls or restarts just after it connected waits it out. A start-up soak
 * (2026-11-30) saw it exit 1 with a bare "timeout" every time — a one-second restart was enough: the check that the
 * streams exist, the start-up rebuild's look at where they end and the live fold's consumers were each asked once.
 */

const ROOT = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
let nats: TestNats;
let link: LatencyProxy;
const open: NatsConnection[] = [];
let thawTimer: NodeJS.Timeout | undefined;

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  link = await startLatencyProxy(nats.url);
  // Something in the log to fold.
  const s = new Script({ master: (await nats.js("master")).js, worker: (await nats.js("worker")).js }, Date.now() - 5000);
  await s.emit("worker.registered", registration("w-outage"));
  await s.emit("job.submitted", { jobId: "j-before", spec });
});

afterEach(async () => {
  clearTimeout(thawTimer);
  link.delayMs = 0;
  link.thaw();
  for (const nc of open.splice(0)) await nc.close();
});

afterAll(async () => {
  await link?.close();
  await nats?.stop();
});

/** A projector connection through the link (connected while the link is open). */
async function viaLink(name: string): Promise<NatsConnection> {
  const nc = await connectAs({ url: link.url, role: "projector", dataDir: nats.dataDir, name, env: {} });
  open.push(nc);
  return nc;
}

/** A logger whose lines a test can read. */
function capturedLog() {
  const lines: { msg?: string; err?: string }[] = [];
  return { lines, log: pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s) as { msg?: string; err?: string }) }) };
}

/** Freezes the link now and thaws it after `ms` (or at the test's end, so a failed test's thaw cannot cut the next one's stall short). */
function stall(ms: number): { started: number } {
  link.freeze();
  thawTimer = setTimeout(() => link.thaw(), ms);
  return { started: Date.now() };
}

/** `troupe projector` as a child on `path`; a wait passed through `orExit` fails at once, with its output, if it exits. */
function spawnProjector(path: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ["bin/troupe.mjs", "projector", "--db", path], {
    cwd: ROOT, env: { ...process.env, ...nats.env(), TROUPE_LOG_LEVEL: "info", ...env }, stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  for (const o of [child.stdout, child.stderr]) o.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on("exit", (code, sig) => r([code, sig])));
  const orExit = <T>(p: Promise<T>) => Promise.race([p, exited.then(([code]) => Promise.reject(new Error(`projector exited ${code}: ${out}`)))]);
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  return { child, output: () => out, exited, orExit, kill };
}

/** Stores a new job's submission and waits until the read models at `path` hold it. */
async function foldsNewJob(path: string, jobId: string, orExit: <T>(p: Promise<T>) => Promise<T>): Promise<void> {
  const s = new Script({ master: (await nats.js("master")).js, worker: (await nats.js("worker")).js }, Date.now());
  await s.emit("job.submitted", { jobId, spec });
  const rm = openReadModels(path);
  try {
    await orExit(waitFor(`${jobId} folded`, () => rm.getJob(jobId), 20_000));
  } finally {
    rm.close();
  }
}

describe("a projector started while JetStream does not answer", () => {
  it("waits for the streams' check, saying JetStream does not answer, then finds them", async () => {
    const nc = await viaLink("p-outage-wait");
    const { lines, log } = capturedLog();
    const { started } = stall(7000);
    expect(await waitForStreams(nc, STREAMS, log, new AbortController().signal)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(6000);
    expect(lines.some((l) => l.msg === "JetStream does not answer yet; waiting for it" && /timeout/i.test(l.err ?? ""))).toBe(true);
    expect(lines.at(-1)?.msg).toBe("the streams exist now; going on");
  }, 40_000);

  it("the live fold's start waits, then folds what is stored and what comes", async () => {
    const nc = await viaLink("p-outage-live");
    const { lines, log } = capturedLog();
    const path = tempDbPath();
    prepareFile(path, quietLog);
    const live = new LiveProjector({ nc, path, streams: STREAMS, durable: "p-outage-live", subjects, batchMax: 500, seriesRetentionMs: 24 * 3600_000, metrics: new ProjectorMetrics(), log });
    const rm = openReadModels(path);
    try {
      stall(7000);
      await live.start();
      expect(lines.some((l) => l.msg === "could not follow the streams yet" && /timeout/i.test(l.err ?? ""))).toBe(true);
      await waitFor("the stored job folded", () => rm.getJob("j-before"), 20_000);
      const s = new Script({ master: (await nats.js("master")).js, worker: (await nats.js("worker")).js }, Date.now());
      await s.emit("job.submitted", { jobId: "j-after-live", spec });
      await waitFor("a new job folded", () => rm.getJob("j-after-live"), 20_000);
    } finally {
      rm.close();
      await live.stop();
    }
  }, 60_000);

  it("a start-up rebuild waits to learn where the streams end", async () => {
    const nc = await viaLink("p-outage-rebuild");
    const { lines, log } = capturedLog();
    const path = tempDbPath();
    stall(7000);
    const r = await rebuildInto(nc, path, { log });
    expect(lines.some((l) => l.msg === "could not read where the streams end yet" && /timeout/i.test(l.err ?? ""))).toBe(true);
    expect(r.events).toBeGreaterThanOrEqual(2);
    const rm = openReadModels(path);
    try {
      expect(rm.getJob("j-before")).toBeTruthy();
    } finally {
      rm.close();
    }
  }, 60_000);

  it("a rebuild over a link slower than a consumer create's first timeout (1.5 s) finishes", async () => {
    const nc = await viaLink("p-slow-rebuild");
    const path = tempDbPath();
    link.delayMs = 1700;
    try {
      // Every create timed out on the client while the server made it, until the read gave up.
      const r = await rebuildInto(nc, path);
      expect(r.events).toBeGreaterThanOrEqual(2);
    } finally {
      link.delayMs = 0;
    }
  }, 120_000);

  // The two steps of `troupe projector`'s start that a stall hit in the soak: its first JetStream call (the check that
  // the streams exist) and the live fold's consumers. The link freezes at that very request.
  for (const [step, request] of [["its first JetStream call", "$JS.API.INFO"], ["the live fold's consumers", "$JS.API.CONSUMER"]] as const) {
    it(`troupe projector stalled at ${step} answers 503 on /healthz meanwhile, then follows (it exited 1 until 2026-11-30)`, async () => {
      const port = await freePort();
      const path = tempDbPath();
      link.freezeWhenClientSends(request);
      const p = spawnProjector(path, { NATS_URL: link.url, TROUPE_PROJECTOR_PORT: String(port) });
      try {
        await p.orExit(waitFor(`the link frozen at ${request}`, () => link.frozen, 30_000, 50));
        // Held there until the client's request timed out (5 s), and longer.
        await p.orExit(waitFor("a timeout logged", () => /timeout/.test(p.output()), 15_000, 100));
        const health = await fetch(`http://127.0.0.1:${port}/healthz`);
        expect(health.status).toBe(503);
        expect(await health.text()).toBe(request === "$JS.API.INFO" ? "waiting for JetStream to answer\n" : "starting to follow the streams\n");
        link.thaw();
        await p.orExit(waitFor("projector /healthz ok", async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 30_000, 100));
        await foldsNewJob(path, `j-after-${request.replace(/\W/g, "")}`, p.orExit);
        p.child.kill("SIGTERM");
        expect(await p.exited, p.output()).toEqual([0, null]);
      } finally {
        p.kill();
      }
    }, 90_000);
  }

  it("troupe projector given SIGTERM while no NATS server answers its first connect shuts down with exit 0 (it was killed by the signal)", async () => {
    const p = spawnProjector(tempDbPath(), { NATS_URL: `nats://127.0.0.1:${await freePort()}`, TROUPE_PROJECTOR_PORT: "0" });
    try {
      await waitFor("the projector trying to connect", () => /cannot connect to NATS at .*; trying again/.test(p.output()), 30_000, 50);
      p.child.kill("SIGTERM");
      expect(await p.exited, p.output()).toEqual([0, null]);
      expect(p.output()).toMatch(/shutting down while connecting to NATS/);
    } finally {
      p.kill();
    }
  }, 60_000);

  it("troupe projector answers 503 on /healthz while its reopen after a rebuild's swap waits for JetStream (it said ok), then follows the new file", async () => {
    const port = await freePort();
    const path = tempDbPath();
    const p = spawnProjector(path, { NATS_URL: link.url, TROUPE_PROJECTOR_PORT: String(port) });
    const healthz = async () => {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      return { status: r.status, text: await r.text() };
    };
    try {
      await p.orExit(waitFor("projector /healthz ok", async () => (await healthz()).status === 200, 30_000, 100));
      // A request only the reopen sends (after its stream reads; the running fold's pulls are $JS.API.CONSUMER.MSG.NEXT).
      link.freezeWhenClientSends("$JS.API.CONSUMER.DELETE");
      const direct = await nats.connect("projector", "test-replay");
      open.push(direct);
      await rebuildInto(direct, path);
      await p.orExit(waitFor("the reopen's consumer delete frozen", () => link.frozen, 30_000, 50));
      expect(await healthz()).toEqual({ status: 503, text: "reopening the read models a rebuild replaced\n" });
      link.thaw();
      await p.orExit(waitFor("projector /healthz ok again", async () => (await healthz()).status === 200, 30_000, 100));
      await foldsNewJob(path, "j-after-reopen", p.orExit);
      p.child.kill("SIGTERM");
      expect(await p.exited, p.output()).toEqual([0, null]);
    } finally {
      p.kill();
    }
  }, 90_000);
});

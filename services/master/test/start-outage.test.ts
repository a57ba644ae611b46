import type { NatsConnection } from "@nats-io/nats-core";
import { jetstream } from "@nats-io/jetstream";
import { connectAs, createLogger, freePort, storeNames } from "@troupe/events/node";
import { startLatencyProxy, startTestNats, waitFor, type LatencyProxy, type TestNats } from "@troupe/tests/harness";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { follow } from "../src/follow.ts";
import { MasterStartAborted, startMaster } from "../src/main.ts";
import { Master } from "../src/master.ts";
import { FAST, fastEnv, jobIdOf, masterIn, spawnChild, submit } from "./helpers.ts";

/**
 * A master starting while JetStream answers nothing for a few seconds (a loaded machine, a server just restarted)
 * waits it out, as its followers do after a reconnect. A chaos soak (2026-11-30, load average ~30 on two cores) saw a
 * master restarted after kill -9 exit with a bare "timeout" six seconds into its start: the first stream read and
 * consumer of its follower were asked once; so were its stores' check (`initStores`) and its snapshot's read (a
 * timeout there fell back to replaying the whole log).
 */

let nats: TestNats;
let link: LatencyProxy;
let nc: NatsConnection;
const log = createLogger("master", process.env.TROUPE_LOG_LEVEL ?? "silent");

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  link = await startLatencyProxy(nats.url);
  nc = await connectAs({ url: link.url, role: "master", dataDir: nats.dataDir, name: "m-start-outage", env: {} });
});

afterEach(() => {
  // A test that failed must not leave its stall or slow link to the next.
  link.delayMs = 0;
  link.thaw();
});

afterAll(async () => {
  await nc?.close();
  await link?.close();
  await nats?.stop();
});

describe("a follower started while JetStream does not answer", () => {
  it("waits until it answers, then hands over what is stored", async () => {
    // Something stored to read (the follower hands over bytes; it does not decode them).
    const seed = await nats.js("master");
    await seed.js.publish("troupe.evt.worker.w-start-outage.lost", "{}");

    const seen: number[] = [];
    link.freeze();
    const thaw = setTimeout(() => link.thaw(), 7000);
    const started = Date.now();
    const f = await follow(nc, jetstream(nc), { stream: storeNames("troupe").events, deliver: "all", onMessage: (m) => seen.push(m.seq), onCaughtUp: () => {}, log });
    clearTimeout(thaw);
    expect(Date.now() - started).toBeGreaterThanOrEqual(6000);
    await waitFor("the stored event handed over", () => seen.length > 0);
    await f.stop();
    expect(seen[0]).toBe(1);
  }, 40_000);
});

describe("a master started while JetStream does not answer", () => {
  /** A master's log lines; `onLine` sees each as it is written, before the master's next step. */
  const linesOf = (onLine: (l: { msg?: string; err?: string }) => void = () => {}) => {
    const lines: { msg?: string; err?: string }[] = [];
    const log = pino({ level: "info" }, { write: (s: string) => { const l = JSON.parse(s) as { msg?: string; err?: string }; lines.push(l); onLine(l); } });
    return { lines, log };
  };

  it("waits until the streams and stores can be checked, then leads", async () => {
    const own = await connectAs({ url: link.url, role: "master", dataDir: nats.dataDir, name: "m-start-outage-init", env: {} });
    const { lines, log } = linesOf();
    link.freeze();
    const thaw = setTimeout(() => link.thaw(), 7000);
    const started = Date.now();
    try {
      const port = await freePort();
      const starting = startMaster(own, { ...FAST, id: "m-start-outage-init" }, log, { http: { host: "127.0.0.1", port } });
      // Listening through the wait, and saying what it waits for (it listened only after it, a review).
      const health = await waitFor("/healthz answering", () => fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null), 5000, 50);
      expect([health.status, await health.text()]).toEqual([503, "waiting for JetStream to check the streams and stores\n"]);
      const m = await starting;
      expect(Date.now() - started).toBeGreaterThanOrEqual(6000);
      expect(lines.some((l) => l.msg === "could not create or check the streams and stores yet" && /timeout/i.test(l.err ?? ""))).toBe(true);
      await waitFor("the master leading", () => m.master.isLeader, 15_000);
      expect(m.master.ready).toBe(true);
      await m.stop();
    } finally {
      clearTimeout(thaw);
      link.thaw();
      await own.close();
    }
  }, 60_000);

  it("starts from its snapshot, waiting until the snapshot can be read", async () => {
    const first = await masterIn(nats, "m-start-outage-snap-a", { snapshotEvery: 1 });
    const ui = await nats.connect("ui");
    try {
      await waitFor("the first master leading", () => first.master.isLeader, 15_000);
      jobIdOf(await submit(ui, { url: "https://example.com/start-outage", browser: "chromium" }));
      await waitFor("a snapshot of everything folded", async () => {
        await first.master.snapshotNow();
        return first.master.counters.snapshotSeq === first.master.state.appliedSeq;
      });
    } finally {
      await first.stop();
      await ui.close();
    }
    const own = await connectAs({ url: link.url, role: "master", dataDir: nats.dataDir, name: "m-start-outage-snap-b", env: {} });
    const { lines, log } = linesOf();
    // Not through startMaster: its stores' check would wait out the freeze before the snapshot is read.
    const m = new Master(own, { ...FAST, id: "m-start-outage-snap-b", snapshotEvery: 1 }, log);
    link.freeze();
    const thaw = setTimeout(() => link.thaw(), 7000);
    try {
      await m.start();
      expect(lines.some((l) => l.msg === "could not read the state snapshot yet" && /timeout/i.test(l.err ?? ""))).toBe(true);
      // It used to fall back to replaying the whole log, however long.
      expect(m.counters.startSnapshotSeq).toBeGreaterThan(0);
      expect(m.counters.startSnapshotSeq).toBe(first.master.counters.snapshotSeq);
    } finally {
      clearTimeout(thaw);
      link.thaw();
      await m.stop();
      await own.close();
    }
  }, 60_000);
});

describe("a master stopped while its start waits for JetStream", () => {
  /** A logger whose lines a test can read, and a promise of the first line matching `msg`. */
  const watchedLog = () => {
    const lines: { msg?: string }[] = [];
    const waiters: { re: RegExp; resolve: () => void }[] = [];
    const log = pino({ level: "info" }, { write: (s: string) => {
      const l = JSON.parse(s) as { msg?: string };
      lines.push(l);
      for (const w of waiters.filter((x) => x.re.test(l.msg ?? ""))) w.resolve();
    } });
    const logged = (re: RegExp) => new Promise<void>((resolve) => (lines.some((l) => re.test(l.msg ?? "")) ? resolve() : waiters.push({ re, resolve })));
    return { lines, log, logged };
  };

  it("Master.stop() ends its followers' wait: start() returns, and nothing is followed (it waited, then followed, for ever)", async () => {
    const own = await connectAs({ url: link.url, role: "master", dataDir: nats.dataDir, name: "m-stop-in-start", env: {} });
    const { lines, log, logged } = watchedLog();
    // Not through startMaster: its stores' check would be what waits.
    const m = new Master(own, { ...FAST, id: "m-stop-in-start" }, log);
    link.freeze();
    try {
      const starting = m.start();
      await logged(/^could not (reach JetStream|read the stream's state) yet$/);
      await m.stop();
      // Still frozen: before, the start waited for JetStream as long as it did not answer.
      await starting;
      expect(m.ready).toBe(false);
      expect(lines.filter((l) => l.msg === "state rebuilt from the log")).toEqual([]);
    } finally {
      link.thaw();
      await m.stop();
      await own.close();
    }
  }, 60_000);

  it.each([
    ["its followers' first read", {}],
    ["its snapshot's read", { snapshotEvery: 1000 }],
  ])("Master.stop() while a start-up request is on its way (%s) ends start() at once, not at that request's timeout (5 s)", async (_what, over) => {
    const own = await connectAs({ url: link.url, role: "master", dataDir: nats.dataDir, name: "m-stop-in-request", env: {} });
    const { lines, log } = watchedLog();
    const m = new Master(own, { ...FAST, id: "m-stop-in-request", ...over }, log);
    // Frozen by the start's first JetStream request itself: it is on its way, with nothing answered yet.
    link.freezeWhenClientSends("$JS.API.");
    try {
      const starting = m.start();
      await waitFor("the start's first request sent", () => link.frozen, 10_000, 5);
      const stopAt = performance.now();
      await m.stop();
      await starting;
      // It waited for the request's 5 s timeout (a `docker stop` grace is 10 s; a consumer create's may be 12 s).
      expect(performance.now() - stopAt).toBeLessThan(2500);
      expect(link.frozen).toBe(true);
      expect(m.ready).toBe(false);
      expect(lines.filter((l) => l.msg === "state rebuilt from the log")).toEqual([]);
      // Stopped, it does not say it will replay the log (a review).
      expect(lines.filter((l) => /replaying the whole log/.test(l.msg ?? ""))).toEqual([]);
    } finally {
      link.thaw();
      await m.stop();
      await own.close();
    }
  }, 60_000);

  it("startMaster's signal ends the stores' check wait with MasterStartAborted, and stops what it started", async () => {
    const own = await connectAs({ url: link.url, role: "master", dataDir: nats.dataDir, name: "m-abort-in-start", env: {} });
    const { log, logged } = watchedLog();
    const abort = new AbortController();
    link.freeze();
    try {
      const port = await freePort();
      const starting = startMaster(own, { ...FAST, id: "m-abort-in-start" }, log, { http: { host: "127.0.0.1", port }, signal: abort.signal });
      await logged(/^could not create or check the streams and stores yet$/);
      abort.abort();
      await expect(starting).rejects.toBeInstanceOf(MasterStartAborted);
      await expect(starting).rejects.toThrow("the master's start was stopped while waiting for JetStream to check the streams and stores");
      // Its /healthz is closed with it.
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    } finally {
      link.thaw();
      await own.close();
    }
  }, 60_000);

  it("troupe master given SIGTERM while it waits for JetStream shuts down with exit 0 (it was killed by the signal)", async () => {
    // A stream call, which comes after JetStream's first answer: "$JS.API" alone matched the first request, sent in one
    // chunk with the client's CONNECT, and the connect itself timed out.
    link.freezeWhenClientSends("$JS.API.STREAM.");
    const child = spawnChild(["bin/troupe.mjs", "master"], { ...nats.env(), ...fastEnv("m-sigterm-in-start"), NATS_URL: link.url, TROUPE_LOG_LEVEL: "info" });
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.proc.once("exit", (code, sig) => r([code, sig])));
    try {
      await waitFor("the master waiting for JetStream", () => /could not create or check the streams and stores yet/.test(child.output()), 30_000, 50).catch((e: Error) => Promise.reject(new Error(`${e.message}: ${child.output()}`)));
      child.proc.kill("SIGTERM");
      expect(await exited, child.output()).toEqual([0, null]);
      expect(child.output()).toMatch(/shutting down: the master's start was stopped while waiting for JetStream to check the streams and stores/);
      expect(child.output()).not.toMatch(/still running 10 s after/);
    } finally {
      link.thaw();
      await child.kill9();
    }
  }, 60_000);
});

describe("troupe master given SIGTERM while a start-up request is on its way", () => {
  it("shuts down with exit 0 at once, not at the request's timeout (5 s) and a 5 s drain", async () => {
    link.freezeWhenClientSends("$JS.API.STREAM.");
    const child = spawnChild(["bin/troupe.mjs", "master"], { ...nats.env(), ...fastEnv("m-sigterm-in-request"), NATS_URL: link.url, TROUPE_LOG_LEVEL: "info" });
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.proc.once("exit", (code, sig) => r([code, sig])));
    try {
      // Frozen by the stores' check's first stream request: it is on its way, nothing answered.
      await waitFor("the stores' check under way", () => link.frozen, 30_000, 5);
      const killedAt = performance.now();
      child.proc.kill("SIGTERM");
      expect(await exited, child.output()).toEqual([0, null]);
      // Now: the start let go at once, then at most a 1 s drain of a link that does not answer.
      expect(performance.now() - killedAt, child.output()).toBeLessThan(4000);
      expect(child.output()).toMatch(/shutting down: the master's start was stopped while waiting for JetStream to check the streams and stores/);
      expect(child.output()).not.toMatch(/could not create or check the streams and stores yet/);
    } finally {
      link.thaw();
      await child.kill9();
    }
  }, 60_000);
});

describe("troupe master given SIGTERM while no NATS server answers its first connect", () => {
  it("shuts down with exit 0 (it was killed by the signal)", async () => {
    const child = spawnChild(["bin/troupe.mjs", "master"], { ...nats.env(), ...fastEnv("m-sigterm-connecting"), NATS_URL: `nats://127.0.0.1:${await freePort()}`, TROUPE_LOG_LEVEL: "info" });
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.proc.once("exit", (code, sig) => r([code, sig])));
    try {
      await waitFor("the master trying to connect", () => /cannot connect to NATS at .*; trying again/.test(child.output()), 30_000, 50);
      child.proc.kill("SIGTERM");
      expect(await exited, child.output()).toEqual([0, null]);
      expect(child.output()).toMatch(/shutting down while connecting to NATS/);
    } finally {
      await child.kill9();
    }
  }, 60_000);
});

describe("troupe master given SIGTERM while a first connect attempt is on its way", () => {
  it("stops trying at once and exits 0 once the attempt has timed out (its socket kept the process to the 10 s watchdog)", async () => {
    // A port that takes the connection and never says a word (a stalled server, a proxy whose backend is gone).
    const held = new Set<Socket>();
    const silent = createServer((sock) => held.add(sock));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const child = spawnChild(["bin/troupe.mjs", "master"], { ...nats.env(), ...fastEnv("m-sigterm-in-connect"), NATS_URL: `nats://127.0.0.1:${(silent.address() as AddressInfo).port}`, TROUPE_LOG_LEVEL: "info" });
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.proc.once("exit", (code, sig) => r([code, sig])));
    try {
      await waitFor("the first connect attempt under way", () => held.size > 0, 30_000, 5);
      const killedAt = performance.now();
      child.proc.kill("SIGTERM");
      // The attempt is let go at once (it was waited for, 5 s)...
      await waitFor("the master shutting down", () => /shutting down while connecting to NATS/.test(child.output()), 2500, 10).catch((e: Error) => Promise.reject(new Error(`${e.message}: ${child.output()}`)));
      // ...and nats.js cannot be told to stop it: the process ends when it times out and closes its socket (patched).
      expect(await exited, child.output()).toEqual([0, null]);
      expect(performance.now() - killedAt, child.output()).toBeLessThan(8000);
      expect(child.output()).not.toMatch(/still running 10 s after/);
    } finally {
      await child.kill9();
      for (const sock of held) sock.destroy();
      await new Promise((r) => silent.close(r));
    }
  }, 60_000);
});

describe("a master whose JetStream answers slower than a consumer create's first timeout (1.5 s)", () => {
  it("finishes its start (every create timed out on the client while the server made it, for ever)", async () => {
    const own = await connectAs({ url: link.url, role: "master", dataDir: nats.dataDir, name: "m-start-slow-link", env: {} });
    const lines: { msg?: string; err?: string }[] = [];
    const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s) as { msg?: string; err?: string }) });
    // Not through startMaster: its stores' check would add a dozen slow round trips and test nothing more.
    const m = new Master(own, { ...FAST, id: "m-start-slow-link" }, log);
    link.delayMs = 1700;
    try {
      await m.start();
      expect(m.ready).toBe(true);
      // Its creates were given three times what the stream's state took to come (1.5 s at least): none timed out.
      expect(lines.filter((l) => /could not follow the stream/.test(l.msg ?? ""))).toEqual([]);
    } finally {
      link.delayMs = 0;
      await m.stop();
      await own.close();
    }
  }, 90_000);
});

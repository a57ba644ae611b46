import type { NatsConnection } from "@nats-io/nats-core";
import { jetstream } from "@nats-io/jetstream";
import { connectAs, createLogger, freePort, storeNames } from "@troupe/events/node";
import { startLatencyProxy, startTestNats, waitFor, type LatencyProxy, type TestNats } from "@troupe/tests/harness";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { follow } from "../src/follow.ts";
import { startMaster } from "../src/main.ts";
import { Master } from "../src/master.ts";
import { FAST, jobIdOf, masterIn, submit } from "./helpers.ts";

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

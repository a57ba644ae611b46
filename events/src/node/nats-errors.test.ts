import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { startLatencyProxy, startTestNats, type LatencyProxy, type TestNats } from "@troupe/tests/harness";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connectAs } from "./connect.ts";
import { isNatsOutage, mayHaveBeenStored } from "./retry.ts";

/**
 * isNatsOutage and mayHaveBeenStored read nats.js's error messages (it has error classes, but a JetStream publish's
 * "no responders" and an API timeout come as several of them across the client's versions). What nats.js 3.4 gives for
 * each case, against a real server, pins them: a client upgrade that changes a message fails here, not in production
 * (where a timeout taken for a refusal would lose an append's outcome, and a refusal taken for an outage would be
 * waited out for ever).
 */

let nats: TestNats;
let link: LatencyProxy;
let nc: NatsConnection;
const open: NatsConnection[] = [];

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  link = await startLatencyProxy(nats.url);
  nc = await nats.connect("master", "nats-errors");
}, 60_000);
afterEach(async () => {
  link.thaw();
  for (const c of open.splice(0)) await c.close().catch(() => undefined);
});
afterAll(async () => {
  await link?.close();
  await nats?.stop();
});

/** The error `p` rejects with. */
async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("it did not fail");
}

const viaLink = async () => {
  const c = await connectAs({ url: link.url, role: "master", dataDir: nats.dataDir, name: "nats-errors-link", env: {} });
  open.push(c);
  return c;
};

describe("nats.js 3.4's errors, as the retry rules read them", () => {
  it("an append JetStream does not acknowledge in time: an outage, and it may have been stored", async () => {
    const c = await viaLink();
    link.freeze();
    const e = await errorOf(jetstream(c, { timeout: 500 }).publish("troupe.evt.worker.w-errors.lost", "{}"));
    expect([e.message, isNatsOutage(e), mayHaveBeenStored(e)]).toEqual([expect.stringMatching(/timeout/i), true, true]);
  });

  it("an append whose connection is closed under it: an outage, and it may have been stored", async () => {
    const c = await viaLink();
    link.freeze();
    const pending = errorOf(jetstream(c, { timeout: 10_000 }).publish("troupe.evt.worker.w-errors.lost", "{}"));
    await c.close();
    const e = await pending;
    expect([e.message, isNatsOutage(e), mayHaveBeenStored(e)]).toEqual([expect.any(String), true, true]);
  });

  it("an append the stream refuses (a wrong expected last sequence): neither an outage nor maybe stored", async () => {
    const e = await errorOf(jetstream(nc).publish("troupe.evt.worker.w-errors.lost", "{}", { expect: { lastSequence: 999_999 } }));
    expect([e.message, isNatsOutage(e), mayHaveBeenStored(e)]).toEqual([expect.stringMatching(/wrong last sequence/i), false, false]);
  });

  it("an API call about a stream that does not exist: not an outage", async () => {
    const e = await errorOf((await jetstreamManager(nc)).streams.info("TROUPE_NO_SUCH_STREAM"));
    expect([e.message, isNatsOutage(e)]).toEqual([expect.stringMatching(/stream not found/i), false]);
  });

  it("a request nobody listens to: an outage that was not stored; one nobody answers in time: an outage", async () => {
    // What the master asks workers (the subjects its credentials may publish to).
    const none = await errorOf(nc.request("troupe.worker.w-errors-none.assign", "x", { timeout: 2000 }));
    expect([none.message, isNatsOutage(none), mayHaveBeenStored(none)]).toEqual([expect.stringMatching(/no responders/i), true, false]);
    const worker = await nats.connect("worker", "nats-errors-worker");
    open.push(worker);
    const sub = worker.subscribe("troupe.worker.w-errors-mute.assign");
    await worker.flush();
    try {
      const late = await errorOf(nc.request("troupe.worker.w-errors-mute.assign", "x", { timeout: 200 }));
      expect([late.message, isNatsOutage(late)]).toEqual([expect.stringMatching(/timeout/i), true]);
    } finally {
      sub.unsubscribe();
    }
  });

  // nats.js 3.4 words the "no responders" of a JetStream publish as "jetstream is not enabled".
  it("an append to a subject no stream takes (a stream's leader being elected looks the same): an outage that was not stored", async () => {
    const jsm = await jetstreamManager(nc);
    const cfg = (await jsm.streams.info("TROUPE_EVENTS")).config;
    await jsm.streams.update("TROUPE_EVENTS", { ...cfg, subjects: ["troupe.evt.job.>"] });
    try {
      const e = await errorOf(jetstream(nc).publish("troupe.evt.worker.w-errors.lost", "{}"));
      expect([e.message, isNatsOutage(e), mayHaveBeenStored(e)]).toEqual(["jetstream is not enabled", true, false]);
    } finally {
      await jsm.streams.update("TROUPE_EVENTS", cfg);
    }
  });
});

import type { NatsConnection } from "@nats-io/nats-core";
import { jetstream } from "@nats-io/jetstream";
import { connectAs, createLogger, storeNames } from "@troupe/events/node";
import { startLatencyProxy, startTestNats, waitFor, type LatencyProxy, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { follow } from "../src/follow.ts";

/**
 * A master starting while JetStream answers nothing for a few seconds (a loaded machine, a server just restarted)
 * waits it out, as its followers do after a reconnect. A chaos soak (2026-11-30, load average ~30 on two cores) saw a
 * master restarted after kill -9 exit with a bare "timeout" six seconds into its start: the first stream read and
 * consumer of its follower were asked once.
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

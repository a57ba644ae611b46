import { jetstreamManager } from "@nats-io/jetstream";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readStreamPush } from "../src/push-read.ts";

/** The rebuild's reader across a nats-server restart: its own server, since the test restarts it. */

let nats: TestNats;
const N = 3000;
const body = new TextEncoder().encode(JSON.stringify({ pad: "x".repeat(2000) }));
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  const { js } = await nats.js("worker");
  const acks = [];
  for (let i = 0; i < N; i++) acks.push(js.publish(`troupe.hb.w${i % 7}`, body));
  await Promise.all(acks);
});
afterAll(async () => {
  await nats?.stop();
});

describe("readStreamPush across a nats-server restart", () => {
  it("starts a new consumer at the next sequence once the connection is back, and hands over every message exactly once", async () => {
    const nc = await nats.connect("projector");
    const admin = await jetstreamManager(await nats.connect("master"));
    const seen: number[] = [];
    const restarts: string[] = [];
    let full = false;
    // The default 5 s heartbeat: the reconnect itself, not the watchdog (15 s), must start the new consumer.
    const r = readStreamPush({ nc, stream: "TROUPE_HEARTBEATS", first: 1, last: N, full: () => full, onRestart: (why) => restarts.push(why), onMessage: (_s, _d, seq) => {
      seen.push(seq);
      if (seen.length === 300) full = true;
    } });
    // Held mid-read: the server has stopped at a known place.
    await waitFor("the rebuild consumer stalled on flow control", async () => {
      const c = (await admin.consumers.list("TROUPE_HEARTBEATS").next()).find((c) => c.name.startsWith("rebuild_"));
      return c && c.delivered.stream_seq === seen[seen.length - 1] && c.num_pending > 0;
    });
    const stalledAt = seen.length;
    expect(stalledAt).toBeLessThan(N);

    // The ephemeral, memory-stored consumer does not survive the restart.
    await nats.restart();
    full = false;
    r.resume();
    await r.done;
    expect(seen).toEqual(Array.from({ length: N }, (_, i) => 1 + i));
    expect(restarts.length).toBeGreaterThanOrEqual(1);
    expect(restarts[0]).toMatch(/reconnected/);
    // No consumer of the read is left behind on the restarted server (asked once this connection is back too; an orphan would stay for 30 s).
    const left = await waitFor("the consumer list from the restarted server", async () => (await admin.consumers.list("TROUPE_HEARTBEATS").next()).filter((c) => c.name.startsWith("rebuild_")));
    expect(left).toEqual([]);
  });

  it("keeps trying to make a new consumer while the server is down, and goes on once it is back", async () => {
    const nc = await nats.connect("projector");
    const admin = await jetstreamManager(await nats.connect("master"));
    const seen: number[] = [];
    const restarts: string[] = [];
    let full = false;
    // A short heartbeat: the watchdog notices the silence while the server is still down.
    const r = readStreamPush({ nc, stream: "TROUPE_HEARTBEATS", first: 1, last: N, idleHeartbeatMs: 200, full: () => full, onRestart: (why) => restarts.push(why), onMessage: (_s, _d, seq) => {
      seen.push(seq);
      if (seen.length === 100) full = true;
    } });
    await waitFor("the rebuild consumer stalled on flow control", async () => {
      const c = (await admin.consumers.list("TROUPE_HEARTBEATS").next()).find((c) => c.name.startsWith("rebuild_"));
      return c && c.delivered.stream_seq === seen[seen.length - 1] && c.num_pending > 0;
    });
    await nats.server.stop();
    // A try to make the new consumer has failed while the server was away; the read is still on.
    await waitFor("a failed try to make a consumer", () => restarts.some((w) => /trying again/.test(w)), 30_000);
    full = false;
    r.resume();
    await nats.restart();
    await r.done;
    expect(seen).toEqual(Array.from({ length: N }, (_, i) => 1 + i));
  });
});

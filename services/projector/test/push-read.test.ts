import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAckReply, readStreamPush } from "../src/push-read.ts";

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

/** Waits until the read's consumer has stopped on flow control right after the last message handed over (its idle heartbeat names the flow control it waits for); returns the stream's consumers. */
function stalled(admin: JetStreamManager, seen: number[]) {
  return waitFor("the rebuild consumer stalled on flow control", async () => {
    const list = await admin.consumers.list("TROUPE_HEARTBEATS").next();
    const c = list.find((c) => c.name.startsWith("rebuild_"));
    return c && c.delivered.stream_seq === seen[seen.length - 1] && c.num_pending > 0 ? list : null;
  });
}

describe("parseAckReply", () => {
  it("reads stream sequence, delivery sequence, publish time and pending from both reply forms", () => {
    const ns = 1_764_000_000_123_456_789n;
    expect(parseAckReply(`$JS.ACK.TROUPE_EVENTS.rebuild_x.1.42.7.${ns}.9`)).toEqual({ streamSeq: 42, consumerSeq: 7, publishedMs: 1_764_000_000_123, pending: 9 });
    expect(parseAckReply(`$JS.ACK.hub.ACCHASH.TROUPE_EVENTS.rebuild_x.1.42.7.${ns}.0.tok`)).toEqual({ streamSeq: 42, consumerSeq: 7, publishedMs: 1_764_000_000_123, pending: 0 });
    expect(parseAckReply(`$JS.ACK.hub.ACCHASH.TROUPE_EVENTS.rebuild_x.1.42.7.${ns}.0`)).toMatchObject({ streamSeq: 42, pending: 0 });
  });

  it("refuses what is not a delivery's reply subject", () => {
    for (const r of ["", "_INBOX.abc", "$JS.FC.TROUPE_EVENTS.x.y", "$JS.ACK.S.C.1.2.3", "$JS.ACK.S.C.1.x.3.4.5", "$JS.ACK.S.C.1.0.3.4.5", "$JS.ACK.S.C.1.2..4.5"]) {
      expect(parseAckReply(r), r).toBeNull();
    }
  });
});

describe("readStreamPush", () => {
  it("hands over every message from the first to the last sequence once, in order, with its subject", async () => {
    const nc = await nats.connect("projector");
    const seen: number[] = [];
    const subjects = new Set<string>();
    const r = readStreamPush({ nc, stream: "TROUPE_HEARTBEATS", first: 101, last: 2500, full: () => false, onMessage: (s, data, seq) => {
      seen.push(seq);
      subjects.add(s);
      expect(data.length).toBe(body.length);
    } });
    await r.done;
    expect(seen).toEqual(Array.from({ length: 2400 }, (_, i) => 101 + i));
    expect([...subjects].sort()).toEqual(Array.from({ length: 7 }, (_, i) => `troupe.hb.w${i}`).sort());
  });

  it("stops at the until time", async () => {
    const nc = await nats.connect("projector");
    const jsm = await jetstreamManager(nc);
    const m = await jsm.streams.getMessage("TROUPE_HEARTBEATS", { seq: 1000 });
    const seen: number[] = [];
    await readStreamPush({ nc, stream: "TROUPE_HEARTBEATS", first: 1, last: N, untilMs: m!.time.getTime(), full: () => false, onMessage: (_s, _d, seq, ms) => {
      expect(ms).toBeLessThanOrEqual(m!.time.getTime());
      seen.push(seq);
    } }).done;
    expect(seen.length).toBeGreaterThanOrEqual(1000);
    expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => 1 + i));
  });

  it("holds flow control while full, so the server stops; after its consumer is deleted it starts a new one at the next sequence and loses nothing", async () => {
    const nc = await nats.connect("projector");
    const admin = await jetstreamManager((await nats.js("master")).nc);
    const seen: number[] = [];
    let full = false;
    const r = readStreamPush({ nc, stream: "TROUPE_HEARTBEATS", first: 1, last: N, idleHeartbeatMs: 200, full: () => full, onMessage: (_s, _d, seq) => {
      seen.push(seq);
      if (seen.length === 300) full = true;
    } });
    const consumers = await stalled(admin, seen);
    const stalledAt = seen.length;
    expect(stalledAt).toBeGreaterThanOrEqual(300);
    expect(stalledAt).toBeLessThan(N);
    for (const c of consumers) await admin.consumers.delete("TROUPE_HEARTBEATS", c.name);
    full = false;
    r.resume();
    await r.done;
    expect(seen).toEqual(Array.from({ length: N }, (_, i) => 1 + i));
    // The replacement was deleted at the end too.
    expect((await admin.consumers.list("TROUPE_HEARTBEATS").next()).filter((c) => c.name.startsWith("rebuild_"))).toEqual([]);
  });
});

describe("readStreamPush when the messages it was sent for are gone", () => {
  it("finishes once the server says nothing is left, instead of waiting for a sequence that will never come", async () => {
    const nc = await nats.connect("projector");
    const seen: number[] = [];
    // As if messages N+1 to N+500 had been removed after the rebuild asked for the stream's bounds: nothing arrives at all.
    await readStreamPush({ nc, stream: "TROUPE_HEARTBEATS", first: N + 1, last: N + 500, idleHeartbeatMs: 200, full: () => false, onMessage: (_s, _d, seq) => void seen.push(seq) }).done;
    expect(seen).toEqual([]);
  });
});

describe("a rebuild read whose writer thread dies while the read waits for room", () => {
  it("goes on and fails with the writer's error instead of holding its flow control for ever", async () => {
    const { mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { subjects } = await import("@troupe/events");
    const { BuildWriter } = await import("../src/build-writer.ts");
    const { buildThreadEntry } = await import("../src/build-thread-bundle.ts");
    const file = join(mkdtempSync(join(tmpdir(), "troupe-dies-")), "rm.sqlite");
    // Room for one body only: the read holds its flow control after the first batch.
    const writer = new BuildWriter(await buildThreadEntry(), { file, prefix: subjects.prefix, seriesRetentionMs: 3600_000, clockMs: null }, () => undefined, 1);
    const packer = writer.packer("TROUPE_HEARTBEATS", 100, false);
    const nc = await nats.connect("projector");
    let n = 0;
    let heldFull = false;
    const thread = (writer as unknown as { worker: { terminate(): Promise<number> } }).worker;
    const read = readStreamPush({ nc, stream: "TROUPE_HEARTBEATS", first: 1, last: N, full: () => writer.full, onMessage: (s, d, seq, ms) => {
      packer.add(s, d, seq, ms);
      n++;
      if (!packer.full) return;
      writer.post(packer);
      if (!heldFull) {
        // The first batch fills the room; the thread dies before it folds it.
        heldFull = writer.full;
        void thread.terminate();
      }
    } });
    writer.onRoom = () => read.resume();
    await expect(read.done).rejects.toThrow(/rebuild writer thread exited/);
    expect(heldFull).toBe(true);
    expect(n).toBeLessThan(N);
    await writer.abort();
  });
});

/** A read of the heartbeat stream that holds (full) after `fullAfter` messages, recording what it hands over and its restarts. */
async function heldRead(fullAfter: number, idleHeartbeatMs: number) {
  const nc = await nats.connect("projector");
  const admin = await jetstreamManager(await nats.connect("master"));
  const seen: number[] = [];
  const restarts: string[] = [];
  const hold = { full: false };
  const r = readStreamPush({ nc, stream: "TROUPE_HEARTBEATS", first: 1, last: N, idleHeartbeatMs, full: () => hold.full, onRestart: (why) => restarts.push(why), onMessage: (_s, _d, seq) => {
    seen.push(seq);
    if (seen.length === fullAfter) hold.full = true;
  } });
  return { admin, seen, restarts, hold, r };
}

// Last in this file: these restart the server (on the same store, so nothing after them would notice).
describe("readStreamPush across a nats-server restart", () => {
  it("starts a new consumer at the next sequence once the connection is back, and hands over every message exactly once", async () => {
    // A 5 s heartbeat: the reconnect itself, not the watchdog (15 s), must start the new consumer.
    const { admin, seen, restarts, hold, r } = await heldRead(300, 5000);
    // Held mid-read: the server has stopped at a known place.
    await stalled(admin, seen);
    const stalledAt = seen.length;
    expect(stalledAt).toBeLessThan(N);

    // The ephemeral, memory-stored consumer does not survive the restart.
    await nats.restart();
    hold.full = false;
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
    // A short heartbeat: the watchdog notices the silence while the server is still down.
    const { admin, seen, restarts, hold, r } = await heldRead(100, 200);
    await stalled(admin, seen);
    await nats.server.stop();
    // A try to make the new consumer has failed while the server was away; the read is still on.
    await waitFor("a failed try to make a consumer", () => restarts.some((w) => /trying again/.test(w)), 30_000);
    hold.full = false;
    r.resume();
    await nats.restart();
    await r.done;
    expect(seen).toEqual(Array.from({ length: N }, (_, i) => 1 + i));
  });
});

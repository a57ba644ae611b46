import type { NatsConnection } from "@nats-io/nats-core";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningMaster } from "../src/main.ts";
import { fakeWorker, masterIn, readLog } from "./helpers.ts";

/**
 * A master that starts from a snapshot taken at the log's end reads no event at start. Its place in the log is
 * the snapshot's: silence-based decisions waited for it to read up to the log's end, which it never "reached",
 * so on an idle pool a crashed worker was never declared lost (a review).
 */

let nats: TestNats;
let ui: NatsConnection;
const masters: RunningMaster[] = [];
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  ui = await nats.connect("ui");
});
afterAll(async () => {
  for (const m of masters) await m.stop().catch(() => undefined);
  await nats?.stop();
});

describe("a master started from a snapshot of the whole log", () => {
  it("declares a crashed worker lost on an idle pool", async () => {
    const w = await fakeWorker(nats, { id: "w-tail", slots: 1, heartbeatMs: 200 });
    const first = await masterIn(nats, "m-tail-a", { snapshotEvery: 1 });
    masters.push(first);
    await waitFor("the first master to lead and know the worker", () => first.master.isLeader && first.master.state.workers.get("w-tail")?.lifecycle === "online", 10_000);
    await first.master.snapshotNow();
    await first.stop();
    const second = await masterIn(nats, "m-tail-b", { snapshotEvery: 1 });
    masters.push(second);
    await waitFor("the second master to lead", () => second.master.isLeader, 10_000);
    expect(second.master.counters.startSnapshotSeq).toBeGreaterThan(0);
    expect(second.master.counters.startReplayedEvents).toBe(0);
    await w.stop(); // a crash: heartbeats stop, no deregistration
    await waitFor("worker.lost in the log", async () => (await readLog(ui)).some((l) => l.event.type === "worker.lost" && l.event.data.workerId === "w-tail"), 8000, 100);
  }, 40_000);
});

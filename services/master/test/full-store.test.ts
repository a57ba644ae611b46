import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningMaster } from "../src/main.ts";
import { lookupJob } from "../src/state.ts";
import type { FakeWorker } from "./fake-worker.ts";
import { fakeWorker, jobIdOf, masterIn, submit } from "./helpers.ts";

/**
 * JetStream's store full (its max_file_store reached, here 64 MB): every append is refused with "insufficient
 * resources" until space is freed. The master must wait that out, not retry refused assignments at once (a run
 * against a full store logged 21,769 refused assignments in 10 s), and go on by itself once space is back.
 */
let nats: TestNats;
let master: RunningMaster;
let worker: FakeWorker;
let ui: NatsConnection;

beforeAll(async () => {
  nats = await startTestNats({ init: true, maxStoreMb: 64 });
  // Long liveness and leader windows: the workers' heartbeats and the lease renewals fail too while the store is
  // full, and the window in which the master still leads and sees workers is where it used to spin.
  master = await masterIn(nats, "m-full", { heartbeatIntervalMs: 10_000, leaderLeaseMs: 20_000 });
  worker = await fakeWorker(nats, { id: "w-full", slots: 4 });
  ui = await nats.connect("ui");
  await waitFor("the worker registered", () => master.master.state.workers.get("w-full")?.lifecycle === "online");
}, 60_000);

afterAll(async () => {
  await worker?.stop({ deregister: true }).catch(() => {});
  await master?.stop();
  await nats?.stop();
});

describe("a full JetStream store", () => {
  it("makes the master wait between refused assignments instead of retrying at once, and the jobs run once space is freed", async () => {
    // Due once the store is full: filling it takes ~128 awaited 512 KB appends, which a loaded machine stretched past
    // 2.5 s (the jobs then ran before the store was full).
    const runAt = new Date(Date.now() + 8000).toISOString();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(jobIdOf(await submit(ui, { url: `https://example.com/full-${i}`, runAt })));

    // Fill the store with junk chunks (as any worker credential could), until JetStream refuses for want of room.
    const js = jetstream(await nats.connect("worker", "test-fill"));
    const junk = new Uint8Array(512 * 1024);
    let refused = "";
    for (let i = 0; i < 400 && !refused; i++) {
      try {
        await js.publish("$O.troupe-artifacts.C.junk-fill", junk);
      } catch (e) {
        refused = (e as Error).message;
      }
    }
    expect(refused).toMatch(/insufficient resources/);
    expect(ids.map((id) => lookupJob(master.master.state, id)?.status), "the jobs still wait for their runAt once the store is full").toEqual(["queued", "queued", "queued"]);

    // The jobs come due while the master still leads and sees the worker: its appends are refused.
    const before = master.master.counters.appendFailures;
    await waitFor("an assignment refused for want of room", () => master.master.counters.appendFailures > before, 15_000);
    const first = master.master.counters.appendFailures;
    // Two seconds of a full store: the master waits 100 ms, then twice as long each time, up to 2 s.
    await new Promise((r) => setTimeout(r, 2000));
    expect(master.master.counters.appendFailures - first).toBeLessThan(30);
    expect(ids.map((id) => lookupJob(master.master.state, id)?.status)).toEqual(["queued", "queued", "queued"]);

    // A full purge gives the room back (a filtered one does not, on nats-server 2.9.10).
    await (await jetstreamManager(await nats.connect("master", "test-free"))).streams.purge("OBJ_troupe-artifacts");
    await waitFor("every job completed once space is back", () => ids.every((id) => lookupJob(master.master.state, id)?.status === "completed"), 60_000, 100);
  }, 120_000);
});

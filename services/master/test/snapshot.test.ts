import { jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/nats-core";
import { freePort } from "@troupe/events/node";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningMaster } from "../src/main.ts";
import { readLatestSnapshot, SNAPSHOT_NAME } from "../src/snapshot-store.ts";
import { decodeSnapshot, encodeState } from "../src/snapshot.ts";
import { lookupJob, type MasterState } from "../src/state.ts";
import type { FakeWorker } from "./fake-worker.ts";
import { command, fakeWorker, jobIdOf, masterIn, readLog, submit } from "./helpers.ts";

let nats: TestNats;
let ui: NatsConnection;
const running: RunningMaster[] = [];
const workers: FakeWorker[] = [];
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  ui = await nats.connect("ui");
});
afterAll(async () => {
  for (const w of workers) await w.stop().catch(() => undefined);
  for (const m of running) await m.stop().catch(() => undefined);
  await nats?.stop();
});

async function master(id: string, snapshotEvery: number, port?: number): Promise<RunningMaster> {
  const m = await masterIn(nats, id, { snapshotEvery }, port);
  running.push(m);
  return m;
}
async function stop(m: RunningMaster) {
  await m.stop();
  running.splice(running.indexOf(m), 1);
}
/** The folded state in its JSON form (what a snapshot holds). */
const serialised = (s: MasterState) => JSON.parse(JSON.stringify(encodeState(s)));
/**
 * Waits until both masters have folded the whole log (the leader may still append) and read specs back,
 * then asserts their folded states are equal (on a timeout the assertion shows the difference).
 */
async function expectSameState(a: RunningMaster, b: RunningMaster) {
  await waitFor("same state", async () => {
    const seq = await lastSeq();
    return a.master.state.appliedSeq === seq && b.master.state.appliedSeq === seq
      && JSON.stringify(serialised(a.master.state)) === JSON.stringify(serialised(b.master.state));
  }, 15_000).catch(() => undefined);
  expect(serialised(a.master.state)).toEqual(serialised(b.master.state));
}
const lastSeq = async () => (await (await jetstreamManager(ui)).streams.info("TROUPE_EVENTS")).state.last_seq;

describe("master snapshots", () => {
  let snapshotSeq = 0;
  let fullReplay: RunningMaster;

  it("a fresh master loads the snapshot, folds only the events after it, and ends in the state of a full replay", async () => {
    // Snapshots as often as the state's size allows (every event is due; the size rule spaces them).
    const m1 = await master("m-snap-1", 1);
    await waitFor("m1 leads", () => m1.master.isLeader);
    // Completes /ok, fails /fail (retryable, so it goes dead after its attempts), never finishes /hang.
    const main = await fakeWorker(nats, {
      id: "w-main", slots: 3,
      behaviour: (j) => (j.spec.url?.includes("/fail") ? { kind: "fail", retryable: true } : j.spec.url?.includes("/hang") ? { kind: "hang" } : { kind: "complete" }),
    });
    const doomed = await fakeWorker(nats, { id: "w-doomed", slots: 1, browsers: ["firefox"], behaviour: () => ({ kind: "hang" }) });
    workers.push(main, doomed);
    const job = (m: RunningMaster, id: string) => lookupJob(m.master.state, id);

    // Jobs name their browser: one naming none would also go to w-doomed, which never finishes anything.
    const ok = [];
    for (let i = 0; i < 4; i++) ok.push(jobIdOf(await submit(ui, { url: `https://example.com/ok${i}`, browser: "chromium", ...(i % 2 ? { idempotencyKey: `k${i}` } : {}) })));
    const dead = jobIdOf(await submit(ui, { url: "https://example.com/fail", browser: "chromium", maxAttempts: 2 }));
    const queued = jobIdOf(await submit(ui, { url: "https://example.com/q", browser: "webkit", priority: 8 }));
    const cancelled = jobIdOf(await submit(ui, { url: "https://example.com/c", browser: "webkit" }));
    const orphan = jobIdOf(await submit(ui, { url: "https://example.com/orphan", browser: "firefox" }));
    for (const id of ok) await waitFor(`${id} completed`, () => job(m1, id)?.status === "completed");
    await waitFor("dead", () => job(m1, dead)?.status === "dead", 15_000);
    expect((await command(ui, "jobs.cancel", { jobId: cancelled })).ok).toBe(true);
    await waitFor("cancelled", () => job(m1, cancelled)?.status === "cancelled");
    await waitFor("orphan running", () => job(m1, orphan)?.status === "running");
    // w-doomed crashes: the master declares it lost and requeues its job (no firefox worker is left).
    await doomed.stop();
    await waitFor("w-doomed lost", () => m1.master.state.workers.get("w-doomed")?.lifecycle === "lost", 10_000);
    await waitFor("orphan requeued", () => job(m1, orphan)?.status === "requeued");
    expect(m1.master.counters.snapshotsWritten).toBeGreaterThan(0); // periodic ones, before the last
    await waitFor("a snapshot of everything folded", async () => {
      await m1.master.snapshotNow();
      return m1.master.counters.snapshotSeq === m1.master.state.appliedSeq;
    });
    await stop(m1); // waits for a snapshot being written
    snapshotSeq = m1.master.counters.snapshotSeq;
    expect(snapshotSeq).toBeGreaterThan(0);

    // More events after the snapshot, through a master that does not write one.
    const m2 = await master("m-snap-2", 1_000_000);
    expect(m2.master.counters.startSnapshotSeq).toBe(snapshotSeq);
    await waitFor("m2 leads", () => m2.master.isLeader);
    const later = jobIdOf(await submit(ui, { url: "https://example.com/ok-later", browser: "chromium", idempotencyKey: "later" }));
    const later2 = jobIdOf(await submit(ui, { url: "https://example.com/q2", browser: "webkit" }));
    await waitFor("later completed", () => job(m2, later)?.status === "completed");
    expect((await command(ui, "jobs.cancel", { jobId: later2 })).ok).toBe(true);
    await waitFor("later2 cancelled", () => job(m2, later2)?.status === "cancelled");
    // A redrive of the dead job: its spec comes back from the log (the snapshot has its compact form only).
    // The reply comes once the redrive is stored, maybe before m2 folds it: "dead" alone could still be the first verdict.
    const deadAttempt = job(m2, dead)?.attempt ?? 0;
    expect((await command(ui, "jobs.retry", { jobId: dead })).ok).toBe(true);
    await waitFor("dead again", () => (job(m2, dead)?.attempt ?? 0) > deadAttempt && job(m2, dead)?.status === "dead" && m2.master.state.needSpec.size === 0, 15_000);
    await main.stop({ deregister: true });
    workers.length = 0;
    await waitFor("w-main offline", () => m2.master.state.workers.get("w-main")?.lifecycle === "offline");
    await stop(m2);

    const total = await lastSeq();
    expect(total).toBeGreaterThan(snapshotSeq);
    const port = await freePort();
    const m3 = await master("m-snap-3", 1_000_000, port);
    expect(m3.master.counters.startSnapshotSeq).toBe(snapshotSeq);
    expect(m3.master.counters.startReplayedEvents).toBe(total - snapshotSeq);
    const metrics = await (await fetch(`http://127.0.0.1:${m3.metricsPort}/metrics`)).text();
    expect(metrics).toContain(`troupe_master_start_replayed_events ${total - snapshotSeq}`);
    expect(metrics).toContain(`troupe_master_start_snapshot_sequence ${snapshotSeq}`);
    expect(metrics).toContain(`troupe_master_snapshot_sequence ${snapshotSeq}`);
    await waitFor("m3 leads", () => m3.master.isLeader);

    fullReplay = await master("m-snap-full", 0);
    expect(fullReplay.master.counters.startSnapshotSeq).toBe(0);
    // The whole log (and whatever the leader appended meanwhile).
    expect(fullReplay.master.counters.startReplayedEvents).toBeGreaterThanOrEqual(total);
    // Same state, once both have folded the same log (the leader may still append, e.g. a verdict on w-doomed) and read specs back.
    await expectSameState(m3, fullReplay);
    // What the scenario left: every kind of job is there.
    const st = m3.master.state;
    expect([...ok, later].map((id) => lookupJob(st, id)?.status)).toEqual(Array(5).fill("completed"));
    expect(lookupJob(st, dead)?.status).toBe("dead");
    expect(lookupJob(st, cancelled)?.status).toBe("cancelled");
    expect(lookupJob(st, queued)?.status).toBe("queued");
    expect(lookupJob(st, orphan)?.status).toBe("requeued");
    // A key used before the restart still names its job (the id derives from the key; no map of keys is kept).
    expect(await submit(ui, { url: "https://example.com/ok-later", browser: "chromium", idempotencyKey: "later" })).toEqual({ ok: true, jobId: later, duplicate: true });
  });

  it("replays the whole log when the snapshot is ahead of the log (a reset stream)", async () => {
    const os = await new Objm(await nats.connect("master")).open("troupe-master-snapshots");
    const stored = (await readLatestSnapshot(os))?.bytes ?? null;
    expect(stored && decodeSnapshot(stored).ok).toBe(true);
    const ahead = JSON.parse(new TextDecoder().decode(stored as Uint8Array));
    ahead.state.appliedSeq = (await lastSeq()) + 1000;
    await os.putBlob({ name: SNAPSHOT_NAME }, new TextEncoder().encode(JSON.stringify(ahead)));
    const m = await master("m-snap-ahead", 1_000_000);
    expect(m.master.counters.startSnapshotSeq).toBe(0);
    expect(m.master.counters.startReplayedEvents).toBeGreaterThan(snapshotSeq);
    expect(m.master.state.appliedSeq).toBeLessThan(ahead.state.appliedSeq);
    await stop(m);
    await os.putBlob({ name: SNAPSHOT_NAME }, stored);
  });

  it("ignores a corrupt snapshot and replays the whole log", async () => {
    const os = await new Objm(await nats.connect("master")).open("troupe-master-snapshots");
    const stored = (await readLatestSnapshot(os))?.bytes ?? null;
    expect(stored && decodeSnapshot(stored).ok).toBe(true);
    await os.putBlob({ name: SNAPSHOT_NAME }, new TextEncoder().encode('{"format":"troupe-master-snapshot","version":1,"prefix":"troupe","state":{"jobs":'));
    const m = await master("m-snap-corrupt", 1_000_000);
    expect(m.master.counters.startSnapshotSeq).toBe(0);
    expect(m.master.counters.startReplayedEvents).toBeGreaterThanOrEqual(snapshotSeq);
    await expectSameState(m, fullReplay);
    expect((await readLog(ui)).length).toBe(await lastSeq());
  });
});

describe("snapshot storage", () => {
  it("keeps one snapshot object, and JetStream's count of used storage equals what the streams hold (overwriting one object leaked its size on nats-server 2.9.10)", async () => {
    for (const r of [...running]) await stop(r);
    const m = await master("m-snap-store", 1_000_000);
    await waitFor("m-snap-store leads", () => m.master.isLeader, 15_000);
    for (let i = 0; i < 200; i++) jobIdOf(await submit(ui, { url: `https://example.com/snap-store-${i}`, workerLabels: ["nobody-has-this"] }));
    await waitFor("the jobs folded", async () => m.master.state.appliedSeq === (await lastSeq()));
    const jsm = await jetstreamManager(await nats.connect("master", "test-snap-store"));
    // The server's count of used storage (what max_file_store is checked against) less what the streams hold: 0 on a
    // fresh server, more once something leaked (the tests above overwrite the snapshot object themselves).
    const used = async () => ((await (await fetch(`${nats.monitorUrl}/jsz`)).json()) as { storage: number }).storage;
    const leaked = async () => {
      let held = 0;
      for await (const si of jsm.streams.list()) held += si.state.bytes;
      return (await used()) - held;
    };
    const before = await leaked();
    for (let i = 0; i < 5; i++) await m.master.snapshotNow();
    const os = await new Objm(await nats.connect("master")).open("troupe-master-snapshots");
    const objects = (await os.list()).filter((o) => !o.deleted);
    expect(objects.map((o) => o.name)).toEqual([expect.stringMatching(/^state-\d+-[a-z0-9]+$/)]);
    const latest = await readLatestSnapshot(os);
    expect(latest && decodeSnapshot(latest.bytes).ok).toBe(true);
    expect(latest!.bytes.length).toBeGreaterThan(20_000);
    // Within a kilobyte: the leader renews its lease (a KV message a few bytes longer or shorter) between the two
    // reads of a measurement. Four leaked snapshots would be four times the snapshot's size (> 80 kB here).
    expect(Math.abs((await leaked()) - before)).toBeLessThan(1024);
    expect((await jsm.streams.info("OBJ_troupe-master-snapshots")).state.messages).toBe(objects[0]!.chunks + 1);
    await stop(m);
  });
});

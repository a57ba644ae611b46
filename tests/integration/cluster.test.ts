import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestCluster, waitFor, type TestCluster } from "../harness/index.ts";
import { FakeWorker } from "../../services/master/test/fake-worker.ts";
import { fastEnv, foldJobs, readLog, spawnChild, submit, type Child, type LoggedEvent } from "../../services/master/test/helpers.ts";
import { dumpTables, openReadModels, rebuildInto, startLive, tempDbPath } from "../../services/projector/test/helpers.ts";

/**
 * Troupe on a three-member nats-server cluster with replicated (R3) streams,
 * as `TROUPE_REPLICAS=3` sets them up: the member that leads the event log is
 * killed with SIGKILL in the middle of a run, with a master, workers and a live
 * projector on it; afterwards the read models are rebuilt on the two members
 * left and compared with the live ones. Replicated streams are where
 * nats-server 2.9.10 does not enforce the expected-last-subject-sequence
 * guard, so the master's epochs and the reducers' fencing carry the load.
 */

let cluster: TestCluster;
let ui: NatsConnection;
let master: Child | undefined;
const workers: FakeWorker[] = [];

beforeAll(async () => {
  cluster = await startTestCluster({ init: true });
  ui = await cluster.connect("ui");
}, 120_000);

afterAll(async () => {
  for (const w of workers) await w.stop().catch(() => undefined);
  await master?.stop();
  await cluster?.stop();
}, 60_000);

/** Submits with an idempotency key, trying again while the cluster moves its leaders (the key makes a retry safe). */
async function submitKeyed(i: number): Promise<string> {
  return waitFor(`job ${i} accepted`, async () => {
    const r = await submit(ui, { url: `https://example.com/cluster/${i}`, idempotencyKey: `cluster-${i}` }).catch(() => null);
    if (r && !r.ok && r.error.code !== "unavailable") throw new Error(`submit ${i} refused: ${r.error.message}`);
    return r?.ok ? r.jobId : null;
  }, 60_000, 100);
}

function exactlyOnce(log: LoggedEvent[], ids: string[]) {
  const { jobs } = foldJobs(log);
  for (const id of ids) {
    const j = jobs.get(id);
    expect(j?.status, `job ${id}`).toBe("completed");
    expect(j!.history.filter((h) => h.outcome === "completed").length, `completions of ${id}`).toBe(1);
  }
  const attempts = new Map<string, number>();
  for (const { event: e } of log) {
    if (e.type !== "job.assigned") continue;
    const k = `${e.data.jobId}#${e.data.attempt}`;
    attempts.set(k, (attempts.get(k) ?? 0) + 1);
  }
  expect([...attempts].filter(([, n]) => n > 1)).toEqual([]);
}

describe("on a three-member cluster with R3 streams", () => {
  it("creates every stream with three replicas", async () => {
    const jsm = await jetstreamManager(ui);
    for (const name of ["TROUPE_EVENTS", "TROUPE_HEARTBEATS"]) {
      const si = await jsm.streams.info(name);
      expect(si.config.num_replicas, name).toBe(3);
      expect(si.cluster?.replicas?.length, name).toBe(2);
    }
  });

  it("loses no job and runs none twice when the member leading the event log is killed mid-run; the read models equal a rebuild", async () => {
    const path = tempDbPath();
    const projector = await startLive(await cluster.connect("projector"), path);
    // Started as the README says (every URL, no TROUPE_REPLICAS): it used to cut the log back to one replica at start.
    master = spawnChild(["bin/troupe.mjs", "master"], { ...cluster.env(), ...fastEnv("m-cluster"), TROUPE_HEARTBEAT_MS: "2000", TROUPE_JOB_LEASE_MS: "10000", TROUPE_LOG_LEVEL: "info" });
    await waitFor("the master leading", () => master!.output().includes("became leader"), 60_000, 50);
    const stores = await jetstreamManager(ui);
    for (const name of ["TROUPE_EVENTS", "TROUPE_HEARTBEATS", "KV_troupe-master", "OBJ_troupe-artifacts", "OBJ_troupe-master-snapshots"]) {
      expect((await stores.streams.info(name)).config.num_replicas, name).toBe(3);
    }
    for (let i = 0; i < 3; i++) {
      const w = new FakeWorker({ id: `w-cl-${i}`, url: cluster.url, env: cluster.env(), slots: 3, heartbeatMs: 1000, retryPublishForMs: 60_000, behaviour: () => ({ kind: "complete", afterMs: 150 }) });
      workers.push(await w.start());
    }
    const before: string[] = [];
    for (let i = 0; i < 30; i++) before.push(await submitKeyed(i));
    const done = () => workers.reduce((n, w) => n + w.accepted.length - w.running.size, 0);
    await waitFor("some jobs done", () => done() >= 5, 60_000, 50).catch((e: Error) => {
      throw new Error(`${e.message}\nmaster:\n${master?.output().slice(-3000)}`);
    });

    const jsm = await jetstreamManager(ui);
    const leader = (await jsm.streams.info("TROUPE_EVENTS")).cluster?.leader;
    const victim = cluster.nodes.findIndex((n) => n.name === leader);
    expect(victim, `stream leader ${leader}`).toBeGreaterThanOrEqual(0);
    await cluster.stopNode(victim);

    const after: string[] = [];
    for (let i = 30; i < 45; i++) after.push(await submitKeyed(i));
    const all = [...before, ...after];
    await waitFor("every job completed", async () => {
      const { jobs } = foldJobs(await readLog(ui));
      return all.every((id) => jobs.get(id)?.status === "completed");
    }, 120_000, 250).catch((e: Error) => {
      throw new Error(`${e.message}\nmaster:\n${master?.output().slice(-3000)}`);
    });
    // A new member leads the log, on the two that are left.
    expect((await jsm.streams.info("TROUPE_EVENTS")).cluster?.leader).not.toBe(leader);
    // Reading the log makes a consumer: the cluster may still answer that with a timeout right after the failover.
    const log = await waitFor("the whole log", () => readLog(ui), 30_000, 250);
    exactlyOnce(log, all);
    // The failover is no worker's failure: nobody declared lost, and no finished work thrown away (no completion
    // rejected as stale because its attempt had been taken from the worker meanwhile). Attempts may still be requeued:
    // an assignment whose request timed out in the failover is cancelled on the worker, or was never sent, and its
    // lease lapsing is the designed recovery.
    expect(log.filter((l) => l.event.type === "worker.lost").map((l) => l.event.data)).toEqual([]);
    expect(foldJobs(log).rejected.filter((r) => r.type === "job.completed")).toEqual([]);

    // The live projector went on through the failover. Stop the master (it would declare the silent workers lost
    // later) and the workers' heartbeats, let the projector reach the heads, and rebuild on the two members left.
    expect(master.proc.exitCode, master.output()).toBeNull();
    await master.stop();
    for (const w of workers) await w.stop();
    const heads = { TROUPE_EVENTS: (await jsm.streams.info("TROUPE_EVENTS")).state.last_seq, TROUPE_HEARTBEATS: (await jsm.streams.info("TROUPE_HEARTBEATS")).state.last_seq };
    const rm = openReadModels(path);
    await waitFor("the live projector at the streams' heads", () => {
      const cps = rm.projectorLag()?.checkpoints ?? {};
      return (cps.TROUPE_EVENTS ?? 0) >= heads.TROUPE_EVENTS && (cps.TROUPE_HEARTBEATS ?? 0) >= heads.TROUPE_HEARTBEATS;
    }, 60_000, 100);
    for (const id of all) expect(rm.getJob(id)?.status, `read model of ${id}`).toBe("completed");
    rm.close();
    await projector.live.stop();
    const fresh = tempDbPath();
    const pnc = await cluster.connect("projector");
    await waitFor("a rebuild on the two members left", () => rebuildInto(pnc, fresh).then(() => true), 60_000, 500);
    const live = dumpTables(path);
    const rebuilt = dumpTables(fresh);
    // On a difference: the log's story of each job whose row differs (what the rebuild folded, in order).
    const differing = new Set<string>();
    for (const table of Object.keys(rebuilt)) {
      const key = (r: unknown) => JSON.stringify(r);
      const liveRows = new Set((live[table] ?? []).map(key));
      for (const r of rebuilt[table] ?? []) if (!liveRows.has(key(r))) differing.add(String((r as { id?: unknown; job_id?: unknown }).id ?? (r as { job_id?: unknown }).job_id));
    }
    const story = differing.size === 0 ? "" : JSON.stringify((await readLog(ui)).filter((l) => "jobId" in l.event.data && differing.has(l.event.data.jobId as string))
      .map((l) => `${l.seq} ${l.event.time} ${l.event.type} src=${l.event.source} ${JSON.stringify({ ...l.event.data, result: undefined, spec: undefined })}`), null, 1)
      + `\nmaster:\n${master.output().split("\n").filter((l) => [...differing].some((id) => l.includes(id))).join("\n")}`;
    for (const table of Object.keys(rebuilt)) expect({ table, rows: live[table] }, story).toEqual({ table, rows: rebuilt[table] });

    // The killed member comes back and catches up with what it missed.
    await cluster.startNode(victim);
    const lastSeq = (await jsm.streams.info("TROUPE_EVENTS")).state.last_seq;
    await waitFor("the member back in step", async () => {
      const si = await jsm.streams.info("TROUPE_EVENTS");
      const r = si.cluster?.replicas?.find((p) => p.name === leader);
      return r !== undefined && r.current && si.state.last_seq >= lastSeq;
    }, 60_000, 200);
  }, 300_000);
});

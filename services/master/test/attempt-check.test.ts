import type { NatsConnection } from "@nats-io/nats-core";
import { decodeReply, type AckReply } from "@troupe/events";
import { connect } from "@nats-io/transport-node";
import { addWorkerUser, connectAs, reloadNatsServer, workerInboxPrefix } from "@troupe/events/node";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningMaster } from "../src/main.ts";
import { lookupJob } from "../src/state.ts";
import type { FakeWorker } from "./fake-worker.ts";
import { command, fakeWorker, jobIdOf, masterIn, submit } from "./helpers.ts";

// A worker whose link to NATS came back after a silence asks the leader whether its held attempt is still its own
// (troupe.rpc.attempts.check; docs/worker.md, "Cut off from NATS").
let nats: TestNats;
let master: RunningMaster;
let ui: NatsConnection;
let worker: FakeWorker;
const conns: NatsConnection[] = [];
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  master = await masterIn(nats, "m-check");
  ui = await nats.connect("ui");
  worker = await fakeWorker(nats, { id: "w-held", slots: 1, behaviour: () => ({ kind: "hang" }), progressEveryMs: 300 });
});
afterAll(async () => {
  await worker?.stop({ deregister: true });
  await master?.stop();
  for (const nc of conns) await nc.close();
  await nats?.stop();
});

async function check(nc: NatsConnection, body: unknown): Promise<AckReply> {
  const r = await nc.request("troupe.rpc.attempts.check", typeof body === "string" ? body : JSON.stringify(body), { timeout: 5000 });
  const d = decodeReply("ack", r.data);
  if (!d.ok) throw new Error(`invalid reply: ${d.error.message}`);
  return d.value;
}

/** A connection with the worker credential, its replies on worker `id`'s inbox prefix (as a real worker connects). */
async function asWorker(id: string): Promise<NatsConnection> {
  const nc = await connectAs({ url: nats.url, role: "worker", dataDir: nats.dataDir, name: `check-${id}`, env: {}, inboxPrefix: workerInboxPrefix(id) });
  conns.push(nc);
  return nc;
}

describe("the attempt check", () => {
  it("says yes only for the attempt the job runs on the worker named, and no (conflict) once it is not", async () => {
    const id = jobIdOf(await submit(ui, { url: "https://example.com/held", maxAttempts: 3 }));
    await waitFor("the job to run on w-held", () => lookupJob(master.master.state, id)?.status === "running");
    const held = await asWorker("w-held");
    expect(await check(held, { jobId: id, attempt: 1, workerId: "w-held" })).toEqual({ ok: true });
    expect(await check(held, { jobId: id, attempt: 2, workerId: "w-held" })).toMatchObject({ ok: false, error: { code: "conflict", field: "attempt", message: expect.stringMatching(/runs another attempt/) } });
    expect(await check(await asWorker("w-other"), { jobId: id, attempt: 1, workerId: "w-other" })).toMatchObject({ ok: false, error: { code: "conflict" } });

    expect(await command(ui, "jobs.cancel", { jobId: id })).toEqual({ ok: true });
    expect(await check(held, { jobId: id, attempt: 1, workerId: "w-held" })).toMatchObject({ ok: false, error: { code: "conflict", message: expect.stringMatching(/is no longer this worker.s \(the job is cancelled\); stop it/) } });
  });

  it("answers a worker's connection only about that worker, and refuses what it cannot read", async () => {
    const other = await asWorker("w-nosy");
    expect(await check(other, { jobId: "j-any", attempt: 1, workerId: "w-held" })).toMatchObject({ ok: false, error: { code: "forbidden", field: "workerId" } });
    // Not from a worker's inbox at all (the dashboard's user, a CLI): no worker asking about itself.
    expect(await check(ui, { jobId: "j-any", attempt: 1, workerId: "w-held" })).toMatchObject({ ok: false, error: { code: "forbidden" } });
    expect(await check(other, { jobId: "j-unknown", attempt: 1, workerId: "w-nosy" })).toMatchObject({ ok: false, error: { code: "not-found", field: "jobId" } });
    expect(await check(ui, { jobId: "j-x", attempt: 0, workerId: "w-held" })).toMatchObject({ ok: false, error: { code: "invalid", field: "attempt" } });
    expect(await check(ui, "{not json")).toMatchObject({ ok: false, error: { code: "invalid" } });
    expect(await check(ui, { jobId: "j-x", attempt: 1, workerId: "w-held", extra: true })).toMatchObject({ ok: false, error: { code: "invalid" } });
  });

  it("is open to a worker under its own NATS user (troupe worker-user add), which may send it and read the answer", async () => {
    const u = addWorkerUser(nats.dataDir, "w-own");
    await reloadNatsServer(nats.dataDir);
    const own = await connect({ servers: nats.url, user: u.user, pass: u.password, inboxPrefix: workerInboxPrefix("w-own") });
    conns.push(own);
    expect(await check(own, { jobId: "j-own-unknown", attempt: 1, workerId: "w-own" })).toMatchObject({ ok: false, error: { code: "not-found" } });
    expect(await check(own, { jobId: "j-own-unknown", attempt: 1, workerId: "w-held" })).toMatchObject({ ok: false, error: { code: "forbidden" } });
  });

  it("answers nothing on a reply subject that is not an inbox: the answer goes out with the master's permissions (a worker could have had it purge the log)", async () => {
    // A subject the master may publish on and this connection may read: where the answer would land.
    const probe = "troupe.evt.job.j-probe.cancelled";
    const landed = ui.subscribe(probe);
    const seen: string[] = [];
    void (async () => { for await (const m of landed) seen.push(m.string()); })();
    await ui.flush();
    ui.publish("troupe.rpc.attempts.check", "{not json", { reply: probe });
    ui.publish("troupe.rpc.jobs.cancel", "{not json", { reply: probe });
    // Answered at once, like those two would have been: the master takes requests in order, so theirs came first.
    expect(await check(ui, "{still not json")).toMatchObject({ ok: false, error: { code: "invalid" } });
    await ui.flush();
    landed.unsubscribe();
    expect(seen).toEqual([]);
  });
});

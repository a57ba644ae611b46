import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import { Objm } from "@nats-io/obj";
import { createEvent, type TroupeEvent } from "@troupe/events";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  addWorkerUser, connectAs, initStores, natsVarz, publishEvent, putArtifact, recordStartedNats, reloadNatsServer, removeWorkerUser, runningNatsPath, workerInboxPrefix,
  type RunningNatsRecord, type WorkerUser,
} from "@troupe/events/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestNats, type TestNats } from "../harness/index.ts";

let nats: TestNats;
let w1: WorkerUser;
const opened: NatsConnection[] = [];

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  // Added while the server runs: it must take the user on reload, not at a restart.
  w1 = addWorkerUser(nats.dataDir, "w1");
  addWorkerUser(nats.dataDir, "w2");
  expect(await reloadNatsServer(nats.dataDir)).toMatchObject({ reloaded: true, pid: nats.server.process.pid });
});
afterAll(async () => {
  await Promise.allSettled(opened.map((c) => c.close()));
  await nats?.stop();
});

/** Connects as a per-worker user, the way a worker does (its credentials in the worker role's variables, its inbox). */
async function connectOwn(u: Pick<WorkerUser, "workerId" | "user" | "password">, name = `own-${u.workerId}`): Promise<NatsConnection> {
  const nc = await connectAs({
    url: nats.url, role: "worker", dataDir: "/nonexistent", name, inboxPrefix: workerInboxPrefix(u.workerId),
    env: { TROUPE_NATS_WORKER_USER: u.user, TROUPE_NATS_WORKER_PASSWORD: u.password },
  });
  opened.push(nc);
  return nc;
}

/** The server's asynchronous verdict on what `act` did on a fresh connection (a denied publish or subscribe is not an error at the call). */
async function violation(act: (nc: NatsConnection) => void): Promise<string> {
  const nc = await connectOwn(w1, "own-violation");
  const statusErr = (async () => {
    for await (const s of nc.status()) if (s.type === "error") return String((s as { error: unknown }).error);
    return "";
  })();
  act(nc);
  await nc.flush();
  const err = await Promise.race([statusErr, new Promise<string>((r) => setTimeout(() => r("no error within 3s"), 3000))]);
  await nc.close();
  return err;
}

const started = (workerId: string, jobId = "job-own") => createEvent("job.started", { jobId, workerId, attempt: 1 }, workerId) as TroupeEvent;

describe("a worker's own NATS user (troupe worker-user)", () => {
  it("appends its job events and heartbeats, and takes its own assignments", async () => {
    const nc = await connectOwn(w1);
    const js = jetstream(nc);
    expect((await publishEvent(js, started("w1"))).stream).toBe("TROUPE_EVENTS");
    const hb = createEvent("worker.heartbeat", {
      workerId: "w1", instanceId: "i1", status: "online", currentJobs: 0, maxConcurrentJobs: 1, jobIds: [],
      metrics: { memoryUsage: 1, cpuUsage: 1, diskUsage: 1, networkUsage: 0, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
      performance: { successRate: 0, averageJobDuration: 0 },
    }, "w1") as TroupeEvent;
    expect((await publishEvent(js, hb)).stream).toBe("TROUPE_HEARTBEATS");
    nc.subscribe("troupe.worker.w1.assign", { callback: (_e, m) => void m.respond(JSON.stringify({ accepted: true })) });
    await nc.flush();
    const master = await nats.connect("master");
    expect((await master.request("troupe.worker.w1.assign", "{}", { timeout: 3000 })).json()).toEqual({ accepted: true });
  });

  it("writes a screenshot the dashboard reads back intact, but cannot read or purge the object store", async () => {
    const nc = await connectOwn(w1);
    const bytes = new Uint8Array(300_000).map((_, i) => (i * 7) % 251); // three chunks
    const put = await putArtifact(jetstream(nc), "troupe-artifacts", "job-own/1/000-page.png", bytes, { maxPayload: nc.info?.max_payload });
    expect(put.chunks).toBe(3);
    const os = await new Objm(await nats.connect("ui")).open("troupe-artifacts");
    expect(Buffer.from((await os.getBlob("job-own/1/000-page.png"))!)).toEqual(Buffer.from(bytes));
    expect((await os.info("job-own/1/000-page.png"))?.digest).toBe(put.digest);
    // Stream info with a subjects filter would list every subject: every job id, every artifact name.
    for (const api of ["$JS.API.STREAM.MSG.GET.OBJ_troupe-artifacts", "$JS.API.DIRECT.GET.OBJ_troupe-artifacts", "$JS.API.STREAM.PURGE.OBJ_troupe-artifacts", "$JS.API.CONSUMER.CREATE.OBJ_troupe-artifacts",
      "$JS.API.STREAM.INFO.OBJ_troupe-artifacts", "$JS.API.STREAM.INFO.TROUPE_EVENTS", "$JS.API.STREAM.INFO.TROUPE_HEARTBEATS", "$JS.API.INFO", "$JS.API.STREAM.LIST"]) {
      expect([api, await violation((c) => c.publish(api, JSON.stringify({ seq: 1 }), { reply: `${workerInboxPrefix("w1")}.x` }))]).toEqual([api, expect.stringMatching(/Permissions Violation for Publish/i)]);
    }
  });

  it.each(["troupe.worker.w2.assign", "troupe.worker.*.assign", "troupe.worker.w2.cancel", "troupe.rpc.>", "troupe.evt.>", "_INBOX.>", "_INBOX.w.w2.>", ">"])(
    "cannot subscribe to %s (another worker's commands, other clients' replies)",
    async (subject) => {
      expect(await violation((c) => c.subscribe(subject))).toMatch(/Permissions Violation for Subscription/i);
    },
  );

  it.each(["troupe.hb.w2", "troupe.evt.worker.w2.registered", "troupe.evt.worker.w2.deregistered", "troupe.worker.w2.presence", "troupe.evt.job.j.assigned", "troupe.evt.worker.w1.lost", "troupe.worker.w1.assign", "troupe.rpc.jobs.submit"])(
    "cannot publish %s (another worker's name, or the master's)",
    async (subject) => {
      expect(await violation((c) => c.publish(subject, "x"))).toMatch(/Permissions Violation for Publish/i);
    },
  );

  it("answers requests it received, but cannot publish on another client's inbox (the master's next reply subject is predictable)", async () => {
    const nc = await connectOwn(w1);
    nc.subscribe("troupe.worker.w1.cancel", { callback: (_e, m) => void m.respond(JSON.stringify({ ok: true })) });
    await nc.flush();
    const master = await nats.connect("master");
    expect((await master.request("troupe.worker.w1.cancel", "{}", { timeout: 3000 })).json()).toEqual({ ok: true });
    // As if forging the answer to the master's next request to another worker.
    expect(await violation((c) => c.publish("_INBOX.MasterInbox0123456789abc.1f", JSON.stringify({ accepted: false })))).toMatch(/Permissions Violation for Publish/i);
  });

  it("loses its connection when its user is removed, and the old password is refused", async () => {
    const u = addWorkerUser(nats.dataDir, "w3");
    await reloadNatsServer(nats.dataDir);
    const nc = await connectOwn(u);
    expect(removeWorkerUser(nats.dataDir, "w3")).toBe(true);
    expect(await reloadNatsServer(nats.dataDir)).toMatchObject({ reloaded: true });
    // nats-server drops a client whose user is gone at the reload; nats.js, refused twice on reconnecting, closes for good.
    expect(String(await nc.closed())).toMatch(/Authorization Violation/i);
    await expect(connectOwn(u, "own-removed")).rejects.toThrow(/Authorization Violation/i);
  });

  it("a user added while nats-server was starting (not yet recorded) is loaded once the start records itself", async () => {
    const started = readFileSync(join(nats.dataDir, "nats-troupe.conf"), "utf8");
    const record = readFileSync(runningNatsPath(nats.dataDir), "utf8");
    rmSync(runningNatsPath(nats.dataDir));
    const u = addWorkerUser(nats.dataDir, "w5");
    expect(await reloadNatsServer(nats.dataDir)).toMatchObject({ reloaded: false });
    await expect(connectOwn(u, "own-early")).rejects.toThrow(/Authorization Violation/i);
    const { pid, source, prefix, monitorUrl } = JSON.parse(record) as RunningNatsRecord;
    await recordStartedNats(nats.dataDir, { pid, source, prefix, monitorUrl }, started);
    await (await connectOwn(u, "own-late")).close();
  });

  it("a stale record (another start's server id) is not signalled", async () => {
    const file = runningNatsPath(nats.dataDir);
    const real = readFileSync(file, "utf8");
    const before = await natsVarz(nats.monitorUrl);
    writeFileSync(file, JSON.stringify({ ...JSON.parse(real), serverId: "NOTTHISSERVER" }));
    expect(await reloadNatsServer(nats.dataDir)).toEqual({ reloaded: false, reason: expect.stringMatching(/no nats-server started by troupe is running/) });
    expect((await natsVarz(nats.monitorUrl)).configLoadTime).toBe(before.configLoadTime);
    writeFileSync(file, real);
  });

  it("--rotate: the new password works, the old one is refused and its connection dropped", async () => {
    const before = addWorkerUser(nats.dataDir, "w4");
    await reloadNatsServer(nats.dataDir);
    const held = await connectOwn(before);
    const after = addWorkerUser(nats.dataDir, "w4", { rotate: true });
    await reloadNatsServer(nats.dataDir);
    expect(after.password).not.toBe(before.password);
    // A connection made with the old password is dropped at the reload, and cannot come back.
    expect(String(await held.closed())).toMatch(/Authorization Violation/i);
    await expect(connectOwn(before, "own-old")).rejects.toThrow(/Authorization Violation/i);
    await (await connectOwn(after, "own-new")).close();
  });
});

describe("an append-only artifact store (troupe init --append-only-artifacts)", () => {
  it("keeps what workers stored when a worker credential sends a rollup or a purge, and still takes new screenshots", async () => {
    const master = await nats.connect("master");
    expect((await initStores(master, { artifactsAppendOnly: true })).artifactsAppendOnly).toBe("updated");
    expect((await initStores(master, { artifactsAppendOnly: true })).artifactsAppendOnly).toBe("unchanged");
    const own = await connectOwn(w1);
    const bytes = new TextEncoder().encode("png bytes");
    await putArtifact(jetstream(own), "troupe-artifacts", "job-ao/1/000-page.png", bytes);
    const jsm = await jetstreamManager(master);
    const before = (await jsm.streams.info("OBJ_troupe-artifacts")).state.messages;
    // The wipe a metadata publish with `Nats-Rollup: all` was (permissions cannot look at headers).
    const h = headers();
    h.set("Nats-Rollup", "all");
    await expect(jetstream(own).publish("$O.troupe-artifacts.M.eA==", "{}", { headers: h })).rejects.toThrow(/rollup/i);
    await expect(jsm.streams.purge("OBJ_troupe-artifacts")).rejects.toThrow(/purge/i);
    expect((await jsm.streams.info("OBJ_troupe-artifacts")).state.messages).toBe(before);
    const os = await new Objm(await nats.connect("ui")).open("troupe-artifacts");
    expect(Buffer.from((await os.getBlob("job-ao/1/000-page.png"))!).toString()).toBe("png bytes");
    // Why it is not the default: @nats-io/obj's put (workers older than attempt tokens) sends a rollup.
    const shared = await new Objm(await nats.connect("worker")).open("troupe-artifacts");
    await expect(shared.putBlob({ name: "job-old/1/000-page.png" }, bytes)).rejects.toThrow(/rollup|purge/i);
  });
});

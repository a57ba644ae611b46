import { Objm } from "@nats-io/obj";
import { newAttemptToken, type AssignReply, type Command } from "@troupe/events";
import { addWorkerUser, reloadNatsServer, workerInboxPrefix, type WorkerUser } from "@troupe/events/node";
import { connect } from "@nats-io/transport-node";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Worker } from "../src/worker.ts";
import { EventLog, jobId, startPages, startTestWorker, type TestPages } from "./helpers.ts";

let nats: TestNats;
let events: EventLog;
let pages: TestPages;
let user: WorkerUser;
let worker: Worker | undefined;

/** The worker's environment under its own NATS user instead of the shared one. */
const ownEnv = (u: WorkerUser, workerId = u.workerId) => ({
  TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_WORKER_ID: workerId, TROUPE_NATS_WORKER_USER: u.user, TROUPE_NATS_WORKER_PASSWORD: u.password,
});

beforeAll(async () => {
  [nats, pages] = await Promise.all([startTestNats({ init: true }), startPages()]);
  user = addWorkerUser(nats.dataDir, "own-1");
  await reloadNatsServer(nats.dataDir);
  events = await EventLog.start(nats);
});
afterAll(async () => {
  await worker?.stop("test over");
  await Promise.all([nats?.stop(), pages?.close()]);
});

describe("a worker under its own NATS user (troupe worker-user add)", () => {
  it("registers, heartbeats, runs an assigned job and stores its screenshot, which the dashboard reads", async () => {
    worker = await startTestWorker(nats, ownEnv(user));
    const registered = await events.wait("worker.registered", (e) => e.data.workerId === "own-1");
    expect(registered.data.instanceId).toBe(worker.instanceId);
    expect(registered.data.capabilities.attemptTokens).toBe(true);
    const id = jobId("own");
    const master = await nats.connect("master");
    const token = newAttemptToken();
    const body: Command<"worker.assign"> = {
      jobId: id, attempt: 1, epoch: 1, token,
      spec: { priority: 5, maxAttempts: 3, timeoutMs: 60_000, scenario: { steps: [{ type: "navigate", url: pages.url("/form") }, { type: "screenshot", label: "own" }] } },
    };
    expect((await master.request("troupe.worker.own-1.assign", JSON.stringify(body), { timeout: 5000 })).json<AssignReply>()).toEqual({ accepted: true });
    const final = await events.final(id);
    expect(final.type).toBe("job.completed");
    if (final.type !== "job.completed") return;
    expect(final.data.workerId).toBe("own-1");
    // The assignment's token comes back in every event of the attempt (the master folds them only with it).
    expect(final.data.token).toBe(token);
    expect(events.of("job.started", (e) => e.data.jobId === id).map((e) => e.data.token)).toEqual([token]);
    expect(new Set(events.of("job.progress", (e) => e.data.jobId === id).map((e) => e.data.token))).toEqual(new Set([token]));
    const [shot] = final.data.result.screenshots;
    expect(shot).toBe(`${id}/1/002-own.png`);
    const png = await (await new Objm(await nats.connect("ui")).open("troupe-artifacts")).getBlob(shot as string);
    expect(Buffer.from(png!.subarray(0, 8)).toString("hex")).toBe("89504e470d0a1a0a");
    await events.wait("worker.heartbeat", (e) => e.data.workerId === "own-1");
    // It reads back the server's stamp of its own heartbeat (to date its events when its clock is off), and only its own.
    await waitFor("a server clock sample", () => worker!.clockSamples.taken >= 1, 10_000, 50);
    expect(worker.clockSamples.skipped).toBe(0);
    const asIt = await connect({ servers: nats.url, user: user.user, pass: user.password, inboxPrefix: workerInboxPrefix("own-1") });
    try {
      const own = await asIt.request("$JS.API.DIRECT.GET.TROUPE_HEARTBEATS.troupe.hb.own-1", "", { timeout: 3000 });
      expect(own.headers?.get("Nats-Subject")).toBe("troupe.hb.own-1");
      await expect(asIt.request("$JS.API.DIRECT.GET.TROUPE_HEARTBEATS.troupe.hb.someone-else", "", { timeout: 1000 })).rejects.toThrow(/permission|timeout/i);
    } finally {
      await asIt.close();
    }
    // Discovery (`nats micro ls` as the ui user): its own user may answer requests it receives, on the asker's inbox.
    const info = (await (await nats.connect("ui")).request("$SRV.INFO.troupe-worker", "", { timeout: 3000 })).json<{ metadata: { workerId: string } }>();
    expect(info.metadata.workerId).toBe("own-1");
  });

  it("refuses to start as another worker id, saying which user goes with which id", async () => {
    await expect(startTestWorker(nats, ownEnv(user, "someone-else"))).rejects.toThrow(
      /may not act as worker "someone-else" \(.*Permissions Violation.*\): a user from `troupe worker-user add <id>` works only with TROUPE_WORKER_ID=<id>/,
    );
    expect(events.of("worker.registered", (e) => e.data.workerId === "someone-else")).toHaveLength(0);
  });
});

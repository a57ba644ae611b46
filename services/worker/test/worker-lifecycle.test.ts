import { headers } from "@nats-io/nats-core";
import { Svcm } from "@nats-io/services";
import { INSTANCE_HEADER } from "@troupe/events/node";
import { ASSIGNED_AGE_HEADER, JOB_LEASE_HEADER, ReplySchemas, type AssignReply, type Command } from "@troupe/events";
import { startTestNats, type TestNats } from "@troupe/tests/harness";
import { Value } from "@sinclair/typebox/value";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/nats-core";
import { servePresence, type PresenceInfo } from "../src/presence.ts";
import type { Worker } from "../src/worker.ts";
import { EventLog, jobId, startTestWorker } from "./helpers.ts";

let nats: TestNats;
let events: EventLog;
let worker: Worker;

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  events = await EventLog.start(nats);
  worker = await startTestWorker(nats);
});
afterAll(async () => {
  await worker?.stop("test over");
  await nats?.stop();
});

const assign = async (body: unknown): Promise<AssignReply> => {
  const nc = await nats.connect("master");
  const r = await nc.request("troupe.worker.wn-test-01.assign", JSON.stringify(body), { timeout: 5000 });
  const reply = r.json<AssignReply>();
  expect(Value.Check(ReplySchemas["worker.assign"], reply)).toBe(true);
  return reply;
};
const spec = (over: Partial<Command<"worker.assign">["spec"]> = {}) => ({ url: "https://example.com", priority: 5, maxAttempts: 3, timeoutMs: 60_000, ...over });

describe("registration and presence", () => {
  it("derives the id from the name and registers with real capabilities", async () => {
    const reg = await events.wait("worker.registered", (e) => e.data.instanceId === worker.instanceId);
    expect(reg.data.workerId).toBe("wn-test-01");
    expect(reg.data.name).toBe("Worker Node Test 01");
    expect(reg.data.port).toBe(worker.statusPort);
    expect(reg.data.capabilities.memory).toBeGreaterThan(0);
    expect(reg.data.capabilities.cpu).toBeGreaterThanOrEqual(1);
    expect(reg.data.capabilities.maxConcurrentJobs).toBe(2);
    expect(reg.data.capabilities.supportedBrowsers[0]).toMatchObject({ name: "chromium", version: expect.stringMatching(/^\d+\./) });
    // TROUPE_ALLOW_SCRIPT_STEPS is off (the default): it does not claim page-JavaScript steps (the master offers it no such job).
    expect(reg.data.capabilities).not.toHaveProperty("scriptSteps");
  });

  it("heartbeats on troupe.hb.<id> with real machine metrics", async () => {
    const hb = await events.wait("worker.heartbeat", (e) => e.data.instanceId === worker.instanceId);
    expect(hb.data.status).toBe("online");
    expect(hb.data.metrics.memoryUsage).toBeGreaterThan(0);
    expect(hb.data.metrics.memoryTotal).toBeGreaterThan(hb.data.metrics.memoryUsage);
    expect(hb.data.metrics.diskUsage).toBeGreaterThan(0);
    expect(hb.data.metrics.cpuUsage).toBeGreaterThanOrEqual(0);
    expect(hb.data.metrics.openContexts).toBe(0);
    expect(hb.data.performance).toEqual({ successRate: 100, averageJobDuration: 0 });
    // It says its interval, by which the master and the UI judge its silence.
    expect(hb.data.heartbeatMs).toBe(500);
    // Heartbeats keep coming at the configured interval (500 ms here).
    await events.wait("worker.heartbeat", (e) => e.data.instanceId === worker.instanceId && e.time > hb.time);
    expect(events.invalid).toEqual([]);
  });

  it("refuses a second live process with the same worker id", async () => {
    await expect(startTestWorker(nats)).rejects.toThrow(/worker id "wn-test-01" is already running \(instance i/);
  });

  it("registers again after a reconnect when no other process has its id (a master whose log lost it learns it again)", async () => {
    const first = await events.wait("worker.registered", (e) => e.data.instanceId === worker.instanceId);
    const seen = events.events.filter((e) => e.type === "worker.registered" && e.data.instanceId === worker.instanceId).length;
    await worker.afterReconnect();
    const returnedAt = Date.now();
    await events.wait("worker.registered", (e) => e.data.instanceId === worker.instanceId && e.id !== first.id);
    // Exactly one more: a second one stored before afterReconnect returned could still be on its way.
    await events.heardAfter(worker.instanceId, returnedAt);
    expect(events.events.filter((e) => e.type === "worker.registered" && e.data.instanceId === worker.instanceId).length).toBe(seen + 1);
  });

  it("stops as superseded when, after a reconnect, another process answers for its id (it was replaced while paused)", async () => {
    const env = { TROUPE_WORKER_NAME: "Worker Node Twin" };
    const old = await startTestWorker(nats, env);
    let replacement: Worker | undefined;
    try {
      // Paused: it cannot answer the new process's presence check, which therefore starts.
      (old as unknown as { presenceSub: { unsubscribe(): void } }).presenceSub.unsubscribe();
      // The replacement allows page-JavaScript steps (the old process did not): its registration says so, the old one's did not.
      replacement = await startTestWorker(nats, { ...env, TROUPE_ALLOW_SCRIPT_STEPS: "true" });
      expect((await events.wait("worker.registered", (e) => e.data.instanceId === replacement!.instanceId)).data.capabilities.scriptSteps).toBe(true);
      expect((await events.wait("worker.registered", (e) => e.data.instanceId === old.instanceId)).data.capabilities).not.toHaveProperty("scriptSteps");
      // Resumed: it answers again.
      const o = old as unknown as { nc: NatsConnection; presence: PresenceInfo; presenceSub: unknown };
      o.presenceSub = servePresence(o.nc, "troupe", o.presence);
      // Both reconnect (a NATS restart) and both hear the other: only the older one goes.
      let replacementGone = false;
      void replacement.superseded().then(() => (replacementGone = true));
      await replacement.afterReconnect();
      const superseded = old.superseded();
      await old.afterReconnect();
      await expect(superseded).resolves.toMatchObject({ workerId: "wn-twin", instanceId: replacement.instanceId });
      expect(replacementGone).toBe(false);
      // It did not register again: the master keeps to the replacement. (A registration stored before afterReconnect
      // returned could still be on its way; a heartbeat of the old process sent after it comes after it.)
      await events.heardAfter(old.instanceId, Date.now());
      expect(events.events.filter((e) => e.type === "worker.registered" && e.data.instanceId === old.instanceId)).toHaveLength(1);
    } finally {
      await old.abandon();
      await replacement?.stop("test over");
    }
  });

  it("answers $SRV.PING as a NATS micro service with its worker id", async () => {
    // Of the roles, only the worker user may publish $SRV.* (nats.conf).
    const nc = await nats.connect("worker", "test-micro-client");
    const client = new Svcm(nc).client();
    const found = [];
    for await (const p of await client.ping("troupe-worker")) found.push(p);
    expect(found.some((p) => p.metadata?.workerId === "wn-test-01" && p.metadata?.instanceId === worker.instanceId)).toBe(true);
    const stats = [];
    for await (const s of await client.stats("troupe-worker")) stats.push(s);
    expect(stats[0]?.endpoints?.map((e) => e.name).sort()).toEqual(["assign", "cancel", "drain", "resume"]);
  });
});

describe("GET /status and /healthz", () => {
  it("returns the seed's shape", async () => {
    const r = await fetch(`http://127.0.0.1:${worker.statusPort}/status`);
    expect(r.status).toBe(200);
    const body = await r.json();
    expect(body).toEqual({
      workerId: "wn-test-01",
      name: "Worker Node Test 01",
      status: "online",
      currentJobs: 0,
      totalProcessed: 0,
      successRate: 100,
      uptime: expect.stringMatching(/^\d+s$/),
      performance: { cpu: expect.any(Number), memory: expect.any(Number), disk: expect.any(Number) },
    });
    expect(body.performance.memory).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${worker.statusPort}/healthz`)).status).toBe(200);
  });
});

describe("assignment refusals", () => {
  it("refuses an invalid scenario naming the exact step and field", async () => {
    const r = await assign({ jobId: jobId("inv"), attempt: 1, epoch: 1, spec: spec({ url: undefined, scenario: { steps: [{ type: "navigate", url: "https://e.com" }, { type: "click", selectors: [] }] } as never }) });
    expect(r).toMatchObject({ accepted: false, reason: "invalid", field: "spec.scenario.steps[1].selectors" });
    expect(worker.invalidCommands).toBeGreaterThan(0);
  });
  it("refuses malformed JSON without crashing", async () => {
    const nc = await nats.connect("master");
    const r = (await nc.request("troupe.worker.wn-test-01.assign", "{not json", { timeout: 5000 })).json<AssignReply>();
    expect(r).toMatchObject({ accepted: false, reason: "invalid", message: expect.stringMatching(/not JSON/) });
  });
  it("refuses an unsupported browser and page-JavaScript steps", async () => {
    expect(await assign({ jobId: jobId("ff"), attempt: 1, epoch: 1, spec: spec({ browser: "firefox" }) })).toMatchObject({ accepted: false, reason: "unsupported-browser" });
    expect(await assign({ jobId: jobId("js"), attempt: 1, epoch: 1, spec: spec({ scenario: { steps: [{ type: "waitForExpression", expression: "window.ready" }] } }) }))
      .toMatchObject({ accepted: false, reason: "invalid", field: "spec.scenario.steps[0].type" });
  });
  it("leaves an assignment meant for another process with its worker id unanswered (a twin must not run the attempt too)", async () => {
    const nc = await nats.connect("master");
    const before = worker.foreignAssignments;
    const body = JSON.stringify({ jobId: jobId("twin"), attempt: 1, epoch: 1, spec: spec({ browser: "firefox" }) });
    const meant = (instanceId: string) => {
      const h = headers();
      h.set(INSTANCE_HEADER, instanceId);
      return h;
    };
    await expect(nc.request("troupe.worker.wn-test-01.assign", body, { timeout: 1000, headers: meant("i-someone-else") })).rejects.toThrow(/timeout/i);
    expect(worker.foreignAssignments).toBe(before + 1);
    // Meant for this process: handled as always (refused here for its browser).
    const r = (await nc.request("troupe.worker.wn-test-01.assign", body, { timeout: 5000, headers: meant(worker.instanceId) })).json<AssignReply>();
    expect(r).toMatchObject({ accepted: false, reason: "unsupported-browser" });
  });
  it("refuses an assignment whose job-lease header is not a lease, naming the header, and runs nothing", async () => {
    const nc = await nats.connect("master");
    const before = worker.invalidCommands;
    const h = headers();
    h.set(JOB_LEASE_HEADER, "5e3");
    const body = JSON.stringify({ jobId: jobId("lease-hdr"), attempt: 1, epoch: 1, spec: spec({}) });
    const r = (await nc.request("troupe.worker.wn-test-01.assign", body, { timeout: 5000, headers: h })).json<AssignReply>();
    expect(r).toMatchObject({ accepted: false, reason: "invalid", message: expect.stringContaining(`header ${JOB_LEASE_HEADER}`) });
    expect(worker.invalidCommands).toBe(before + 1);
    expect(worker.statusBody().currentJobs).toBe(0);
  });
  it("refuses an assignment whose assigned-age header is not a number of milliseconds, naming the header, and runs nothing", async () => {
    const nc = await nats.connect("master");
    const before = worker.invalidCommands;
    const h = headers();
    h.set(ASSIGNED_AGE_HEADER, "-40");
    const body = JSON.stringify({ jobId: jobId("age-hdr"), attempt: 1, epoch: 1, spec: spec({}) });
    const r = (await nc.request("troupe.worker.wn-test-01.assign", body, { timeout: 5000, headers: h })).json<AssignReply>();
    expect(r).toMatchObject({ accepted: false, reason: "invalid", message: expect.stringContaining(`header ${ASSIGNED_AGE_HEADER}`) });
    expect(worker.invalidCommands).toBe(before + 1);
    expect(worker.statusBody().currentJobs).toBe(0);
  });
  it("cancel of an unknown attempt answers not-found", async () => {
    const nc = await nats.connect("master");
    const r = (await nc.request("troupe.worker.wn-test-01.cancel", JSON.stringify({ jobId: "nope", attempt: 1 }), { timeout: 5000 })).json();
    expect(r).toMatchObject({ ok: false, error: { code: "not-found" } });
  });
});

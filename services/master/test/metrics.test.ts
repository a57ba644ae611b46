import type { NatsConnection } from "@nats-io/nats-core";
import { freePort } from "@troupe/events/node";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningMaster } from "../src/main.ts";
import type { FakeWorker } from "./fake-worker.ts";
import { fakeWorker, masterIn, submit } from "./helpers.ts";
import { lookupJob } from "../src/state.ts";

let nats: TestNats;
let master: RunningMaster;
let ui: NatsConnection;
let worker: FakeWorker;
let url: string;
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  const port = await freePort();
  // Heartbeats expected every 2 s: a scrape right after a ~400 ms stall of this process (master and worker both) could
  // come before the stall was noticed, and at 200 ms showed the worker as suspect.
  master = await masterIn(nats, "m-metrics", { heartbeatIntervalMs: 2000 }, port);
  url = `http://127.0.0.1:${master.metricsPort}`;
  ui = await nats.connect("ui");
  worker = await fakeWorker(nats, { id: "w-metrics", slots: 1 });
});
afterAll(async () => {
  await worker?.stop({ deregister: true });
  await master?.stop();
  await nats?.stop();
});

describe("GET /metrics", () => {
  it("serves queue depth by priority, jobs by state, workers by status, the latency histogram and leadership", async () => {
    const done = await submit(ui, { url: "https://example.com/m1" });
    const waiting = await submit(ui, { url: "https://example.com/m2", priority: 8, browser: "none-has-it" });
    expect(done.ok && waiting.ok).toBe(true);
    const id = (done as { jobId: string }).jobId;
    await waitFor("completed", () => lookupJob(master.master.state, id)?.status === "completed");
    // Its submission may be folded after the first job's completion (appended meanwhile by the worker).
    await waitFor("the second job queued", () => lookupJob(master.master.state, (waiting as { jobId: string }).jobId)?.status === "queued");
    await waitFor("leader", () => master.master.isLeader);
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toContain('troupe_master_queue_depth{priority="8"} 1');
    expect(text).toContain('troupe_master_jobs{state="completed"} 1');
    expect(text).toMatch(/troupe_master_workers\{status="online"\} 1/);
    expect(text).toMatch(/troupe_master_assignment_latency_seconds_count 1/);
    expect(text).toMatch(/# TYPE troupe_master_rejected_events_total counter/);
    expect(text).toContain("troupe_master_leader 1");
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });
});

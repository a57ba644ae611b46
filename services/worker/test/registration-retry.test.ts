import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Worker } from "../src/worker.ts";
import { EventLog, startTestWorker } from "./helpers.ts";

let nats: TestNats;
let events: EventLog;
let worker: Worker | undefined;

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  events = await EventLog.start(nats);
});
afterAll(async () => {
  await worker?.stop("test over");
  await nats?.stop();
});

describe("registration while NATS is away", () => {
  it("waits for NATS, registers once it is back, and keeps heartbeating after a restart", async () => {
    await nats.server.stop();
    const starting = startTestWorker(nats, { TROUPE_WORKER_NAME: "Worker Node Patient" });
    // While the server is down, start-up keeps waiting (it neither fails nor finishes).
    const outcome = await Promise.race([starting.then(() => "started", () => "failed"), new Promise((r) => setTimeout(() => r("still waiting"), 1500))]);
    expect(outcome).toBe("still waiting");
    await nats.restart();
    worker = await starting;
    const reg = await events.wait("worker.registered", (e) => e.data.workerId === "wn-patient", 30_000);
    expect(reg.data.instanceId).toBe(worker.instanceId);
    // A server restart later: heartbeats resume on their own.
    await nats.restart();
    const after = Date.now();
    await waitFor("a heartbeat after the restart", () => events.of("worker.heartbeat", (e) => e.data.workerId === "wn-patient" && Date.parse(e.time) > after)[0], 30_000);
  });
});

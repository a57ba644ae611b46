import type { NatsConnection } from "@nats-io/nats-core";
import { ATTEMPT_MAX } from "@troupe/events";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningMaster } from "../src/main.ts";
import { lookupJob } from "../src/state.ts";
import type { FakeWorker } from "./fake-worker.ts";
import { command, fakeWorker, foldJobs, jobIdOf, masterIn, readLog, submit } from "./helpers.ts";

/** A job that no worker ever accepts ends dead at the contract's last attempt number, instead of waiting for ever on an invalid requeue. */

let nats: TestNats;
let master: RunningMaster;
let ui: NatsConnection;
let grumpy: FakeWorker;
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  // No backoff: the 1,000 refusals follow each other at once.
  master = await masterIn(nats, "m-refusals", { backoffMs: 0, maxBackoffMs: 0 });
  ui = await nats.connect("ui");
  grumpy = await fakeWorker(nats, { id: "w-grumpy", slots: 2, behaviour: () => ({ kind: "refuse", reason: "cpu" }) });
});
afterAll(async () => {
  await grumpy?.stop({ deregister: true });
  await master?.stop();
  await nats?.stop();
});

describe("a job every worker refuses", () => {
  it("goes dead at attempt 1000 with the refusals as its reason, and cannot be redriven past it", async () => {
    const id = jobIdOf(await submit(ui, { url: "https://example.com/nobody-wants-me" }));
    await waitFor("the job dead", () => lookupJob(master.master.state, id)?.status === "dead", 120_000, 50);
    expect(grumpy.requests.filter((r) => r.jobId === id)).toHaveLength(ATTEMPT_MAX);
    const log = await readLog(ui);
    const { jobs, rejected } = foldJobs(log);
    const job = jobs.get(id)!;
    expect(job).toMatchObject({ status: "dead", attempt: ATTEMPT_MAX, error: { code: "refused", retryable: false } });
    expect(job.error?.message).toMatch(/no worker accepted the job; last refusal by w-grumpy: cpu/);
    const dead = log.find((l) => l.event.type === "job.dead" && l.event.data.jobId === id)!;
    expect(dead.event.data).toMatchObject({ attempts: 1, reason: expect.stringMatching(/refused 1000 times by the workers.*attempt number 1000 is the last/) });
    expect(rejected).toEqual([]);
    expect(await command(ui, "jobs.retry", { jobId: id })).toMatchObject({ ok: false, error: { code: "conflict", message: expect.stringMatching(/last the contract allows/) } });
  }, 180_000);
});

import type { NatsConnection } from "@nats-io/nats-core";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningMaster } from "../src/main.ts";
import { foldJobs, masterIn, readLog, submit } from "./helpers.ts";
import { lookupJob } from "../src/state.ts";

let nats: TestNats;
let m1: RunningMaster;
let m2: RunningMaster;
let ui: NatsConnection;
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  m1 = await masterIn(nats, "m-guard-1");
  m2 = await masterIn(nats, "m-guard-2");
  ui = await nats.connect("ui");
});
afterAll(async () => {
  await m2?.stop();
  await m1?.stop();
  await nats?.stop();
});

describe("two masters that both believe they lead", () => {
  it("cannot both record the same attempt: the expected-last-subject-sequence guard lets one in", async () => {
    const r = await submit(ui, { url: "https://example.com/contested" });
    if (!r.ok) throw new Error(r.error.message);
    await waitFor("both folded the submission", () => (lookupJob(m1.master.state, r.jobId) !== undefined) && (lookupJob(m2.master.state, r.jobId) !== undefined));
    // Both decide from the same view (no assignment yet) and append at once, as two leaders would.
    const subject = `troupe.evt.job.${r.jobId}.assigned`;
    const results = await Promise.allSettled([
      m1.master.append("job.assigned", { jobId: r.jobId, workerId: "w-one", attempt: 1, epoch: 7 }, subject),
      m2.master.append("job.assigned", { jobId: r.jobId, workerId: "w-two", attempt: 1, epoch: 7 }, subject),
    ]);
    expect(results.map((x) => x.status).sort()).toEqual(["fulfilled", "rejected"]);
    const rejected = results.find((x) => x.status === "rejected") as PromiseRejectedResult;
    expect(String(rejected.reason)).toMatch(/wrong last sequence/i);
    expect(m1.master.counters.guardConflicts + m2.master.counters.guardConflicts).toBe(1);
    const log = await readLog(ui);
    expect(log.filter((l) => l.event.type === "job.assigned" && l.event.data.jobId === r.jobId)).toHaveLength(1);
    expect(foldJobs(log).jobs.get(r.jobId)?.status).toBe("assigned");
  });
});

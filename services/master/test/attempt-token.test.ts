import { jetstream } from "@nats-io/jetstream";
import { createEvent, sha256Hex, type TroupeEvent } from "@troupe/events";
import { publishEvent } from "@troupe/events/node";
import { waitFor } from "@troupe/tests/harness";
import { describe, expect, it } from "vitest";
import { fakeWorker, foldJobs, masterSuite, readLog, submit, jobIdOf } from "./helpers.ts";
import { lookupJob } from "../src/state.ts";

const suite = masterSuite("m-token");
const status = (id: string) => lookupJob(suite.master.master.state, id)?.status;

describe("attempt tokens (docs/security.md)", () => {
  it("gives a token-taking worker a secret per attempt and folds its events only with it; a forged completion in its name is refused", async () => {
    const w = await fakeWorker(suite.nats, { id: "w-token", slots: 1, behaviour: () => ({ kind: "hang" }) });
    suite.workers.push(w);
    const id = jobIdOf(await submit(suite.ui, { url: "https://example.com/token" }));
    await waitFor("running on w-token", () => status(id) === "running");
    const token = w.accepted.find((a) => a.jobId === id)?.token;
    expect(token).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const assigned = (await readLog(suite.ui)).find((l) => l.event.type === "job.assigned" && l.event.data.jobId === id)?.event;
    // The log keeps only the hash: a credential that reads it still cannot answer for the attempt.
    expect(assigned?.type === "job.assigned" && assigned.data.tokenHash).toBe(sha256Hex(token as string));
    expect(JSON.stringify(assigned)).not.toContain(token);
    const before = suite.master.master.state.rejected.get("wrong-token") ?? 0;
    // Another worker credential, in w-token's name, with the right ids and no token.
    const forged = createEvent("job.completed", { jobId: id, workerId: "w-token", attempt: 1, result: { success: true, data: { forged: true }, dataExtracted: 1, screenshots: [], logs: [] }, metrics: { totalDuration: 1, responseTime: 1, memoryUsed: 1 } }, "w-token") as TroupeEvent;
    await publishEvent(jetstream(await suite.nats.connect("worker", "forger")), forged);
    await waitFor("the forgery refused", () => (suite.master.master.state.rejected.get("wrong-token") ?? 0) > before);
    expect(status(id)).toBe("running");
    await w.complete(id);
    await waitFor("completed by its worker", () => status(id) === "completed");
    // Folded from the log by another reader (the projector's reducer): the worker's completion, not the forgery.
    const { jobs, rejected } = foldJobs(await readLog(suite.ui));
    expect(jobs.get(id)?.result?.data).toEqual({});
    expect(rejected).toEqual([expect.objectContaining({ reason: "wrong-token" })]);
  });

  it("assigns to a worker older than tokens without one, and folds its tokenless events", async () => {
    const w = await fakeWorker(suite.nats, { id: "w-old", slots: 1, tokens: false });
    suite.workers.push(w);
    const id = jobIdOf(await submit(suite.ui, { url: "https://example.com/old-worker" }));
    await waitFor("completed", () => status(id) === "completed");
    expect(w.accepted.find((a) => a.jobId === id)?.token).toBeUndefined();
    const assigned = (await readLog(suite.ui)).find((l) => l.event.type === "job.assigned" && l.event.data.jobId === id)?.event;
    expect(assigned?.type === "job.assigned" && assigned.data.tokenHash).toBeUndefined();
  });

});

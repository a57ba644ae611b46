import { waitFor } from "@troupe/tests/harness";
import { describe, expect, it } from "vitest";
import { fakeWorker, masterSuite, submit, jobIdOf } from "./helpers.ts";
import { lookupJob } from "../src/state.ts";

/** `--require-attempt-tokens`: once every worker is upgraded, no attempt goes to a worker whose events could be forged. */
const suite = masterSuite("m-require-tokens", { requireAttemptTokens: true });
const status = (id: string) => lookupJob(suite.master.master.state, id)?.status;

describe("a master that requires attempt tokens", () => {
  it("gives no job to a worker older than tokens, and gives it to one that takes them", async () => {
    const old = await fakeWorker(suite.nats, { id: "w-tokenless", slots: 2, tokens: false });
    suite.workers.push(old);
    await waitFor("the old worker registered", () => suite.master.master.state.workers.get("w-tokenless")?.lifecycle === "online");
    const id = jobIdOf(await submit(suite.ui, { url: "https://example.com/needs-a-token" }));
    // The dispatch after the submission looked at the old worker and passed it over (the only worker there). Any
    // dispatch marks it (the one after its registration too): the job must be folded and still waiting as well.
    await waitFor("the job queued and the old worker passed over", () => status(id) === "queued" && suite.master.master.tokenlessSkipped.has("w-tokenless"));
    expect(old.accepted).toEqual([]);
    const current = await fakeWorker(suite.nats, { id: "w-tokened", slots: 1 });
    suite.workers.push(current);
    await waitFor("completed by the worker that takes tokens", () => status(id) === "completed");
    expect(current.accepted.map((a) => a.jobId)).toEqual([id]);
    expect(current.accepted[0]?.token).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(old.accepted).toEqual([]);
  });

  it("backs a job off once every worker it may ask refused it, however many tokenless workers are online (they are not asked)", async () => {
    const old = await fakeWorker(suite.nats, { id: "w-tokenless-2", slots: 2, tokens: false });
    const grumpy = await fakeWorker(suite.nats, { id: "w-refuses", slots: 2, behaviour: () => ({ kind: "refuse", reason: "cpu" }) });
    suite.workers.push(old, grumpy);
    await waitFor("both registered", () => ["w-tokenless-2", "w-refuses"].every((id) => suite.master.master.state.workers.get(id)?.lifecycle === "online"));
    const id = jobIdOf(await submit(suite.ui, { url: "https://example.com/refused-by-all-who-may" }));
    // Refused by the one worker it may ask: requeued with a back-off, not asked again at once (a refusal costs two log entries).
    const job = await waitFor("requeued with a back-off", () => {
      const j = lookupJob(suite.master.master.state, id);
      return j?.status === "requeued" && j.notBefore !== undefined && Date.parse(j.notBefore) > Date.parse(j.updatedAt) ? j : undefined;
    });
    expect(Date.parse(job.notBefore!) - Date.parse(job.updatedAt)).toBeGreaterThanOrEqual(50);
    expect(old.accepted).toEqual([]);
  });
});

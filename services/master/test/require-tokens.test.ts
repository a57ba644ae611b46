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
    // The dispatch after the submission looked at the old worker and passed it over (the only worker there).
    await waitFor("the old worker passed over", () => suite.master.master.tokenlessSkipped.has("w-tokenless"));
    expect(status(id)).toBe("queued");
    const current = await fakeWorker(suite.nats, { id: "w-tokened", slots: 1 });
    suite.workers.push(current);
    await waitFor("completed by the worker that takes tokens", () => status(id) === "completed");
    expect(current.accepted.map((a) => a.jobId)).toEqual([id]);
    expect(current.accepted[0]?.token).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(old.accepted).toEqual([]);
  });
});

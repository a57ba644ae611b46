import { jetstream } from "@nats-io/jetstream";
import { createEvent, decodeCommand, jobSpecFromSubmit } from "@troupe/events";
import { publishEvent } from "@troupe/events/node";
import { waitFor } from "@troupe/tests/harness";
import { describe, expect, it } from "vitest";
import { command, jobIdOf, masterSuite, submit } from "./helpers.ts";
import { lookupJob } from "../src/state.ts";

/** Commands racing for one job: the loser is told the job changed (a conflict), not that the master cannot write. */
// A long leader lease: the flood below shares this process's event loop with the master, and a loaded run saw a 1 s
// lease lapse meanwhile (the cancel was answered "not the leader", rightly, but not what is tested here).
const suite = masterSuite("m-command-race", { leaderLeaseMs: 10_000 });

describe("commands racing for one job", () => {
  it("four cancels at once: one records it, the others are conflicts (they were 'unavailable', which stopped bulk runs)", async () => {
    for (let round = 0; round < 5; round++) {
      const id = jobIdOf(await submit(suite.ui, { url: `https://example.com/race-${round}`, workerLabels: ["nobody-has-this"] }));
      const replies = await Promise.all(Array.from({ length: 4 }, () => command(suite.ui, "jobs.cancel", { jobId: id })));
      expect(replies.filter((r) => r.ok)).toHaveLength(1);
      for (const r of replies) if (!r.ok) expect(r.error.code, JSON.stringify(r)).toBe("conflict");
      await waitFor("the cancellation folded", () => lookupJob(suite.master.master.state, id)?.status === "cancelled", 15_000, 10);
    }
  });

  it("a cancel of a job whose submission the fold has not read yet waits for it instead of answering 'no job' (a loaded CI run)", async () => {
    const js = jetstream(await suite.nats.connect("master", "flood"));
    const cmd = decodeCommand("jobs.submit", JSON.stringify({ url: "https://example.com/flood", workerLabels: ["nobody-has-this"] }));
    if (!cmd.ok) throw new Error(cmd.error.message);
    const spec = jobSpecFromSubmit(cmd.value);
    // Many submissions appended at once put the fold behind; the last one is cancelled as soon as it is stored.
    const ids = Array.from({ length: 3000 }, (_, i) => `j-flood-${i}`);
    await Promise.all(ids.map((jobId) => publishEvent(js, createEvent("job.submitted", { jobId, spec, submittedBy: "test" }, "master"), { subjects: suite.master.master.subjects })));
    const last = ids.at(-1)!;
    const reply = await command(suite.ui, "jobs.cancel", { jobId: last });
    expect(reply).toEqual({ ok: true });
    // The reply comes once the cancellation is stored, maybe before the master folds it (a fresh-clone run read
    // "queued" right after it): the fold reaches it.
    await waitFor("the cancellation folded", () => lookupJob(suite.master.master.state, last)?.status === "cancelled", 15_000, 10);
  });
});

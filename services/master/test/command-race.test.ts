import { describe, expect, it } from "vitest";
import { command, jobIdOf, masterSuite, submit } from "./helpers.ts";
import { lookupJob } from "../src/state.ts";

/** Commands racing for one job: the loser is told the job changed (a conflict), not that the master cannot write. */
const suite = masterSuite("m-command-race");

describe("commands racing for one job", () => {
  it("four cancels at once: one records it, the others are conflicts (they were 'unavailable', which stopped bulk runs)", async () => {
    for (let round = 0; round < 5; round++) {
      const id = jobIdOf(await submit(suite.ui, { url: `https://example.com/race-${round}`, workerLabels: ["nobody-has-this"] }));
      const replies = await Promise.all(Array.from({ length: 4 }, () => command(suite.ui, "jobs.cancel", { jobId: id })));
      expect(replies.filter((r) => r.ok)).toHaveLength(1);
      for (const r of replies) if (!r.ok) expect(r.error.code, JSON.stringify(r)).toBe("conflict");
      expect(lookupJob(suite.master.master.state, id)?.status).toBe("cancelled");
    }
  });
});

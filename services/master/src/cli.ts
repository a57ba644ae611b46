import { defineCommand } from "@troupe/events/node";

/** Placeholder until issue #4 lands: help works, running says so. */
export const command = defineCommand({
  name: "master",
  summary: "run the master: job queue, assignment, liveness, retries (not implemented yet: issue #4)",
  options: {},
  async run() {
    console.error("troupe master: not implemented yet (issue #4)");
    return 2;
  },
});

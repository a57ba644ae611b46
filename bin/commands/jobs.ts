import { defineCommand } from "@troupe/events/node";

/** Placeholder until issue #6 lands: help works, running says so. */
export const command = defineCommand({
  name: "jobs",
  summary: "list jobs (not implemented yet: issue #6)",
  options: {},
  async run() {
    console.error("troupe jobs: not implemented yet (issue #6)");
    return 2;
  },
});

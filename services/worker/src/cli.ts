import { defineCommand } from "@troupe/events/node";

/** Placeholder until issue #3 lands: help works, running says so. */
export const command = defineCommand({
  name: "worker",
  summary: "run a worker (not implemented yet: issue #3)",
  options: {},
  async run() {
    console.error("troupe worker: not implemented yet (issue #3)");
    return 2;
  },
});

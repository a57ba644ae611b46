import { defineCommand } from "@troupe/events/node";

/** Placeholder until issue #4 lands: help works, running says so. */
export const command = defineCommand({
  name: "submit",
  summary: "submit a job (JSON file or --url), --wait to follow it (not implemented yet: issue #4)",
  options: {},
  async run() {
    console.error("troupe submit: not implemented yet (issue #4)");
    return 2;
  },
});

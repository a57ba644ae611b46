import { defineCommand } from "@troupe/events/node";

/** Placeholder until issue #5 lands: help works, running says so. */
export const command = defineCommand({
  name: "projector",
  summary: "run the projector (not implemented yet: issue #5)",
  options: {},
  async run() {
    console.error("troupe projector: not implemented yet (issue #5)");
    return 2;
  },
});
export const replayCommand = { ...command, name: "replay" };

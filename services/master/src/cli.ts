import { defineCommand } from "@troupe/events/node";
import { masterOptions } from "./config.ts";

export const command = defineCommand({
  name: "master",
  summary: "run the master: job queue, assignment, liveness, retries, leader election, GET /metrics",
  options: masterOptions,
  details: "Several masters may run: one leads (KV bucket troupe-master), the others stand by with their state warm. See docs/master.md.",
  async run({ values }) {
    const { main } = await import("./main.ts");
    return main(values);
  },
});

/** The Troupe contract, usable in Node and in the browser. Node-only helpers: `@troupe/events/node`. */
export * from "./ids.ts";
export * from "./subjects.ts";
export * from "./errors.ts";
export * from "./payloads.ts";
export * from "./labels.ts";
export * from "./scenario.ts";
export * from "./events.ts";
export * from "./commands.ts";
export * from "./codec.ts";
export * from "./command-codec.ts";
export * from "./views/job.ts";
export * from "./describe.ts";
export * from "./views/worker.ts";
export * from "./views/series.ts";
export * from "./views/fleet.ts";
export * from "./views/read.ts";
export * from "./sha256.ts";

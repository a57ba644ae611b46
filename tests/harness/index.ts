export * from "./nats.ts";
export * from "./wait.ts";
export * from "./process.ts";

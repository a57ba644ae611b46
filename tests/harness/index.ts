export * from "./nats.ts";
export * from "./wait.ts";

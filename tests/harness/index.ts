export * from "./nats.ts";
export * from "./wait.ts";
export * from "./process.ts";
export * from "./latency-proxy.ts";
export * from "./ws-login.ts";

import { parseOptions } from "@troupe/events/node";
import { describe, expect, it } from "vitest";
import { masterConfig, masterOptions } from "./config.ts";

const config = (argv: string[], env: Record<string, string> = {}) => masterConfig(parseOptions(masterOptions, argv, { TROUPE_DATA_DIR: "/nonexistent-troupe-data", ...env }).values, () => "m-test", { ...env });

describe("masterConfig", () => {
  it("requires attempt tokens only when told, by flag or variable", () => {
    expect(config([]).requireAttemptTokens).toBeUndefined();
    expect(config(["--require-attempt-tokens"]).requireAttemptTokens).toBe(true);
    expect(config([], { TROUPE_REQUIRE_ATTEMPT_TOKENS: "1" }).requireAttemptTokens).toBe(true);
    expect(config([], { TROUPE_REQUIRE_ATTEMPT_TOKENS: "false" }).requireAttemptTokens).toBeUndefined();
    expect(() => config([], { TROUPE_REQUIRE_ATTEMPT_TOKENS: "sometimes" })).toThrow(/TROUPE_REQUIRE_ATTEMPT_TOKENS/);
  });
});

describe("the master's heartbeat interval", () => {
  it("is --heartbeat-interval, or --heartbeat-ms as the worker and `troupe up` name it, or TROUPE_HEARTBEAT_MS", () => {
    expect(config([]).heartbeatIntervalMs).toBe(30_000);
    expect(config(["--heartbeat-ms", "10000"]).heartbeatIntervalMs).toBe(10_000);
    expect(config(["--heartbeat-interval", "12000"]).heartbeatIntervalMs).toBe(12_000);
    expect(config([], { TROUPE_HEARTBEAT_MS: "15000" }).heartbeatIntervalMs).toBe(15_000);
  });
});

import { parseOptions, UsageError } from "@troupe/events/node";
import { describe, expect, it } from "vitest";
import { describeConfig, resolveConfig, workerOptions } from "./config.ts";

const detected = { ip: () => "10.0.0.7", memoryMb: () => 2048 };
const config = (argv: string[], env: Record<string, string> = {}) => resolveConfig(parseOptions(workerOptions, argv, env).values, detected);

describe("worker config", () => {
  it("derives the worker id from the name", () => {
    expect(config(["--name", "Worker Node Demo 01"]).workerId).toBe("wn-demo-01");
    expect(config([], { TROUPE_WORKER_NAME: "Worker Node US-East-1" }).workerId).toBe("wn-us-east-1");
    expect(config(["--name", "Worker Node Demo 01"], { TROUPE_WORKER_ID: "custom-1" }).workerId).toBe("custom-1");
  });
  it("takes every value from a flag or a TROUPE_* variable, flags first", () => {
    const c = config(["--max-jobs", "4", "--heartbeat-ms", "1000"], { TROUPE_MAX_JOBS: "8", TROUPE_WORKER_IP: "203.0.113.9", TROUPE_ALLOWED_TARGETS: "Intranet.local, 10.0.0.0/8", TROUPE_ALLOW_SCRIPT_STEPS: "yes" });
    expect(c).toMatchObject({ maxJobs: 4, heartbeatMs: 1000, ip: "203.0.113.9", allowedTargets: ["intranet.local", "10.0.0.0/8"], allowScriptSteps: true, allowPrivateTargets: false });
  });
  it("defaults: status port 3002 with scanning, detected IP and memory, 30 s heartbeat", () => {
    expect(config([])).toMatchObject({ port: 3002, scanPorts: true, ip: "10.0.0.7", memoryMb: 2048, heartbeatMs: 30_000, type: "puppeteer" });
    expect(config(["--port", "4000"])).toMatchObject({ port: 4000, scanPorts: false });
  });
  it("rejects bad values naming the flag or variable", () => {
    expect(() => config(["--max-jobs", "0"])).toThrow(/--max-jobs: must be at least 1/);
    expect(() => config([], { TROUPE_HEARTBEAT_MS: "soon" })).toThrow(/TROUPE_HEARTBEAT_MS: expected a whole number/);
    expect(() => config(["--id", "bad id!"])).toThrow(UsageError);
    expect(() => config(["--name", "!!!"])).toThrow(/derived from the name "!!!".*--id/);
    expect(() => config([], { TROUPE_ALLOWED_TARGETS: "10.0.0.0/99" })).toThrow(/TROUPE_ALLOWED_TARGETS.*not a valid CIDR/);
  });
  it("reads labels from --labels / TROUPE_WORKER_LABELS (trimmed, once each) and refuses a bad one, naming it", () => {
    expect(config([]).labels).toEqual([]);
    expect(config([], { TROUPE_WORKER_LABELS: " region=eu, residential ,region=eu," }).labels).toEqual(["region=eu", "residential"]);
    expect(() => config(["--labels", "eu,has space"])).toThrow(/--labels \[TROUPE_WORKER_LABELS\]: invalid label "has space"/);
    // Commas alone meant labels and gave none, silently; empty is still none.
    expect(() => config([], { TROUPE_WORKER_LABELS: ",," })).toThrow(/--labels \[TROUPE_WORKER_LABELS\]: no label in ",,": labels are comma-separated/);
    expect(config([], { TROUPE_WORKER_LABELS: "" }).labels).toEqual([]);
    expect(describeConfig(config(["--labels", "region=eu,gpu"]))).toMatch(/Labels:\s+region=eu, gpu/);
  });
  it("takes screenshots at failures unless TROUPE_FAILURE_SCREENSHOTS / --failure-screenshots says off, and refuses another value, naming it", () => {
    expect(config([]).failureScreenshots).toBe(true);
    expect(config([], { TROUPE_FAILURE_SCREENSHOTS: "off" }).failureScreenshots).toBe(false);
    expect(config(["--no-failure-screenshots"]).failureScreenshots).toBe(false);
    expect(config(["--failure-screenshots=on"], { TROUPE_FAILURE_SCREENSHOTS: "off" }).failureScreenshots).toBe(true);
    expect(() => config([], { TROUPE_FAILURE_SCREENSHOTS: "sometimes" })).toThrow(/^TROUPE_FAILURE_SCREENSHOTS: expected true or false, got "sometimes"$/);
    expect(describeConfig(config([], { TROUPE_FAILURE_SCREENSHOTS: "off" }))).toMatch(/Screenshots:\s+none at failures/);
    expect(describeConfig(config([]))).not.toMatch(/Screenshots:/);
  });
  it("prints the seed's banner: name, type, IP, max jobs, memory", () => {
    const text = describeConfig(config(["--name", "Worker Node Demo 01", "--max-jobs", "3"]));
    expect(text).toMatch(/Name:\s+Worker Node Demo 01/);
    expect(text).toMatch(/ID:\s+wn-demo-01/);
    expect(text).toMatch(/Type:\s+puppeteer/);
    expect(text).toMatch(/IP:\s+10\.0\.0\.7/);
    expect(text).toMatch(/Max jobs:\s+3/);
    expect(text).toMatch(/Memory:\s+2048 MiB/);
  });
});

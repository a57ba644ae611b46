import type { Command } from "@troupe/events";
import { describe, expect, it } from "vitest";
import { admit, type AdmissionState } from "./admission.ts";

const cmd = (over: Partial<Command<"worker.assign">> = {}, spec: Partial<Command<"worker.assign">["spec"]> = {}): Command<"worker.assign"> => ({
  jobId: "j1", attempt: 1, epoch: 3,
  spec: { url: "https://example.com", priority: 5, maxAttempts: 3, timeoutMs: 60_000, ...spec },
  ...over,
});
const state = (over: Partial<AdmissionState> = {}): AdmissionState => ({
  draining: false, maxJobs: 2, running: new Map(), load: { cpuUsage: 10, availableMemoryMb: 4000 },
  maxCpu: 90, minFreeMemoryMb: 256, allowScriptSteps: false, labels: [], highestEpoch: 0, ...over,
});

describe("admit", () => {
  it("accepts when a slot is free and the machine is not loaded", () => {
    expect(admit(cmd(), state())).toEqual({ accepted: true });
    expect(admit(cmd(), state({ load: null }))).toEqual({ accepted: true });
  });
  it("refuses with each reason", () => {
    expect(admit(cmd(), state({ draining: true }))).toMatchObject({ accepted: false, reason: "draining" });
    expect(admit(cmd(), state({ running: new Map([["a", 1], ["b", 1]]) }))).toMatchObject({ accepted: false, reason: "full" });
    expect(admit(cmd(), state({ load: { cpuUsage: 97, availableMemoryMb: 4000 } }))).toMatchObject({ accepted: false, reason: "cpu" });
    // Just above the limit reads as above it (it read "CPU usage 95% is above 95%").
    expect(admit(cmd(), state({ maxCpu: 95, load: { cpuUsage: 95.3, availableMemoryMb: 4000 } }))).toMatchObject({ accepted: false, reason: "cpu", message: "CPU usage 95.3% is above 95%" });
    expect(admit(cmd(), state({ load: { cpuUsage: 5, availableMemoryMb: 100 } }))).toMatchObject({ accepted: false, reason: "memory" });
    expect(admit(cmd({}, { browser: "firefox" }), state())).toMatchObject({ accepted: false, reason: "unsupported-browser", field: "spec.browser" });
    expect(admit(cmd({ attempt: 2 }), state({ running: new Map([["j1", 1]]) }))).toMatchObject({ accepted: false, reason: "duplicate" });
    expect(admit(cmd({ epoch: 1 }), state({ highestEpoch: 2 }))).toMatchObject({ accepted: false, reason: "invalid", field: "epoch" });
  });
  it("refuses a job that wants a label this worker lacks, naming what is missing; takes one whose labels it has", () => {
    expect(admit(cmd({}, { workerLabels: ["region=eu", "residential"] }), state({ labels: ["region=eu"] })))
      .toMatchObject({ accepted: false, reason: "labels", field: "spec.workerLabels", message: "the job wants label residential; this worker has region=eu" });
    expect(admit(cmd({}, { workerLabels: ["gpu"] }), state())).toMatchObject({ accepted: false, reason: "labels", message: expect.stringMatching(/this worker has none$/) });
    expect(admit(cmd({}, { workerLabels: ["region=eu"] }), state({ labels: ["residential", "region=eu"] }))).toEqual({ accepted: true });
    expect(admit(cmd(), state({ labels: ["region=eu"] }))).toEqual({ accepted: true });
  });
  it("accepts a re-sent request for the attempt it already runs", () => {
    expect(admit(cmd(), state({ running: new Map([["j1", 1]]), draining: true }))).toEqual({ accepted: true });
  });
  it("refuses page-JavaScript steps unless allowed, naming the step", () => {
    const spec = { url: undefined, scenario: { steps: [{ type: "navigate" as const, url: "https://e.com" }, { type: "waitForExpression" as const, expression: "1" }] } };
    expect(admit(cmd({}, spec), state())).toMatchObject({ accepted: false, reason: "invalid", field: "spec.scenario.steps[1].type" });
    expect(admit(cmd({}, spec), state({ allowScriptSteps: true }))).toEqual({ accepted: true });
  });
});

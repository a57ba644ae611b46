import { createEvent, encodeCheckedEvent, MAX_EVENT_BYTES, type LogEntry, type TroupeEvent } from "@troupe/events";
import { describe, expect, it } from "vitest";
import { fitCompleted, fitFailed, jsonBytes, limitLogs, type CompletedData, type FailedData } from "./event-fit.ts";

const T = "2026-01-01T00:00:00.000Z";
const entry = (i: number, len = 100, fill = "x"): LogEntry => ({ time: T, level: "error", message: `${i}`.padEnd(len, fill).slice(0, 4000), source: "console" });
const base = { jobId: "job-fit", workerId: "wn-fit-01", attempt: 3, token: "t".repeat(22) };
/** The event's size as the worker's publish encodes and checks it (size limit and schema: what refused the real page's event). */
function encodedBytes(type: "job.completed" | "job.failed", data: object): number {
  const r = encodeCheckedEvent(createEvent(type, { ...base, ...data } as never, "wn-fit-01") as TroupeEvent);
  if (!r.ok) throw new Error(`refused: ${r.error.message}`);
  return r.bytes.length;
}

/** 20 console errors of 3990 control characters: 64 kB of characters, 360 kB of JSON (a real page did this). */
const controlLogs = Array.from({ length: 20 }, (_, i) => entry(i, 3990, "\x01"));
const cjkLogs = Array.from({ length: 20 }, (_, i) => entry(i, 3990, "错"));
/** 80 optional steps whose errors each quote a 4000-character title. */
const longSteps = Array.from({ length: 80 }, (_, index) => ({ index, type: "assert", status: "skipped" as const, durationMs: 1, error: `title ${"\x02".repeat(3990)}` }));

const completed = (over: Partial<CompletedData["result"]> = {}): CompletedData => ({
  result: { success: true, data: { h: "x" }, dataExtracted: 1, screenshots: [], logs: [], ...over },
  metrics: { totalDuration: 10, responseTime: 5, memoryUsed: 1 },
});
const failed = (over: Partial<FailedData> = {}): FailedData => ({ error: { message: "step 3 failed", code: "assertion", retryable: false }, logs: [], ...over });

describe("limitLogs", () => {
  it("keeps logs that fit", () => {
    const logs = [entry(1), entry(2)];
    expect(limitLogs(logs)).toEqual(logs);
  });
  it("keeps the first entries within the byte budget and says how many were dropped", () => {
    const out = limitLogs(Array.from({ length: 100 }, (_, i) => entry(i, 1000)), 10_000);
    expect(out).toHaveLength(10);
    expect(out.at(-1)).toMatchObject({ level: "warn", source: "worker", message: "91 more log entries dropped (event size limit)" });
  });
  it("counts bytes of JSON, not characters: a control character costs six", () => {
    const out = limitLogs(controlLogs, 64_000);
    expect(jsonBytes(out)).toBeLessThanOrEqual(64_000 + 200);
    expect(out.length).toBeLessThan(5);
  });
});

describe("fitCompleted", () => {
  it("leaves an event that fits as it is", () => {
    const d = completed({ logs: [entry(1)], steps: [{ index: 0, type: "navigate", status: "ok", durationMs: 3 }] });
    expect(fitCompleted(d)).toEqual(d);
  });

  it.each([
    ["console errors of control characters", { logs: controlLogs }],
    ["console errors in Chinese beside 100 kB of extracted data", { logs: cjkLogs, data: { body: "x".repeat(100_000) } }],
    ["80 step errors of 4000 characters", { steps: longSteps }],
    ["all of them", { logs: controlLogs, steps: longSteps, data: { body: "错".repeat(40_000) } }],
  ])("shrinks an event that would not fit (%s) until it does, keeping the data and screenshots", (_name, over) => {
    const d = completed({ ...over, screenshots: ["job-fit/3/000-page.png"] });
    expect(jsonBytes(d)).toBeGreaterThan(MAX_EVENT_BYTES);
    const fit = fitCompleted(d);
    expect(fit).not.toBeNull();
    expect(encodedBytes("job.completed", fit!)).toBeLessThanOrEqual(MAX_EVENT_BYTES);
    expect(fit!.result.data).toEqual(d.result.data);
    expect(fit!.result.screenshots).toEqual(d.result.screenshots);
    expect(fit!.result.steps?.length ?? 0).toBe(d.result.steps?.length ?? 0);
    // What was dropped is said.
    if (d.result.logs.length) expect(fit!.result.logs.at(-1)?.message).toMatch(/more log entries dropped/);
  });

  it("keeps the first 500 step timings (a url and 500 scenario steps make 501), and gives up on more than 100 screenshot names", () => {
    const steps = Array.from({ length: 501 }, (_, index) => ({ index, type: "wait", status: "ok" as const, durationMs: 1 }));
    const fit = fitCompleted(completed({ steps }));
    expect(fit!.result.steps).toHaveLength(500);
    expect(encodedBytes("job.completed", fit!)).toBeLessThanOrEqual(MAX_EVENT_BYTES);
    expect(fitCompleted(completed({ screenshots: Array.from({ length: 101 }, (_, i) => `j/1/${i}.png`) }))).toBeNull();
    const f = fitFailed(failed({ steps, screenshots: Array.from({ length: 101 }, (_, i) => `j/1/${i}.png`) }));
    expect([f.steps?.length, f.screenshots?.length]).toEqual([500, 100]);
    expect(encodedBytes("job.failed", f)).toBeLessThanOrEqual(MAX_EVENT_BYTES);
  });

  it("gives up (null) when the data itself leaves no room", () => {
    expect(fitCompleted(completed({ data: { body: "\x01".repeat(50_000) } }))).toBeNull();
  });
});

describe("fitFailed", () => {
  it("leaves an event that fits as it is", () => {
    const d = failed({ logs: [entry(1)] });
    expect(fitFailed(d)).toEqual(d);
  });

  it("always fits: logs, step errors and an 8000-character error of control characters are cut, the code, step and screenshots kept", () => {
    const d = failed({
      error: { message: "\x03".repeat(8000), code: "timeout", retryable: true, step: { index: 4, type: "assert" } },
      logs: [...controlLogs, ...cjkLogs].slice(0, 40),
      steps: Array.from({ length: 500 }, (_, index) => ({ index, type: "assert", name: "\x04".repeat(200), status: "failed" as const, durationMs: 1, error: "\x05".repeat(4000) })),
      screenshots: Array.from({ length: 100 }, (_, i) => `job-fit/3/${String(i).padStart(3, "0")}-${"p".repeat(280)}.png`),
    });
    expect(jsonBytes(d)).toBeGreaterThan(10 * MAX_EVENT_BYTES);
    const fit = fitFailed(d);
    expect(encodedBytes("job.failed", fit)).toBeLessThanOrEqual(MAX_EVENT_BYTES);
    expect(fit.error).toMatchObject({ code: "timeout", retryable: true, step: { index: 4, type: "assert" } });
    expect(fit.screenshots).toEqual(d.screenshots);
    expect(fit.steps).toHaveLength(500);
    expect(fit.logs?.at(-1)?.message).toBe("40 more log entries dropped (event size limit)");
  });
});

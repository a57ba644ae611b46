import { describe, expect, it } from "vitest";
import type { JobView } from "@troupe/events";
import { canRun, pickWorker, presenceOf, type Candidate } from "./scheduler.ts";
import type { WorkerView } from "./state.ts";

const cfg = { heartbeatIntervalMs: 1000 };
const w = (id: string, o: Partial<WorkerView> = {}): WorkerView => ({ id, lifecycle: "online", maxSlots: 2, browsers: ["chromium"], cpu: 10, lastSeenMs: 0, held: new Set(), ...o });
const job = (browser?: string) => ({ id: "j", spec: { url: "https://x.io", priority: 5, maxAttempts: 3, timeoutMs: 60_000, ...(browser ? { browser } : {}) } }) as JobView;
const cand = (worker: WorkerView, load = 0, lastPickedMs = 0): Candidate => ({ worker, load, lastPickedMs });

describe("presenceOf", () => {
  it("goes suspect after 2 missed intervals and lost after 3", () => {
    const x = w("x");
    expect(presenceOf(x, 1999, cfg)).toBe("online");
    expect(presenceOf(x, 2001, cfg)).toBe("suspect");
    expect(presenceOf(x, 3001, cfg)).toBe("lost");
    expect(presenceOf(w("y", { held: new Set(["j"]) }), 10, cfg)).toBe("busy");
  });
  it("judges a worker that says it heartbeats slower by its own interval, never by a shorter one", () => {
    const slow = w("slow", { heartbeatMs: 3000 });
    expect(presenceOf(slow, 3001, cfg)).toBe("online"); // lost by the master's 1 s setting, fine by its own 3 s
    expect(presenceOf(slow, 6001, cfg)).toBe("suspect");
    expect(presenceOf(slow, 9001, cfg)).toBe("lost");
    expect(presenceOf(w("fast", { heartbeatMs: 100 }), 1999, cfg)).toBe("online");
    // A stated hour counts as 10 minutes: lost after 30 of silence, not 3 hours.
    expect(presenceOf(w("sleepy", { heartbeatMs: 3_600_000 }), 1_800_001, cfg)).toBe("lost");
  });
  it("keeps a deregistered worker offline, never lost", () => {
    expect(presenceOf(w("x", { lifecycle: "offline" }), 1e9, cfg)).toBe("offline");
    expect(presenceOf(w("x", { lifecycle: "draining" }), 10, cfg)).toBe("draining");
  });
});

describe("pickWorker", () => {
  it("takes the worker with most free slots, then least CPU, then least recently picked", () => {
    expect(pickWorker(job(), [cand(w("a"), 1), cand(w("b"), 0)], 10, cfg)?.worker.id).toBe("b");
    expect(pickWorker(job(), [cand(w("a", { cpu: 50 })), cand(w("b", { cpu: 5 }))], 10, cfg)?.worker.id).toBe("b");
    expect(pickWorker(job(), [cand(w("a"), 0, 20), cand(w("b"), 0, 10)], 10, cfg)?.worker.id).toBe("b");
  });
  it("skips full, draining, silent, excluded and wrong-browser workers", () => {
    const none = [
      cand(w("full"), 2), cand(w("draining", { lifecycle: "draining" })), cand(w("suspect", { lastSeenMs: -5000 })),
      cand(w("refused")), cand(w("fox", { browsers: ["firefox"] })),
    ];
    expect(pickWorker(job("chromium"), none, 10, cfg, new Set(["refused"]))).toBeUndefined();
    expect(pickWorker(job("firefox"), none, 10, cfg, new Set(["refused"]))?.worker.id).toBe("fox");
    expect(pickWorker(job("chromium"), [cand(w("unknown", { browsers: null }))], 10, cfg)).toBeUndefined();
    // Known only from heartbeats (never registered): no job at all, not even one that names no browser.
    expect(pickWorker(job(), [cand(w("unknown", { browsers: null }))], 10, cfg)).toBeUndefined();
  });
});

describe("canRun", () => {
  const scriptJob = { id: "js", spec: { priority: 5, maxAttempts: 3, timeoutMs: 60_000, scenario: { steps: [{ type: "navigate", url: "https://x.io" }, { type: "waitForExpression", expression: "window.ready" }] } } } as JobView;
  it("offers a job with a page-JavaScript step only to a worker that runs them (capabilities.scriptSteps)", () => {
    expect(canRun(w("plain"), scriptJob)).toBe(false);
    expect(canRun(w("js", { scriptSteps: true }), scriptJob)).toBe(true);
    // Any other job goes to either.
    expect(canRun(w("plain"), job())).toBe(true);
    expect(canRun(w("js", { scriptSteps: true }), job())).toBe(true);
    expect(pickWorker(scriptJob, [cand(w("plain")), cand(w("js", { scriptSteps: true }), 1)], 10, cfg)?.worker.id).toBe("js");
    expect(pickWorker(scriptJob, [cand(w("plain"))], 10, cfg)).toBeUndefined();
  });
});

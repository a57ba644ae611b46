import { describe, expect, it } from "vitest";
import { JobQueue } from "./queue.ts";

describe("JobQueue", () => {
  it("pops by priority, then submission order", () => {
    const q = new JobQueue();
    const input = [["a", 5, 1], ["b", 9, 2], ["c", 5, 3], ["d", 1, 4], ["e", 9, 5], ["f", 10, 6]] as const;
    for (const [jobId, priority, order] of input) q.push({ jobId, priority, order });
    const out: string[] = [];
    for (let e = q.pop(); e; e = q.pop()) out.push(e.jobId);
    expect(out).toEqual(["f", "b", "e", "a", "c", "d"]);
  });

  it("holds a job once, and can be ordered by time instead", () => {
    const q = new JobQueue((a, b) => a.order < b.order);
    q.push({ jobId: "late", priority: 9, order: 300 });
    q.push({ jobId: "soon", priority: 1, order: 100 });
    q.push({ jobId: "soon", priority: 1, order: 100 });
    expect(q.size).toBe(2);
    expect(q.peek()?.jobId).toBe("soon");
    expect([q.pop()?.jobId, q.pop()?.jobId, q.pop()]).toEqual(["soon", "late", undefined]);
    expect(q.has("soon")).toBe(false);
  });

  it("lets go of discarded jobs: never pops them, counts only the rest, and frees their entries once most are discarded", () => {
    const q = new JobQueue((a, b) => a.order < b.order);
    for (let i = 0; i < 1000; i++) q.push({ jobId: `j${i}`, priority: 5, order: i });
    for (let i = 0; i < 1000; i++) if (i % 10 !== 0) q.discard(`j${i}`);
    q.discard("j9"); // twice: nothing more happens
    q.discard("never-queued");
    expect(q.size).toBe(100);
    expect(q.has("j1")).toBe(false);
    // Most entries were discarded: the heap was rebuilt from the live ones (not kept until each came up).
    expect(q.heapSize).toBeLessThan(200);
    // A discarded job can come back, in its new place.
    q.push({ jobId: "j1", priority: 5, order: 5000 });
    const out: string[] = [];
    for (let e = q.pop(); e; e = q.pop()) out.push(e.jobId);
    expect(out).toEqual([...Array.from({ length: 100 }, (_, i) => `j${i * 10}`), "j1"]);
    expect(q.size).toBe(0);
    expect(q.heapSize).toBe(0);
  });

  it("skips a discarded head in peek and pop when too few are discarded to rebuild", () => {
    const q = new JobQueue((a, b) => a.order < b.order);
    for (const [jobId, order] of [["a", 1], ["b", 2], ["c", 3]] as const) q.push({ jobId, priority: 1, order });
    q.discard("a");
    expect(q.heapSize).toBe(3);
    expect(q.peek()?.jobId).toBe("b");
    expect([q.pop()?.jobId, q.pop()?.jobId, q.pop()]).toEqual(["b", "c", undefined]);
  });
});

describe("BrowserQueues", () => {
  it("pops across browsers by priority, and skips blocked browsers without losing their jobs", async () => {
    const { BrowserQueues } = await import("./queue.ts");
    const q = new BrowserQueues();
    for (let i = 0; i < 1500; i++) q.push({ jobId: `fox-${i}`, priority: 9, order: i }, { browser: "Firefox" });
    q.push({ jobId: "any", priority: 1, order: 2000 }, {});
    q.push({ jobId: "chrome", priority: 5, order: 2001 }, { browser: "chromium" });
    expect(q.pop()?.entry.jobId).toBe("fox-0");
    const blocked = new Set([BrowserQueues.key("firefox")]);
    expect([q.pop(blocked)?.entry.jobId, q.pop(blocked)?.entry.jobId, q.pop(blocked)]).toEqual(["chrome", "any", undefined]);
    expect(q.size).toBe(1499);
    expect(q.pop()).toEqual({ entry: { jobId: "fox-1", priority: 9, order: 1 }, key: BrowserQueues.key("Firefox") });
  });

  it("keys placements unambiguously and lets go of a placement's queue once it is empty", async () => {
    const { BrowserQueues } = await import("./queue.ts");
    expect(BrowserQueues.key("chrome|x")).not.toBe(BrowserQueues.key("chrome", ["x"]));
    expect(BrowserQueues.key("Chrome", ["b", "a", "a"])).toBe(BrowserQueues.key("chrome", ["a", "b"]));
    const q = new BrowserQueues();
    for (let i = 0; i < 100; i++) q.push({ jobId: `j${i}`, priority: 5, order: i }, { workerLabels: [`label-${i}`] });
    for (let i = 0; i < 50; i++) q.discard(`j${i}`, { workerLabels: [`label-${i}`] });
    for (let e = q.pop(); e; e = q.pop());
    expect(q.size).toBe(0);
    expect((q as unknown as { queues: Map<string, unknown> }).queues.size).toBe(0);
  });

  it("keeps a job with a page-JavaScript step in its own placement: blocking it does not block ordinary jobs", async () => {
    const { BrowserQueues } = await import("./queue.ts");
    const script = { scenario: { steps: [{ type: "waitForExpression" as const, expression: "window.ready" }] } };
    const plain = { scenario: { steps: [{ type: "navigate" as const, url: "https://example.com" }] } };
    expect(BrowserQueues.keyOf(script)).not.toBe(BrowserQueues.keyOf(plain));
    expect(BrowserQueues.keyOf(plain)).toBe(BrowserQueues.key(undefined));
    const q = new BrowserQueues();
    q.push({ jobId: "js", priority: 9, order: 1 }, script);
    q.push({ jobId: "plain", priority: 1, order: 2 }, plain);
    const first = q.pop();
    expect(first?.entry.jobId).toBe("js");
    q.push(first!.entry, script);
    expect(q.pop(new Set([first!.key]))?.entry.jobId).toBe("plain");
    q.discard("js", script);
    expect(q.size).toBe(0);
  });
});

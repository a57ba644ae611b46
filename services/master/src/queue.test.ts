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
});

describe("BrowserQueues", () => {
  it("pops across browsers by priority, and skips blocked browsers without losing their jobs", async () => {
    const { BrowserQueues } = await import("./queue.ts");
    const q = new BrowserQueues();
    for (let i = 0; i < 1500; i++) q.push({ jobId: `fox-${i}`, priority: 9, order: i }, "Firefox");
    q.push({ jobId: "any", priority: 1, order: 2000 }, undefined);
    q.push({ jobId: "chrome", priority: 5, order: 2001 }, "chromium");
    expect(q.pop()?.entry.jobId).toBe("fox-0");
    const blocked = new Set(["firefox"]);
    expect([q.pop(blocked)?.entry.jobId, q.pop(blocked)?.entry.jobId, q.pop(blocked)]).toEqual(["chrome", "any", undefined]);
    expect(q.size).toBe(1499);
    expect(q.pop()).toEqual({ entry: { jobId: "fox-1", priority: 9, order: 1 }, key: "firefox" });
  });
});

import { describe, expect, it } from "vitest";
import { assertValidId, isValidId, newId, slugWorkerName } from "./ids.ts";
import { subjects, subjectsFor } from "./subjects.ts";

describe("subjects", () => {
  it("builds and parses every subject kind", () => {
    expect(subjects.job("j-1", "completed")).toBe("troupe.evt.job.j-1.completed");
    expect(subjects.parse(subjects.job("j-1", "completed"))).toEqual({ kind: "job-event", jobId: "j-1", event: "completed" });
    expect(subjects.parse(subjects.worker("wn_1", "lost"))).toEqual({ kind: "worker-event", workerId: "wn_1", event: "lost" });
    expect(subjects.parse(subjects.heartbeat("wn-1"))).toEqual({ kind: "heartbeat", workerId: "wn-1" });
    expect(subjects.parse(subjects.workerCommand("wn-1", "assign"))).toEqual({ kind: "worker-command", workerId: "wn-1", command: "assign" });
    expect(subjects.parse(subjects.rpc("jobs.submit"))).toEqual({ kind: "rpc", rpc: "jobs.submit" });
  });
  it("returns null for foreign or malformed subjects", () => {
    for (const s of ["foo.evt.job.j.completed", "troupe.evt.job.j.exploded", "troupe.evt.job.j", "troupe.hb", "troupe.evt.robot.r.registered", "troupe.rpc.jobs.launch"]) {
      expect(subjects.parse(s)).toBeNull();
    }
  });
  it("refuses ids that would break subject tokens", () => {
    expect(() => subjects.job("a.b", "started")).toThrow(/invalid job id/);
    expect(() => subjects.heartbeat("a*")).toThrow(/invalid worker id/);
    expect(() => subjects.job("", "started")).toThrow();
    expect(() => subjectsFor("bad prefix")).toThrow(/invalid subject prefix/);
  });
  it("supports dotted prefixes", () => {
    const s = subjectsFor("acme.prod");
    expect(s.parse(s.job("j", "dead"))).toEqual({ kind: "job-event", jobId: "j", event: "dead" });
  });
});

describe("ids", () => {
  it("validates tokens and length", () => {
    expect(isValidId("wn-demo-01")).toBe(true);
    expect(isValidId("x".repeat(64))).toBe(true);
    expect(isValidId("x".repeat(65))).toBe(false);
    expect(isValidId("a b")).toBe(false);
    expect(isValidId(3)).toBe(false);
    expect(() => assertValidId("a>b", "--worker-id")).toThrow(/--worker-id: expected an id/);
    expect(isValidId(newId("j"))).toBe(true);
    // Across several refills of the random pool: all distinct, all valid.
    const ids = Array.from({ length: 2000 }, () => newId("e"));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => isValidId(id) && id.length === 22)).toBe(true);
  });
  it("draws every random id character equally often (no modulo bias toward 0-3)", () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) for (const c of newId().slice(9)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(36);
    const mean = (cs: string[]) => cs.reduce((n, c) => n + (counts.get(c) ?? 0), 0) / cs.length;
    // b % 36 over bytes made 0-3 14 % more likely; uniform draws put both means within ~1 % of each other.
    const low = mean(["0", "1", "2", "3"]);
    const rest = mean([..."456789abcdefghijklmnopqrstuvwxyz"]);
    expect(low / rest).toBeGreaterThan(0.95);
    expect(low / rest).toBeLessThan(1.05);
  });
  it("slugs worker names the way the seed shows", () => {
    expect(slugWorkerName("Worker Node Demo 01")).toBe("wn-demo-01");
    expect(slugWorkerName("Worker Node US-East-1")).toBe("wn-us-east-1");
    expect(slugWorkerName("  Scraper #7 (Frankfurt) ")).toBe("scraper-7-frankfurt");
  });
});

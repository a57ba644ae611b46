/**
 * The report's own benchmarks, once each in quick mode: they still run and
 * produce sane figures. Never a speed assertion (speed lives in `pnpm bench`).
 */
import { describe, expect, it } from "vitest";
import { jetstreamGrowth } from "./growth.ts";
import { bench as limits, LIMIT } from "./limits.ts";
import { peerBench, PEER } from "./peer-bullmq.ts";
import type { BenchReport } from "./report.ts";
import { bench as workQueue } from "./work-queue.ts";

const value = (r: BenchReport, name: string) => {
  const f = r.figures.find((x) => x.name === name);
  if (!f) throw new Error(`no figure "${name}" in ${r.bench}: ${r.figures.map((x) => x.name).join(", ")}; notes: ${(r.notes ?? []).join(" | ")}`);
  return f.value;
};

describe("bench quick mode", () => {
  it("limits: JetStream publish/read, request-reply and bare Puppeteer each produce a positive rate", async () => {
    const r = await limits({ quick: true, log: () => {} });
    for (const name of [LIMIT.publish, LIMIT.read, LIMIT.rr1, LIMIT.rrMany, LIMIT.browser1, LIMIT.browser2]) {
      const v = value(r, name);
      expect(v, name).toBeGreaterThan(0);
      expect(Number.isFinite(v), name).toBe(true);
    }
    // A round trip on loopback takes some time, but far less than the 10 s request timeout.
    expect(value(r, LIMIT.rr1p50)).toBeGreaterThan(0);
    expect(value(r, LIMIT.rr1p50)).toBeLessThan(10_000);
  }, 120_000);

  it("peer: BullMQ on a private redis-server runs the dispatch shape and pairs with the dispatch figures", async () => {
    const dispatch: BenchReport = {
      bench: "dispatch",
      params: { jobs: 200, workers: 2, concurrency: 3, inFlight: 32, offeredRate: 100, rateJobs: 50 },
      figures: [{ name: "jobs/s", value: 500, unit: "jobs/s" }, { name: "enqueue→start p50", value: 4, unit: "ms" }, { name: "enqueue→start p99", value: 0.02, unit: "s" }],
    };
    const r = await peerBench({ quick: true, log: () => {}, dispatch });
    expect(r.params).toMatchObject({ jobs: 200, workers: 2, concurrency: 3, inFlight: 32, offeredRate: 100, rateJobs: 50, redis: "appendonly yes, appendfsync everysec" });
    const rate = value(r, PEER.bullmqRate);
    expect(rate).toBeGreaterThan(0);
    expect(value(r, PEER.bullmqP50)).toBeGreaterThanOrEqual(0);
    expect(value(r, PEER.bullmqP99)).toBeGreaterThanOrEqual(value(r, PEER.bullmqP50));
    expect(value(r, PEER.troupeRate)).toBe(500);
    expect(value(r, PEER.troupeP99)).toBe(20);
    expect(value(r, PEER.rateRatio)).toBeCloseTo(500 / rate, 1);
  }, 120_000);

  it("growth: JetStream publish and read per-item cost at 1× and 10× a base, with a verdict", async () => {
    const series = await jetstreamGrowth({ quick: true, log: () => {}, base: 1000, maxMultiplier: 10 });
    expect(series.map((s) => s.name)).toEqual(["jetstream publish", "ordered-consumer read"]);
    for (const s of series) {
      expect(s.points.map((p) => p.size)).toEqual([1000, 10_000]);
      for (const p of s.points) expect(p.perItemUs).toBeCloseTo(1e6 / p.rate);
      expect(s.ratio).toBeGreaterThan(0);
      expect(typeof s.superLinear).toBe("boolean");
    }
  }, 120_000);

  it("work-queue experiment: every job completed and every event folded, with CPU and message counts", async () => {
    const r = await workQueue({ quick: true, log: () => {} });
    expect(r.params).toMatchObject({ jobs: 500, experiment: true, appendsPerJob: 3 });
    expect(value(r, "jobs/s (submit → every event folded), work-queue experiment")).toBeGreaterThan(0);
    expect(value(r, "events folded by the observer per job")).toBe(3);
    // 3 appends per job at least, plus the queue's acks and pulls.
    expect(value(r, "messages into nats-server per job")).toBeGreaterThanOrEqual(3);
    expect(value(r, "nats-server CPU per job")).toBeGreaterThan(0);
  }, 120_000);
});

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCommand, UsageError } from "@troupe/events/node";
import { command as benchCommand } from "../bin/commands/bench.ts";
import { DOC_BEGIN, DOC_END, formatAll, summarise, loadServiceBench, MissingBench, pairUp, renderMarkdown, replaceGenerated, runAll, updateDocs, writeResults, type Outcome } from "./all.ts";
import { LIMIT } from "./limits.ts";
import { fromDispatchReport, PEER } from "./peer-bullmq.ts";
import type { Bench, BenchReport } from "./report.ts";

const report = (bench: string, figures: [string, number, string][], params: BenchReport["params"] = {}): BenchReport => ({
  bench,
  params,
  figures: figures.map(([name, value, unit]) => ({ name, value, unit })),
});

const limitsReport = (publish: number) =>
  report("limits", [[LIMIT.publish, publish, "msgs/s"], [LIMIT.read, 50_000, "msgs/s"], [LIMIT.rrMany, 20_000, "round trips/s"], [LIMIT.browser1, 5, "pages/s"], [LIMIT.browser2, 8, "pages/s"]]);

describe("bench all: orchestration (benches injected, no servers)", () => {
  it("reports a missing bench and a throwing one, goes on with the rest, and pairs figures run by run", async () => {
    let run = 0;
    const dispatch: Bench = async () => report("dispatch", [["jobs/s", 1000 + 1000 * run, "jobs/s"], ["enqueue→start p50", 2, "ms"]], { workers: 3, concurrency: 2, jobs: 500 });
    const load = async (name: string): Promise<Bench> => {
      if (name === "dispatch") return dispatch;
      if (name === "projector") return async () => { throw new Error("projector exploded"); };
      throw new MissingBench(`bench/${name}.ts does not exist yet`);
    };
    const seenShapes: unknown[] = [];
    const r = await runAll({
      runs: 2,
      quick: true,
      log: () => {},
      load,
      limitsBench: async () => limitsReport(run === 0 ? 10_000 : 20_000),
      peerBench: async (o) => {
        const { shape, troupe } = fromDispatchReport(o.dispatch, true);
        seenShapes.push(shape);
        run++;
        return report("peer", [[PEER.bullmqRate, 1000, "jobs/s"], [PEER.rateRatio, (troupe.jobsPerSecond ?? 0) / 1000, "×"]]);
      },
      growth: false,
    });
    expect(r.benches.worker?.map((o) => o.status)).toEqual(["missing", "missing"]);
    expect(r.benches.projector?.map((o) => o.status)).toEqual(["failed", "failed"]);
    expect(r.benches.projector?.[0]?.error).toMatch(/projector exploded/);
    expect(r.benches.dispatch?.map((o) => o.status)).toEqual(["ok", "ok"]);
    // The peer got each run's own dispatch shape.
    const shape = { jobs: 500, workers: 3, concurrency: 2, inFlight: 256, offeredRate: 200, rateJobs: 200 };
    expect(seenShapes).toEqual([shape, shape]);
    const tput = r.summary.find((s) => s.bench === "dispatch" && s.figure === "jobs/s");
    expect(tput?.spread).toEqual({ median: 1500, min: 1000, max: 2000, n: 2 });
    // Run 1: 1000 jobs/s × 4 ÷ 10 000; run 2: 2000 × 4 ÷ 20 000 — both 0.4, whatever the drift between runs.
    const pub = r.pairs.find((p) => p.name === "dispatch vs JetStream publish");
    expect(pub?.perRun).toEqual([0.4, 0.4]);
    expect(r.pairs.find((p) => p.name === "troupe ÷ bullmq throughput")?.perRun).toEqual([1, 2]);
    expect(r.pairs.find((p) => p.name === "projector rebuild vs ordered-consumer read")?.spread).toBeUndefined();
    const text = formatAll(r);
    expect(text).toMatch(/worker\s+missing — bench\/worker\.ts does not exist yet/);
    expect(text).toMatch(/projector\s+failed — projector exploded/);
  });

  it("a bench whose figures are not finite numbers counts as failed", async () => {
    const r = await runAll({
      runs: 1, quick: true, log: () => {}, services: ["ui"], peer: false, limits: false, growth: false,
      load: async () => async () => report("ui", [["p99", Number.NaN, "ms"]]),
    });
    expect(r.benches.ui?.[0]?.status).toBe("failed");
    expect(r.benches.ui?.[0]?.error).toMatch(/invalid figure/);
  });

  it("loading a service bench that does not exist is MissingBench, not a crash", async () => {
    await expect(loadServiceBench("no-such-bench")).rejects.toBeInstanceOf(MissingBench);
  });

  it("summarises one figure name given in two units as two rows", () => {
    const rows = summarise({
      worker: [{ status: "ok", report: report("worker", [["troupe worker", 1, "jobs/s"], ["troupe worker", 60, "jobs/min"]]), seconds: 1 },
        { status: "ok", report: report("worker", [["troupe worker", 2, "jobs/s"], ["troupe worker", 120, "jobs/min"]]), seconds: 1 }],
    });
    expect(rows.map((r) => [r.unit, r.spread.median])).toEqual([["jobs/s", 1.5], ["jobs/min", 90]]);
  });

  it("pairs are n/a when either side is missing in that run", () => {
    const benches: Record<string, Outcome[]> = {
      limits: [{ status: "ok", report: limitsReport(10_000), seconds: 1 }],
      worker: [{ status: "failed", error: "x", seconds: 1 }],
    };
    const w = pairUp(benches, 1).find((p) => p.name === "worker vs bare page load");
    expect(w?.perRun).toEqual([null]);
  });
});

describe("bench all: output", () => {
  it("regenerating the docs replaces only what lies between the markers", () => {
    const doc = `# Benchmarks\n\nHand-written intro.\n\n${DOC_BEGIN}\nold table\n${DOC_END}\n\n## Hand-written after\n`;
    const out = replaceGenerated(doc, "new table");
    expect(out).toBe(`# Benchmarks\n\nHand-written intro.\n\n${DOC_BEGIN}\nnew table\n${DOC_END}\n\n## Hand-written after\n`);
    expect(replaceGenerated(out, "newer")).toContain(`${DOC_BEGIN}\nnewer\n${DOC_END}\n\n## Hand-written after`);
    expect(replaceGenerated("# Bench\n", "t")).toContain(`## Latest results\n\n${DOC_BEGIN}\nt\n${DOC_END}`);
  });

  it("writes the results JSON and the generated tables with machine, figures and missing benches", async () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-bench-all-"));
    try {
      const r = await runAll({
        runs: 1, quick: true, log: () => {}, services: ["dispatch", "worker"], limits: false, growth: false,
        load: async (n) => {
          if (n === "dispatch") return async () => report("dispatch", [["jobs/s", 1234, "jobs/s"]]);
          throw new MissingBench("bench/worker.ts does not exist yet");
        },
        peerBench: async () => report("peer", [[PEER.bullmqRate, 1000, "jobs/s"]]),
      });
      const file = writeResults(r, dir);
      expect(JSON.parse(readFileSync(file, "utf8")).benches.dispatch[0].report.figures[0].value).toBe(1234);
      const docPath = join(dir, "benchmarks.md");
      writeFileSync(docPath, `# Benchmarks\n\nkept\n\n${DOC_BEGIN}\n${DOC_END}\n`);
      updateDocs(r, docPath, file);
      const doc = readFileSync(docPath, "utf8");
      expect(doc).toContain("kept");
      expect(doc).toMatch(/\| dispatch \| jobs\/s \| 1,234 \| jobs\/s \|/);
      expect(doc).toMatch(/\| worker \| \*missing — bench\/worker\.ts does not exist yet\* \|/);
      expect(doc).toContain(`${r.machine.cores} cores`);
      expect(renderMarkdown(r)).toContain(r.machine.node);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("troupe bench: arguments", () => {
  it("an unknown name, a missing name and --runs outside `all` are usage errors naming the choices", async () => {
    await expect(runCommand(benchCommand, ["nope"])).rejects.toThrow(UsageError);
    await expect(runCommand(benchCommand, ["nope"])).rejects.toThrow(/limits, peer, growth, work-queue, all/);
    await expect(runCommand(benchCommand, [])).rejects.toThrow(/name a benchmark/);
    await expect(runCommand(benchCommand, ["limits", "--runs", "2"])).rejects.toThrow(/--runs applies to `bench all` only/);
    await expect(runCommand(benchCommand, ["all", "--runs", "0"])).rejects.toThrow(/at least 1/);
  });
});

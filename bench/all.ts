/**
 * `troupe bench all`: every benchmark N times, one table of medians with
 * min/max, the BullMQ peer and the raw limits paired with Troupe's figures
 * run by run, the growth series, a JSON file in bench/results/ and the
 * generated tables in docs/benchmarks.md.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { runGrowth, type BenchLoader, type GrowthSeries } from "./growth.ts";
import { bench as limitsBench, LIMIT } from "./limits.ts";
import { formatMachine, machineInfo, type MachineInfo } from "./machine.ts";
import { PEER, peerBench } from "./peer-bullmq.ts";
import type { Bench, BenchReport, Figure } from "./report.ts";
import { spread, type Spread } from "./stats.ts";

/** The per-service benchmarks, each `bench/<name>.ts` exporting `bench`, written by the service owners. */
export const SERVICE_BENCHES = ["worker", "dispatch", "scale", "projector", "ui"] as const;

export class MissingBench extends Error {
  override name = "MissingBench";
}

const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
export const REPO_ROOT = join(BENCH_DIR, "..");

/**
 * Loads `bench/<name>.ts`. A file that does not exist yet is a MissingBench
 * (reported as "missing", not a failure); the specifier is computed so the
 * typecheck does not depend on which service benches exist.
 */
export const loadServiceBench: BenchLoader = async (name) => {
  const url = new URL(`./${name}.ts`, import.meta.url);
  let mod: { bench?: unknown };
  try {
    mod = (await import(url.href)) as { bench?: unknown };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ERR_MODULE_NOT_FOUND" && String(err.message).includes(fileURLToPath(url))) throw new MissingBench(`bench/${name}.ts does not exist yet`);
    throw new Error(`bench/${name}.ts does not load: ${err.message}`, { cause: e });
  }
  if (typeof mod.bench !== "function") throw new Error(`bench/${name}.ts does not export a \`bench\` function`);
  return mod.bench as Bench;
};

export interface Outcome {
  status: "ok" | "missing" | "failed";
  report?: BenchReport;
  error?: string;
  seconds: number;
}

export interface SummaryRow {
  bench: string;
  figure: string;
  unit: string;
  target?: string;
  spread: Spread;
}

/** A Troupe figure ÷ its counterpart, computed within each run, then summarised. */
export interface PairRow {
  kind: "peer" | "limit";
  name: string;
  /** How the pair is formed, for the reader. */
  how: string;
  perRun: (number | null)[];
  spread?: Spread;
  target?: string;
}

export interface AllResult {
  machine: MachineInfo;
  quick: boolean;
  runs: number;
  /** Per bench, one outcome per run. */
  benches: Record<string, Outcome[]>;
  summary: SummaryRow[];
  pairs: PairRow[];
  growth?: GrowthSeries[];
  notes: string[];
}

export interface AllOptions {
  runs: number;
  quick: boolean;
  log: (line: string) => void;
  load?: BenchLoader;
  /** Which service benches to run (default all five). */
  services?: readonly string[];
  peer?: boolean;
  limits?: boolean;
  growth?: boolean;
  /** A bench that has not finished after this long counts as failed (its leftovers may keep running). */
  timeoutMs?: number;
  /** Injected for tests; defaults to the real limits / peer benches. */
  limitsBench?: Bench;
  peerBench?: (o: Parameters<typeof peerBench>[0]) => Promise<BenchReport>;
  growthRunner?: typeof runGrowth;
}

async function runOne(name: string, run: () => Promise<Bench>, o: { quick: boolean; log: (l: string) => void; timeoutMs: number }): Promise<Outcome> {
  const t0 = Date.now();
  const secs = () => (Date.now() - t0) / 1000;
  let bench: Bench;
  try {
    bench = await run();
  } catch (e) {
    const missing = e instanceof MissingBench;
    o.log(`${name}: ${missing ? "missing" : "failed to load"}: ${(e as Error).message}`);
    return { status: missing ? "missing" : "failed", error: (e as Error).message, seconds: secs() };
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    const report = await Promise.race([
      bench({ quick: o.quick, log: (l) => o.log(l.startsWith(`${name}:`) ? l : `${name}: ${l}`) }),
      new Promise<never>((_r, rej) => (timer = setTimeout(() => rej(new Error(`no result after ${o.timeoutMs / 1000} s`)), o.timeoutMs))),
    ]);
    checkReport(name, report);
    return { status: "ok", report, seconds: secs() };
  } catch (e) {
    o.log(`${name}: failed: ${(e as Error).message}`);
    return { status: "failed", error: (e as Error).message, seconds: secs() };
  } finally {
    clearTimeout(timer);
  }
}

/** A report whose figures are not finite numbers is a broken bench, not a result. */
export function checkReport(name: string, r: BenchReport): void {
  if (!r || !Array.isArray(r.figures)) throw new Error(`${name} returned no figures`);
  for (const f of r.figures) {
    if (typeof f.name !== "string" || typeof f.unit !== "string" || typeof f.value !== "number" || !Number.isFinite(f.value)) {
      throw new Error(`${name} returned an invalid figure ${JSON.stringify(f)}`);
    }
  }
}

const isRate = (f: Figure) => /\/s$/i.test(f.unit.trim());

const jobsPerSec = (r: BenchReport) => r.figures.find((f) => /^jobs\/s$/i.test(f.unit.trim())) ?? r.figures.find(isRate);
const named = (r: BenchReport | undefined, name: string) => r?.figures.find((f) => f.name === name)?.value;

/**
 * Each Troupe figure as a fraction of the layer it sits on, computed from two
 * reports of the same run (`limits` is that run's limits report). `k` is how
 * many layer operations one Troupe item costs, so 1.0 means the layer is the
 * bottleneck.
 */
export const LIMIT_PAIRS: { name: string; bench: string; how: string; value: (troupe: BenchReport, limits: BenchReport | undefined) => number | null }[] = [
  {
    name: "dispatch vs JetStream publish",
    bench: "dispatch",
    how: "dispatch jobs/s × 4 appends per job (submitted, assigned, started, completed) ÷ JetStream async publish msgs/s",
    value: (t, l) => ratio(jobsPerSec(t)?.value, 4, named(l, LIMIT.publish)),
  },
  {
    name: "dispatch vs request-reply",
    bench: "dispatch",
    how: "dispatch jobs/s × 2 round trips per job (submit, assign) ÷ pipelined request-reply round trips/s",
    value: (t, l) => ratio(jobsPerSec(t)?.value, 2, named(l, LIMIT.rrMany)),
  },
  {
    name: "projector rebuild vs ordered-consumer read",
    bench: "projector",
    how: "rebuild events/s ÷ ordered-consumer read msgs/s (bare read, no parsing)",
    value: (t, l) => ratio(t.figures.find((f) => /rebuild/i.test(f.name) && isRate(f))?.value, 1, named(l, LIMIT.read)),
  },
  {
    name: "worker vs bare puppeteer (same scenario)",
    bench: "worker",
    how: "the worker bench's own troupe ÷ bare ratio: the same 5-step scenario through a worker vs straight Puppeteer, alternating rounds, concurrency 1",
    value: (t) => t.figures.find((f) => /ratio troupe\/bare/i.test(f.name))?.value ?? null,
  },
  {
    name: "worker vs bare page load",
    bench: "worker",
    how: "worker jobs/s (5-step scenario, concurrency 1) ÷ bare Puppeteer pages/s (context + page + one local page load, 1 at a time)",
    value: (t, l) => ratio(jobsPerSec(t)?.value, 1, named(l, LIMIT.browser1)),
  },
];

function ratio(troupe: number | undefined, k: number, limit: number | undefined): number | null {
  return troupe !== undefined && limit !== undefined && limit > 0 ? (troupe * k) / limit : null;
}

/** Summarises every figure of every bench over the runs that produced it. */
export function summarise(benches: Record<string, Outcome[]>): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const [bench, outs] of Object.entries(benches)) {
    // Keyed by name and unit: a bench may give one quantity in two units (jobs/s and jobs/min).
    const byFigure = new Map<string, { figure: string; unit: string; target?: string; values: number[] }>();
    for (const o of outs) {
      for (const f of o.report?.figures ?? []) {
        const key = `${f.name}\u0000${f.unit}`;
        const e = byFigure.get(key) ?? { figure: f.name, unit: f.unit, ...(f.target ? { target: f.target } : {}), values: [] };
        e.values.push(f.value);
        byFigure.set(key, e);
      }
    }
    for (const e of byFigure.values()) rows.push({ bench, figure: e.figure, unit: e.unit, ...(e.target ? { target: e.target } : {}), spread: spread(e.values) });
  }
  return rows;
}

/** The pairs, run by run: each ratio uses two figures measured in the same run. */
export function pairUp(benches: Record<string, Outcome[]>, runs: number): PairRow[] {
  const rows: PairRow[] = [];
  const at = (bench: string, i: number) => benches[bench]?.[i]?.report;
  const peerPairs: { name: string; figure: string; how: string; target?: string }[] = [
    { name: "troupe ÷ bullmq throughput", figure: PEER.rateRatio, how: "Troupe dispatch jobs/s ÷ BullMQ jobs/s, same shape, same run", target: ">= 1.0" },
    { name: "troupe ÷ bullmq latency p50", figure: PEER.p50Ratio, how: "Troupe submit→assigned ÷ BullMQ add→processor start at the same offered rate; below 1 Troupe is faster" },
    { name: "troupe ÷ bullmq latency p99", figure: PEER.p99Ratio, how: "as p50; below 1 Troupe is faster" },
  ];
  for (const p of peerPairs) {
    const perRun = Array.from({ length: runs }, (_, i) => at("peer", i)?.figures.find((f) => f.name === p.figure)?.value ?? null);
    rows.push(withSpread({ kind: "peer", name: p.name, how: p.how, perRun, ...(p.target ? { target: p.target } : {}) }));
  }
  for (const lp of LIMIT_PAIRS) {
    const perRun = Array.from({ length: runs }, (_, i) => {
      const t = at(lp.bench, i);
      return t ? lp.value(t, at("limits", i)) : null;
    });
    rows.push(withSpread({ kind: "limit", name: lp.name, how: lp.how, perRun }));
  }
  return rows;
}

function withSpread(r: PairRow): PairRow {
  const vals = r.perRun.filter((v): v is number => v !== null);
  return vals.length ? { ...r, spread: spread(vals) } : r;
}

export async function runAll(o: AllOptions): Promise<AllResult> {
  const load = o.load ?? loadServiceBench;
  const services = o.services ?? SERVICE_BENCHES;
  const timeoutMs = o.timeoutMs ?? (o.quick ? 180_000 : 900_000);
  const machine = machineInfo();
  const benches: Record<string, Outcome[]> = {};
  const push = (name: string, out: Outcome) => (benches[name] ??= []).push(out);
  const notes: string[] = [];
  if (machine.loadAverage1m > machine.cores * 0.5) {
    notes.push(`load average ${machine.loadAverage1m} on ${machine.cores} cores at the start: other work was running, figures are noisy`);
  }
  for (let i = 0; i < o.runs; i++) {
    o.log(`== run ${i + 1} of ${o.runs}`);
    const ro = { quick: o.quick, log: o.log, timeoutMs };
    if (o.limits !== false) push("limits", await runOne("limits", async () => o.limitsBench ?? limitsBench, ro));
    for (const name of services) {
      push(name, await runOne(name, () => load(name), ro));
      if (name === "dispatch" && o.peer !== false) {
        // The peer mirrors this run's dispatch shape and pairs with its figures.
        const dispatch = benches.dispatch?.[i]?.report;
        const peer = o.peerBench ?? peerBench;
        push("peer", await runOne("peer", async () => async (bo) => peer({ ...bo, ...(dispatch ? { dispatch } : {}) }), ro));
      }
    }
    if (!services.includes("dispatch") && o.peer !== false) {
      const peer = o.peerBench ?? peerBench;
      push("peer", await runOne("peer", async () => async (bo) => peer(bo), ro));
    }
  }
  let growth: GrowthSeries[] | undefined;
  if (o.growth !== false) {
    o.log("== growth");
    try {
      growth = await (o.growthRunner ?? runGrowth)({ quick: o.quick, log: o.log, load, services: services.includes("dispatch") || services.includes("projector") });
    } catch (e) {
      notes.push(`growth failed: ${(e as Error).message}`);
    }
  }
  return { machine, quick: o.quick, runs: o.runs, benches, summary: summarise(benches), pairs: pairUp(benches, o.runs), ...(growth ? { growth } : {}), notes };
}

// ---------------------------------------------------------------- output

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString("en-US");
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

const fmtSpread = (s: Spread) => (s.n > 1 ? `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})` : fmt(s.median));

function statusLine(name: string, outs: Outcome[]): string | null {
  const bad = outs.filter((o) => o.status !== "ok");
  if (!bad.length) return null;
  const first = bad[0] as Outcome;
  return `${name}: ${first.status}${bad.length < outs.length ? ` in ${bad.length} of ${outs.length} runs` : ""} — ${first.error ?? ""}`;
}

/** One plain-text table for the terminal. */
export function formatAll(r: AllResult): string {
  const lines = [`machine: ${formatMachine(r.machine)}`, `runs: ${r.runs}${r.quick ? " (quick mode: sizes too small for real figures)" : ""}; figures are median (min–max)`, ""];
  const w = Math.max(30, ...r.summary.map((s) => s.figure.length));
  for (const name of Object.keys(r.benches)) {
    const st = statusLine(name, r.benches[name] ?? []);
    const rows = r.summary.filter((s) => s.bench === name);
    lines.push(`== ${name}${st && !rows.length ? `  ${st.slice(name.length + 2)}` : ""}`);
    for (const s of rows) lines.push(`  ${s.figure.padEnd(w)} ${fmtSpread(s.spread).padStart(26)} ${s.unit}${s.target ? `   (target ${s.target})` : ""}`);
    if (st && rows.length) lines.push(`  ! ${st}`);
    const peerNotes = new Set(r.benches[name]?.flatMap((o) => o.report?.notes ?? []) ?? []);
    for (const n of peerNotes) lines.push(`  note: ${n}`);
  }
  lines.push("", "== pairs, computed within each run (Troupe ÷ counterpart)");
  for (const p of r.pairs) lines.push(`  ${p.name.padEnd(w + 6)} ${p.spread ? fmtSpread(p.spread) : "n/a"}${p.target ? `   (target ${p.target})` : ""}`);
  if (r.growth) {
    lines.push("", "== growth: per-item cost (µs of wall time per item) at each size");
    for (const s of r.growth) {
      const pts = s.points.map((p) => `${p.size.toLocaleString("en-US")}: ${fmt(p.perItemUs)}`).join("  ");
      const v = s.ratio === undefined ? "" : s.superLinear ? `  SUPER-LINEAR ×${s.ratio.toFixed(2)}` : `  flat (×${s.ratio.toFixed(2)})`;
      lines.push(`  ${s.name.padEnd(26)} ${pts || "n/a"}${v}${s.note ? `  [${s.note}]` : ""}`);
    }
  }
  for (const n of r.notes) lines.push(`note: ${n}`);
  return lines.join("\n");
}

export const DOC_BEGIN = "<!-- bench:generated:begin — written by `pnpm bench all`; edit outside these markers -->";
export const DOC_END = "<!-- bench:generated:end -->";

const mdCell = (s: string) => s.replace(/\|/g, "\\|");

/** The generated part of docs/benchmarks.md. */
export function renderMarkdown(r: AllResult, resultFile?: string): string {
  const m = r.machine;
  const out: string[] = [
    `Measured ${m.date.slice(0, 16).replace("T", " ")} UTC on ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}, ${m.natsServer}, ${m.chromium}, ${m.redisServer}. Load average at the start: ${m.loadAverage1m}.`,
    "",
    `${r.runs} run${r.runs === 1 ? "" : "s"}${r.quick ? " in quick mode (sizes too small for meaningful figures)" : ""}; each figure is the median with (min–max) over the runs.${resultFile ? ` Raw results: \`${relative(REPO_ROOT, resultFile)}\`.` : ""}`,
    "",
  ];
  for (const n of r.notes) out.push(`> ${n}`, "");
  out.push("### Figures", "", "| bench | figure | median (min–max) | unit | target |", "|---|---|---|---|---|");
  for (const name of Object.keys(r.benches)) {
    const rows = r.summary.filter((s) => s.bench === name);
    const st = statusLine(name, r.benches[name] ?? []);
    for (const s of rows) out.push(`| ${name} | ${mdCell(s.figure)} | ${fmtSpread(s.spread)} | ${mdCell(s.unit)} | ${s.target ? mdCell(s.target) : ""} |`);
    if (st) out.push(`| ${name} | *${mdCell(st.slice(name.length + 2))}* | | | |`);
  }
  out.push("", "### Troupe side by side (ratios computed within each run)", "", "| pair | median (min–max) | target | how |", "|---|---|---|---|");
  for (const p of r.pairs) out.push(`| ${mdCell(p.name)} | ${p.spread ? fmtSpread(p.spread) : "n/a"} | ${p.target ?? ""} | ${mdCell(p.how)} |`);
  if (r.growth?.length) {
    const sizes = [...new Set(r.growth.flatMap((s) => s.points.map((p) => p.size)))].sort((a, b) => a - b);
    out.push("", "### Growth: µs of wall time per item", "", `| series | ${sizes.map((z) => z.toLocaleString("en-US")).join(" | ")} | growth | |`, `|---|${sizes.map(() => "---|").join("")}---|---|`);
    for (const s of r.growth) {
      const cells = sizes.map((z) => {
        const p = s.points.find((x) => x.size === z);
        return p ? fmt(p.perItemUs) : "";
      });
      const v = s.ratio === undefined ? "n/a" : `×${s.ratio.toFixed(2)} ${s.superLinear ? "**super-linear**" : "flat"}`;
      out.push(`| ${mdCell(s.name)} (per ${s.item}) | ${cells.join(" | ")} | ${v} | ${s.note ? mdCell(s.note) : ""} |`);
    }
  }
  const notes = new Set(Object.entries(r.benches).flatMap(([name, outs]) => outs.flatMap((o) => (o.report?.notes ?? []).map((n) => `${name}: ${n}`))));
  if (notes.size) {
    out.push("", "Notes from the benchmarks:", "");
    for (const n of notes) out.push(`- ${n}`);
  }
  return out.join("\n");
}

/** Replaces what lies between the markers, keeping the hand-written text; appends the block when the markers are absent. */
export function replaceGenerated(doc: string, generated: string): string {
  const block = `${DOC_BEGIN}\n${generated.trim()}\n${DOC_END}`;
  const b = doc.indexOf(DOC_BEGIN);
  const e = doc.indexOf(DOC_END);
  if (b < 0 || e < 0 || e < b) return `${doc.trimEnd()}\n\n## Latest results\n\n${block}\n`;
  return doc.slice(0, b) + block + doc.slice(e + DOC_END.length);
}

export function writeResults(r: AllResult, dir = join(REPO_ROOT, "bench", "results")): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${r.quick ? "quick-" : ""}${r.machine.date.replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify(r, null, 2)}\n`);
  return file;
}

export function updateDocs(r: AllResult, docPath = join(REPO_ROOT, "docs", "benchmarks.md"), resultFile?: string): void {
  let doc = "";
  try {
    doc = readFileSync(docPath, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    doc = "# Benchmarks\n";
  }
  writeFileSync(docPath, replaceGenerated(doc, renderMarkdown(r, resultFile)));
}

/**
 * Growth: the per-item cost at 1×, 10×, 100×, 1000× a base size, flagged when
 * it grows faster than the size (super-linear). The JetStream layers (publish,
 * ordered-consumer read) are measured here directly; dispatch and projector
 * rebuild run through their own benchmarks with `BenchOptions.size`.
 */
import { storeNames } from "@troupe/events/node";
import { eventSizedBody, jetstreamPublish, orderedRead, withNats } from "./limits.ts";
import type { Bench, BenchOptions, BenchReport, Figure } from "./report.ts";
import { growthVerdict } from "./stats.ts";

export interface GrowthPoint {
  size: number;
  /** Items per second at this size. */
  rate: number;
  /** 1e6 ÷ rate: microseconds of wall time per item. */
  perItemUs: number;
}

export interface GrowthSeries {
  name: string;
  /** What one item is: "msg", "job", "event". */
  item: string;
  points: GrowthPoint[];
  /** Last per-item cost ÷ the cheapest before it, over sizes ≥ VERDICT_MIN_SIZE; super-linear when > 2. */
  ratio?: number;
  superLinear?: boolean;
  /** Why the series is short or empty (bench missing, size not honoured, failure). */
  note?: string;
}

export const MULTIPLIERS = [1, 10, 100, 1000] as const;

/** A service benchmark that takes `size`, and how to read its throughput. */
export interface ServiceGrowth {
  bench: string;
  name: string;
  item: string;
  base: { quick: number; full: number };
  /** Picks the items/s figure out of the bench's report. */
  rateFigure: (r: BenchReport) => Figure | undefined;
}

const perSecond = (f: Figure) => /\/s$/i.test(f.unit.trim());

export const SERVICE_GROWTH: ServiceGrowth[] = [
  {
    bench: "dispatch",
    name: "dispatch",
    item: "job",
    base: { quick: 20, full: 100 },
    rateFigure: (r) => r.figures.find((f) => /^jobs\/s$/i.test(f.unit.trim())) ?? r.figures.find(perSecond),
  },
  {
    bench: "projector",
    name: "projector rebuild",
    item: "event",
    base: { quick: 100, full: 1_000 },
    rateFigure: (r) => r.figures.find((f) => /rebuild/i.test(f.name) && perSecond(f)) ?? r.figures.find(perSecond),
  },
];

export function sizesFor(base: number, quick: boolean, maxMultiplier = quick ? 100 : 1000): number[] {
  return MULTIPLIERS.filter((m) => m <= maxMultiplier).map((m) => base * m);
}

/** Below this many items a per-item cost is mostly start-up and pipelining, not growth. */
export const VERDICT_MIN_SIZE = 1_000;

function finish(s: GrowthSeries): GrowthSeries {
  const v = growthVerdict(s.points.map((p) => ({ size: p.size, perItem: p.perItemUs })), 2, VERDICT_MIN_SIZE);
  if (v) {
    s.ratio = v.ratio;
    s.superLinear = v.superLinear;
  }
  return s;
}

const point = (size: number, rate: number): GrowthPoint => ({ size, rate, perItemUs: 1e6 / rate });

/** JetStream publish and ordered-consumer read at each size, each size on a fresh server and stream. */
export async function jetstreamGrowth(o: { quick: boolean; log: (l: string) => void; base?: number; maxMultiplier?: number }): Promise<GrowthSeries[]> {
  const sizes = sizesFor(o.base ?? (o.quick ? 100 : 1_000), o.quick, o.maxMultiplier);
  const body = eventSizedBody(512);
  const pub: GrowthSeries = { name: "jetstream publish", item: "msg", points: [] };
  const read: GrowthSeries = { name: "ordered-consumer read", item: "msg", points: [] };
  for (const size of sizes) {
    o.log(`growth: jetstream ${size} messages`);
    await withNats(async (t) => {
      const { js } = await t.js("master");
      const p = await jetstreamPublish(js, { count: size, inFlight: 256, body });
      pub.points.push(point(size, p.perSecond));
      const r = await orderedRead(await t.connect("projector"), { stream: storeNames().events, count: size });
      read.points.push(point(size, r.perSecond));
    });
  }
  return [finish(pub), finish(read)];
}

export type BenchLoader = (name: string) => Promise<Bench>;

/**
 * One service's series: runs its bench at each size; stops at the first size
 * it does not honour (no `params.size` echo) or that fails, and says why.
 */
export async function serviceGrowth(g: ServiceGrowth, load: BenchLoader, o: { quick: boolean; log: (l: string) => void; maxMultiplier?: number }): Promise<GrowthSeries> {
  const s: GrowthSeries = { name: g.name, item: g.item, points: [] };
  let bench: Bench;
  try {
    bench = await load(g.bench);
  } catch (e) {
    s.note = `bench/${g.bench}.ts unavailable: ${(e as Error).message}`;
    return s;
  }
  const sizes = sizesFor(o.quick ? g.base.quick : g.base.full, o.quick, o.maxMultiplier);
  if (!o.quick && sizes.length) {
    // A cheap quick-mode probe first: a bench that ignores `size` would otherwise run its full default once for nothing.
    const size = sizes[0] as number;
    try {
      const probe = await bench({ quick: true, log: () => {}, size });
      if (probe.params.size !== size) {
        s.note = `bench/${g.bench}.ts does not honour BenchOptions.size yet (its report has no params.size = ${size})`;
        return s;
      }
    } catch (e) {
      s.note = `failed in the quick probe at size ${size}: ${(e as Error).message}`;
      return s;
    }
  }
  for (const size of sizes) {
    o.log(`growth: ${g.name} at size ${size}`);
    let r: BenchReport;
    try {
      r = await bench({ quick: o.quick, log: o.log, size } satisfies BenchOptions);
    } catch (e) {
      s.note = `failed at size ${size}: ${(e as Error).message}`;
      break;
    }
    if (r.params.size !== size) {
      s.note = `bench/${g.bench}.ts does not honour BenchOptions.size yet (its report has no params.size = ${size})`;
      break;
    }
    const f = g.rateFigure(r);
    if (!f || !(f.value > 0)) {
      s.note = `no items/s figure in the ${g.bench} report at size ${size}`;
      break;
    }
    s.points.push(point(size, f.value));
  }
  return finish(s);
}

export async function runGrowth(o: { quick: boolean; log: (l: string) => void; load: BenchLoader; maxMultiplier?: number; services?: boolean }): Promise<GrowthSeries[]> {
  const out = await jetstreamGrowth(o);
  if (o.services !== false) for (const g of SERVICE_GROWTH) out.push(await serviceGrowth(g, o.load, o));
  return out;
}

const fmtUs = (us: number) => (us >= 100 ? us.toFixed(0) : us >= 10 ? us.toFixed(1) : us.toFixed(2));

export function formatGrowth(series: readonly GrowthSeries[]): string {
  const lines = ["== growth  per-item cost (µs of wall time per item) at each size"];
  for (const s of series) {
    const pts = s.points.map((p) => `${p.size}: ${fmtUs(p.perItemUs)}`).join("  ");
    const verdict = s.ratio === undefined ? "" : s.superLinear ? `  SUPER-LINEAR (×${s.ratio.toFixed(2)})` : `  flat (×${s.ratio.toFixed(2)})`;
    lines.push(`  ${s.name.padEnd(24)} ${pts || "n/a"}${verdict}${s.note ? `   [${s.note}]` : ""}`);
  }
  return lines.join("\n");
}

export function growthReport(series: readonly GrowthSeries[], quick: boolean): BenchReport {
  const figures: Figure[] = [];
  const notes: string[] = [];
  for (const s of series) {
    for (const p of s.points) figures.push({ name: `${s.name} @${p.size}`, value: Math.round(p.perItemUs * 100) / 100, unit: `µs/${s.item}` });
    if (s.ratio !== undefined) figures.push({ name: `${s.name} growth ratio`, value: Math.round(s.ratio * 100) / 100, unit: "×", target: "<= 2 (flat)" });
    if (s.superLinear) notes.push(`${s.name}: per-item cost grows super-linearly (×${s.ratio?.toFixed(2)} at ${s.points.at(-1)?.size})`);
    if (s.note) notes.push(`${s.name}: ${s.note}`);
  }
  return { bench: "growth", params: { quick, multipliers: MULTIPLIERS.filter((m) => m <= (quick ? 100 : 1000)).join("/") }, figures, notes };
}

/** `troupe bench growth`: all series, printed as a report. */
export function growthBench(load: BenchLoader): Bench {
  return async (o) => growthReport(await runGrowth({ quick: o.quick, log: o.log, load }), o.quick);
}

/** What every benchmark returns; `troupe bench` prints it and `bench all` collects it. */
export interface Figure {
  /** e.g. "rebuild events/s" */
  name: string;
  value: number;
  unit: string;
  /** Target, when the issue sets one, e.g. ">= 50000" — printed beside the figure, never asserted in tests. */
  target?: string;
}

export interface BenchReport {
  bench: string;
  /** What was run: sizes, concurrency, offered rate ... */
  params: Record<string, string | number | boolean>;
  figures: Figure[];
  notes?: string[];
}

export interface BenchOptions {
  /** Small sizes, for the test suite's "still works" check. */
  quick: boolean;
  log: (line: string) => void;
  /**
   * How many items to process (jobs for dispatch, events for a projector
   * rebuild ...) instead of the bench's default; the growth series passes 1×,
   * 10×, 100×, 1000× a base. A bench that honours it echoes it as
   * `params.size`, so `bench growth` can tell it did; one that ignores it is
   * reported as "size not supported".
   */
  size?: number;
}

export type Bench = (o: BenchOptions) => Promise<BenchReport>;

export function formatReport(r: BenchReport): string {
  const w = Math.max(...r.figures.map((f) => f.name.length), 10);
  const lines = [`== ${r.bench}  ${Object.entries(r.params).map(([k, v]) => `${k}=${v}`).join(" ")}`];
  for (const f of r.figures) {
    const v = Number.isInteger(f.value) ? f.value.toString() : f.value.toFixed(f.value < 10 ? 3 : 1);
    lines.push(`  ${f.name.padEnd(w)}  ${v.padStart(12)} ${f.unit}${f.target ? `   (target ${f.target})` : ""}`);
  }
  for (const n of r.notes ?? []) lines.push(`  note: ${n}`);
  return lines.join("\n");
}

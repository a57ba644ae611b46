/** Geometry of a small line chart: pure, so it is tested without a browser. */
import { hhmm } from "./format.ts";

export type SeriesPoints = [number, number | null][];

export interface SparkShape {
  /** SVG path per series: a line through runs of consecutive settled points. */
  paths: string[];
  /**
   * SVG path per series through its open points (at or after `openFrom`), from the settled point before them:
   * drawn dashed. Empty without open points.
   */
  open: string[];
  /** Points with no neighbour in their series (a run of one), which a line cannot show: drawn as dots. */
  dots: { series: number; x: number; y: number; open: boolean }[];
}

/**
 * Fixed axes for `sparkShape`: the time range drawn (the chart's window, so an empty stretch at either end shows as
 * one) and the top of the y scale (`chartScale`). Without them, the data's own ranges.
 */
export interface ShapeAxes {
  x0?: number;
  x1?: number;
  yMax?: number;
}

/**
 * Lays series of [time, value|null] out on a width × height box sharing one
 * x range (time) and one y range (0 … the largest value, at least 1). A
 * null breaks a series' line.
 *
 * `openFrom` (a time; none by default): points at or after it are not final
 * yet — a count of the minute in progress, which only grows until the minute
 * ends and read as a sudden drop when drawn as the others (an audit). They get
 * their own paths (`open`), joined to the settled point before them, for the
 * chart to draw dashed; they stay in the ranges, so the chart does not rescale
 * when the minute ends.
 */
export function sparkShape(series: SeriesPoints[], width: number, height: number, openFrom = Infinity, axes: ShapeAxes = {}): SparkShape {
  const all = series.flat().filter((p): p is [number, number] => p[1] !== null);
  const x0 = axes.x0 ?? Math.min(...all.map((p) => p[0]));
  const x1 = axes.x1 ?? Math.max(...all.map((p) => p[0]));
  const yMax = axes.yMax ?? Math.max(1, ...all.map((p) => p[1]));
  const px = (x: number) => (x1 === x0 ? width / 2 : ((x - x0) / (x1 - x0)) * width);
  const py = (y: number) => height - (y / yMax) * (height - 4) - 2;
  const at = (x: number, y: number) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`;
  const dots: SparkShape["dots"] = [];
  const open: string[] = [];
  const paths = series.map((pts, si) => {
    let d = "";
    let o = "";
    const value = (i: number) => (i >= 0 && i < pts.length ? pts[i]![1] : null);
    const settled = (i: number) => value(i) !== null && pts[i]![0] < openFrom;
    for (let i = 0; i < pts.length; i++) {
      const [x, y] = pts[i]!;
      if (y === null) continue;
      if (x < openFrom) {
        const before = settled(i - 1);
        const after = settled(i + 1);
        d += `${before ? "L" : "M"}${at(x, y)}`;
        if (!before && !after) dots.push({ series: si, x: px(x), y: py(y), open: false });
      } else {
        // An open point continues the line from whatever point comes before it (settled or open).
        const prev = value(i - 1);
        if (prev === null) o += `M${at(x, y)}`;
        else if (settled(i - 1)) o += `M${at(pts[i - 1]![0], prev)}L${at(x, y)}`;
        else o += `L${at(x, y)}`;
        if (prev === null && value(i + 1) === null) dots.push({ series: si, x: px(x), y: py(y), open: true });
      }
    }
    open.push(o);
    return d;
  });
  return { paths, open, dots };
}

/**
 * The value a chart's legend names for a series: its latest settled one (before
 * `openFrom`), or, when it has none yet, its latest open one, said to be open
 * ("so far"). Undefined without values.
 */
export function legendValue(points: SeriesPoints, openFrom = Infinity): { value: number; open: boolean } | undefined {
  let open: number | undefined;
  for (let i = points.length - 1; i >= 0; i--) {
    const [x, y] = points[i]!;
    if (y === null) continue;
    if (x < openFrom) return { value: y, open: false };
    if (open === undefined) open = y;
  }
  return open === undefined ? undefined : { value: open, open: true };
}

/** The top of a y scale: the smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^n at or above `v` (a value the axis can name). */
export function niceCeil(v: number): number {
  if (!(v > 0)) return 0;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const s of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (s * p >= v * (1 - 1e-9)) return s * p;
  return 10 * p;
}

/**
 * The top of a chart's y scale; the bottom is always 0. A percent series runs to 100 (a worker idling at 2 % CPU
 * filled the box as one at 100 % did, a walkthrough), or to its largest value should one exceed 100; any other to
 * its largest value rounded up (`niceCeil`), at least 1.
 */
export function chartScale(values: readonly (number | null)[], percent = false): number {
  let max = 0;
  for (const v of values) if (v !== null && v > max) max = v;
  return percent ? Math.max(100, max) : Math.max(1, niceCeil(max));
}

/** A bucket as a readout names it: its minute, "10:15 UTC", or for a longer bucket its span, "10:15–10:30 UTC". */
export function bucketLabel(t: number, bucketMs: number): string {
  return bucketMs <= 60_000 ? `${hhmm(t)} UTC` : `${hhmm(t)}–${hhmm(t + bucketMs)} UTC`;
}

/**
 * The time axis's labels: the window's first bucket, its middle one and the bucket in progress, each with where it
 * sits (0 … 1 of the width); the last says "UTC" (as the Overview's other times do).
 */
export function timeTicks(from: number, to: number, bucketMs: number): { at: number; x: number; label: string }[] {
  const n = Math.round((to - from) / bucketMs);
  const x = (t: number) => (to === from ? 0.5 : (t - from) / (to - from));
  const ticks = n >= 2 ? [from, from + Math.floor(n / 2) * bucketMs, to] : n === 1 ? [from, to] : [to];
  return ticks.map((t, i) => ({ at: t, x: x(t), label: i === ticks.length - 1 ? `${hhmm(t)} UTC` : hhmm(t) }));
}

/** The bucket under a pointer at `fraction` (0 … 1) of the chart's width: the nearest one's index, of `count`. */
export function bucketIndexAt(fraction: number, count: number): number {
  if (count <= 1) return 0;
  return Math.min(count - 1, Math.max(0, Math.round(fraction * (count - 1))));
}

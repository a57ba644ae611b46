/** Geometry of a small line chart: pure, so it is tested without a browser. */

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
export function sparkShape(series: SeriesPoints[], width: number, height: number, openFrom = Infinity): SparkShape {
  const all = series.flat().filter((p): p is [number, number] => p[1] !== null);
  const x0 = Math.min(...all.map((p) => p[0]));
  const x1 = Math.max(...all.map((p) => p[0]));
  const yMax = Math.max(1, ...all.map((p) => p[1]));
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

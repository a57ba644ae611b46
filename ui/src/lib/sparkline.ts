/** Geometry of a small line chart: pure, so it is tested without a browser. */

export type SeriesPoints = [number, number | null][];

export interface SparkShape {
  /** SVG path per series: a line through runs of consecutive points. */
  paths: string[];
  /** Points with no neighbour in their series (a run of one), which a line cannot show: drawn as dots. */
  dots: { series: number; x: number; y: number }[];
}

/**
 * Lays series of [time, value|null] out on a width × height box sharing one
 * x range (time) and one y range (0 … the largest value, at least 1). A
 * null breaks a series' line.
 */
export function sparkShape(series: SeriesPoints[], width: number, height: number): SparkShape {
  const all = series.flat().filter((p): p is [number, number] => p[1] !== null);
  const x0 = Math.min(...all.map((p) => p[0]));
  const x1 = Math.max(...all.map((p) => p[0]));
  const yMax = Math.max(1, ...all.map((p) => p[1]));
  const px = (x: number) => (x1 === x0 ? width / 2 : ((x - x0) / (x1 - x0)) * width);
  const py = (y: number) => height - (y / yMax) * (height - 4) - 2;
  const dots: SparkShape["dots"] = [];
  const paths = series.map((pts, si) => {
    let d = "";
    for (let i = 0; i < pts.length; i++) {
      const [x, y] = pts[i]!;
      if (y === null) continue;
      const before = i > 0 && pts[i - 1]![1] !== null;
      const after = i + 1 < pts.length && pts[i + 1]![1] !== null;
      d += `${before ? "L" : "M"}${px(x).toFixed(1)},${py(y).toFixed(1)}`;
      if (!before && !after) dots.push({ series: si, x: px(x), y: py(y) });
    }
    return d;
  });
  return { paths, dots };
}

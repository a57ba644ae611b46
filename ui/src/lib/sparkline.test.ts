import { describe, expect, it } from "vitest";
import { sparkShape } from "./sparkline.ts";

describe("sparkline geometry", () => {
  it("two series with one point each (a dashboard's first minute): both shown as dots, centred", () => {
    const s = sparkShape([[[60_000, 3]], [[60_000, 5]]], 300, 60);
    expect(s.dots.map((d) => [d.series, d.x])).toEqual([[0, 150], [1, 150]]);
    expect(s.dots[1]!.y).toBeLessThan(s.dots[0]!.y); // 5 is drawn higher than 3
  });

  it("lines through runs, a null breaks the line, a lone point between nulls is a dot", () => {
    const s = sparkShape([[[0, 0], [1, 2], [2, null], [3, 4], [4, null], [5, 1], [6, 1]]], 600, 42);
    expect(s.paths[0]!.match(/[ML]/g)).toEqual(["M", "L", "M", "M", "L"]);
    expect(s.dots).toEqual([{ series: 0, x: 300, y: 2 }]);
  });

  it("scales y to the largest value (at least 1), x to the time range", () => {
    const s = sparkShape([[[0, 0], [10, 0]]], 100, 10);
    expect(s.paths[0]).toBe("M0.0,8.0L100.0,8.0");
    expect(sparkShape([[[0, 0], [10, 10]]], 100, 10).paths[0]).toBe("M0.0,8.0L100.0,2.0");
  });
});

import { describe, expect, it } from "vitest";
import { BoundedQueue } from "./queue.ts";

const msg = (n: number) => ({ data: new Uint8Array(n) });

describe("BoundedQueue", () => {
  it("holds messages in order until taken", () => {
    const q = new BoundedQueue(10, 1000);
    const [a, b] = [msg(1), msg(2)];
    expect(q.push(a) && q.push(b)).toBe(true);
    expect(q.take()).toEqual([a, b]);
    expect(q.length).toBe(0);
  });

  it("counts the bytes it holds", () => {
    const q = new BoundedQueue(10, 1000);
    q.push(msg(3));
    q.push(msg(4));
    expect(q.byteLength).toBe(7);
    q.take();
    expect(q.byteLength).toBe(0);
  });

  it("lets go of everything past its count", () => {
    const q = new BoundedQueue(2, 1000);
    expect([q.push(msg(1)), q.push(msg(1)), q.push(msg(1))]).toEqual([true, true, false]);
    expect(q.length).toBe(0);
  });

  it("lets go of everything past its bytes (large results in a hidden tab), and counts from zero after", () => {
    const q = new BoundedQueue(100_000, 1000);
    expect(q.push(msg(600))).toBe(true);
    expect(q.push(msg(600))).toBe(false);
    expect(q.length).toBe(0);
    expect(q.push(msg(900))).toBe(true);
    expect(q.take()).toHaveLength(1);
    expect(q.push(msg(900))).toBe(true);
  });
});

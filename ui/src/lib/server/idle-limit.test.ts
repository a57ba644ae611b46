import { describe, expect, it } from "vitest";
import { idleLimited } from "./idle-limit.ts";

const bytes = (...n: number[]) => new Uint8Array(n);

async function readAll(s: ReadableStream<Uint8Array>): Promise<number[]> {
  const out: number[] = [];
  for await (const chunk of s as unknown as AsyncIterable<Uint8Array>) out.push(...chunk);
  return out;
}

describe("idleLimited", () => {
  it("passes every chunk through and ends when the source ends", async () => {
    const src = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes(1, 2));
        c.enqueue(bytes(3));
        c.close();
      },
    });
    expect(await readAll(idleLimited(src, 1000, "test"))).toEqual([1, 2, 3]);
  });

  it("fails a stream whose source goes silent, and cancels the source", async () => {
    let cancelled: unknown = null;
    const src = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes(7));
      },
      cancel(reason) {
        cancelled = reason;
      },
    });
    await expect(readAll(idleLimited(src, 50, "artifact x"))).rejects.toThrow("artifact x: no data for 50 ms");
    expect(String(cancelled)).toContain("no data for 50 ms");
  });

  it("passes a cancel from the reader on to the source", async () => {
    let cancelled: unknown = null;
    const src = new ReadableStream<Uint8Array>({
      cancel(reason) {
        cancelled = reason;
      },
    });
    await idleLimited(src, 10_000, "test").cancel("client went away");
    expect(cancelled).toBe("client went away");
  });
});

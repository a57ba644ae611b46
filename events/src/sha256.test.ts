import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "./sha256.ts";

describe("sha256Hex", () => {
  it("matches node:crypto on the standard vectors, on every padding boundary and on UTF-8", () => {
    expect(sha256Hex("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const node = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");
    for (let n = 0; n <= 200; n++) {
      const s = randomBytes(n).toString("base64url").slice(0, n);
      expect(sha256Hex(s), `length ${n}`).toBe(node(s));
    }
    for (const s of ["äöü€𝄞", "x".repeat(1000)]) expect(sha256Hex(s)).toBe(node(s));
  });
});

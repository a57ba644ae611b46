import { getSha256Backend } from "@nats-io/obj";
import { describe, expect, it } from "vitest";
import "./index.ts";

describe("object stores in Node", () => {
  it("hash with node:crypto, not @nats-io/obj's pure-JS default (4 % of the master's CPU per job went to it)", () => {
    expect(getSha256Backend()).toBe("native");
  });
});

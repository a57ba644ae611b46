import { describe, expect, it } from "vitest";
import { isLoopbackHost } from "./host-check.ts";

describe("isLoopbackHost", () => {
  it.each(["localhost", "localhost:3000", "LOCALHOST:3000", "app.localhost:3000", "127.0.0.1", "127.0.0.1:3000", "127.1.2.3:80", "[::1]:3000", "[::1]"])(
    "takes %s", (h) => expect(isLoopbackHost(h)).toBe(true));
  it.each([null, "", "evil.example", "evil.example:3000", "localhost.evil.example:3000", "127.0.0.1.nip.io:3000", "10.0.0.5:3000", "0.0.0.0:3000",
    "[::ffff:127.0.0.1]:3000", "[::1]x", "[::1", "localhost:3000:1", "user@localhost"])(
    "refuses %j", (h) => expect(isLoopbackHost(h)).toBe(false));
});

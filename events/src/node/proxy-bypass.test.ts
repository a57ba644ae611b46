import { describe, expect, it } from "vitest";
import { bypassListError, bypassMatcher, globMatch } from "./proxy-bypass.ts";

describe("a job proxy's bypass list (Chromium's rules)", () => {
  const m = (rules: string[]) => bypassMatcher(rules);

  it("matches host patterns: exact names, wildcards, a leading dot, ports", () => {
    const b = m(["example.com", "*.internal.test", ".corp.test", "api.test:8080", "*foo.test"]);
    expect(b({ host: "example.com", port: 443 })).toBe(true);
    expect(b({ host: "www.example.com", port: 443 })).toBe(false);
    expect(b({ host: "a.internal.test", port: 80 })).toBe(true);
    expect(b({ host: "internal.test", port: 80 })).toBe(false);
    expect(b({ host: "x.y.corp.test", port: 80 })).toBe(true);
    expect(b({ host: "api.test", port: 8080 })).toBe(true);
    expect(b({ host: "api.test", port: 443 })).toBe(false);
    expect(b({ host: "foo.test", port: 1 })).toBe(true);
    expect(b({ host: "barfoo.test", port: 1 })).toBe(true);
    expect(b({ host: "EXAMPLE.com", port: 1 })).toBe(true);
  });

  it("matches a scheme only where it applies; a CONNECT tunnel counts as https, wss or ws", () => {
    const b = m(["http://plain.test", "https://secure.test"]);
    expect(b({ scheme: "http", host: "plain.test", port: 80 })).toBe(true);
    expect(b({ host: "plain.test", port: 443 })).toBe(false);
    expect(b({ host: "secure.test", port: 443 })).toBe(true);
    expect(b({ scheme: "http", host: "secure.test", port: 80 })).toBe(false);
  });

  it("matches IP literals and ranges, never a name by its address", () => {
    const b = m(["192.0.2.7", "10.0.0.0/8", "[2001:db8::1]", "fd00::/8"]);
    expect(b({ host: "192.0.2.7", port: 80 })).toBe(true);
    expect(b({ host: "10.1.2.3", port: 80 })).toBe(true);
    expect(b({ host: "11.1.2.3", port: 80 })).toBe(false);
    expect(b({ host: "[2001:db8::1]", port: 443 })).toBe(true);
    expect(b({ host: "fd12::5", port: 443 })).toBe(true);
    expect(b({ host: "ten.test", port: 80 })).toBe(false);
  });

  it("<local> is a name without a dot; loopback is bypassed unless <-loopback> says otherwise", () => {
    expect(m(["<local>"])({ host: "intranet", port: 80 })).toBe(true);
    expect(m(["<local>"])({ host: "intra.net", port: 80 })).toBe(false);
    expect(m(["<local>"])({ host: "::1", port: 80 })).toBe(true); // loopback, implicitly
    for (const host of ["localhost", "a.localhost", "127.0.0.1", "127.9.9.9", "[::1]"]) {
      expect(m([])({ host, port: 80 })).toBe(true);
      expect(m(["<-loopback>"])({ host, port: 80 })).toBe(false);
    }
  });

  it("matches wildcards without a regular expression: many of them against a long host is quick and right", () => {
    // As a regular expression this rule took seconds against a 40-character host, blocking the worker.
    const b = m(["*a*a*a*a*a*a*a*a*a*a*a*a*b"]);
    expect(b({ host: "a".repeat(250), port: 443 })).toBe(false);
    expect(b({ host: `${"a".repeat(250)}b`, port: 443 })).toBe(true);
    expect(globMatch("*", "")).toBe(true);
    expect(globMatch("a*", "a")).toBe(true);
    expect(globMatch("*.x.test", "x.test")).toBe(false);
    expect(globMatch("*x*", "abxcd")).toBe(true);
    expect(globMatch("a*b*c", "acbc")).toBe(true);
    expect(globMatch("a*b*c", "acb")).toBe(false);
  });

  it("refuses a rule it cannot read, naming it", () => {
    expect(() => m(["10.0.0.0/40"])).toThrow(/"10\.0\.0\.0\/40" is not a valid IP range/);
    expect(() => m(["a b"])).toThrow(/"a b" is not scheme:\/\/host:port/);
    expect(() => m(["host:port"])).toThrow(/is not scheme:\/\/host:port/);
    // Chromium would split this one string into two rules; here each entry is one rule.
    expect(() => m(["a.test,b.test"])).toThrow(/"a\.test,b\.test" is not scheme:\/\/host:port/);
  });
});

describe("bypassListError", () => {
  it("names the first rule that cannot be read, by index", () => {
    expect(bypassListError(["<local>", "*.corp.test", "[::1]:8080"])).toBeUndefined();
    expect(bypassListError(undefined)).toBeUndefined();
    expect(bypassListError(["<local>", "10.0.0.0/99", "a b"])).toEqual({ index: 1, message: expect.stringMatching(/"10\.0\.0\.0\/99" is not a valid IP range/) });
  });
});

import { describe, expect, it } from "vitest";
import { EgressNotes, normalTarget, targetOf } from "./egress-notes.ts";

describe("egress notes", () => {
  it("names targets as the egress proxy does", () => {
    expect(targetOf("http://Example.COM/x")).toBe("example.com:80");
    expect(targetOf("https://example.com:8443/")).toBe("example.com:8443");
    expect(targetOf("wss://[::1]/s")).toBe("::1:443");
    expect(targetOf("data:text/plain,x")).toBeUndefined();
    expect(normalTarget("[::1]:443")).toBe("::1:443");
    expect(normalTarget("Example.com:443")).toBe("example.com:443");
  });

  it("explains a failed navigation by its own target only, and only by what came after the mark (a refusal of another request made a target that was down an ssrf; an old one, any later error page)", () => {
    const n = new EgressNotes();
    n.note("refused", "127.0.0.1:80", "loopback");
    const mark = n.seq;
    n.note("refused", "127.0.0.1:80", "loopback again (the old page polling)");
    n.note("failed", "shop.example:80", "connect ECONNREFUSED");
    expect(n.explain(mark, "http://shop.example/cart")).toMatchObject({ kind: "failed", why: "connect ECONNREFUSED" });
    // Nothing about this target since the mark: no explanation, not the old refusal.
    expect(n.explain(mark, "http://other.example/")).toBeUndefined();
    expect(n.explain(n.seq, "http://127.0.0.1/")).toBeUndefined();
  });

  it("follows a redirect: the navigation that failed is the one explained", () => {
    const n = new EgressNotes();
    const mark = n.seq;
    n.note("refused", "10.0.0.5:80", "private");
    n.navigationFailed("http://10.0.0.5/admin");
    expect(n.explain(mark, "http://allowed.example/redirect")).toMatchObject({ kind: "refused", target: "10.0.0.5:80" });
  });
});

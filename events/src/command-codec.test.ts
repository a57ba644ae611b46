import { describe, expect, it } from "vitest";
import { decodeCommand, jobSpecFromSubmit, parseProxyServer } from "./command-codec.ts";

const bad = (body: unknown) => {
  const r = decodeCommand("jobs.submit", JSON.stringify(body));
  if (r.ok) throw new Error("expected a rejection");
  return r.error;
};

describe("jobs.submit validation", () => {
  it("refuses a fingerprint the browser would refuse on every attempt (control characters in headers, an unknown time zone), naming the field", () => {
    for (const [fingerprint, path] of [
      [{ userAgent: "Mozilla/5.0\r\nX-Evil: 1" }, "fingerprint.userAgent"],
      [{ timezone: "Foo/Bar" }, "fingerprint.timezone"],
      [{ userAgentMetadata: { brands: [{ brand: "Chromium\u0000", version: "1" }], platform: "Linux", platformVersion: "", architecture: "x86", model: "", mobile: false } }, "fingerprint.userAgentMetadata.brands[0].brand"],
    ] as const) {
      const r = decodeCommand("jobs.submit", JSON.stringify({ url: "https://example.com", fingerprint }));
      expect(r.ok, path).toBe(false);
      if (!r.ok) expect(r.error.path, path).toBe(path);
    }
    expect(decodeCommand("jobs.submit", JSON.stringify({ url: "https://example.com", fingerprint: { userAgent: "Mozilla/5.0 (X11; Linux x86_64)", timezone: "America/Argentina/Buenos_Aires" } })).ok).toBe(true);
    expect(decodeCommand("jobs.submit", JSON.stringify({ url: "https://example.com", fingerprint: { timezone: "UTC" } })).ok).toBe(true);
    // A tab is a header value's character (Chromium sends it).
    expect(decodeCommand("jobs.submit", JSON.stringify({ url: "https://example.com", fingerprint: { userAgent: "Mozilla/5.0\t(X11)" } })).ok).toBe(true);
  });

  it("refuses a proxy address no worker can use (each attempt failed as a retryable 'Invalid URL') or that holds a login (kept in clear, and not used), naming the field; takes host:port of every scheme", () => {
    for (const [server, message] of [
      ["http://h:99999", /is not a proxy address/],
      ["http://%zz:80", /is not a proxy address/],
      ["socks5://%zz:1080", /is not a proxy address/],
      ["socks5://:1080", /is not a proxy address/],
      ["http://h:0", /port must be from 1 to 65535/],
      ["http://user:secret@h:3128", /no login in the proxy's address: give it as proxy\.username and proxy\.password/],
      ["socks5://user@h:1080", /no login in the proxy's address/],
      ["http://h:80?x", /without a path, query or fragment/],
      ["http://h:80\\x", /without a path, query or fragment/],
    ] as const) {
      const r = decodeCommand("jobs.submit", JSON.stringify({ url: "https://example.com", proxy: { server } }));
      expect(r.ok, server).toBe(false);
      if (!r.ok) expect(r.error, server).toMatchObject({ path: "proxy.server", message: expect.stringMatching(message) });
      // The message never repeats a login.
      if (!r.ok) expect(r.error.message).not.toContain("secret");
      const a = decodeCommand("worker.assign", JSON.stringify({ jobId: "j1", attempt: 1, epoch: 1, spec: { url: "https://example.com", priority: 5, maxAttempts: 3, timeoutMs: 60_000, proxy: { server } } }));
      expect(a.ok ? undefined : a.error.path, server).toBe("spec.proxy.server");
    }
    for (const server of ["http://10.0.0.5:3128", "https://proxy.example.com:443", "socks4://h", "socks5://[2001:db8::1]:1080", "http://proxy.example.com"]) {
      expect(decodeCommand("jobs.submit", JSON.stringify({ url: "https://example.com", proxy: { server } })).ok, server).toBe(true);
    }
    // Read as the worker reads it (one parser): a socks host by http's rules, an IDN in punycode, the port as written.
    expect(parseProxyServer("socks5://bücher.de:1080")).toEqual({ ok: true, value: { scheme: "socks5", host: "xn--bcher-kva.de", port: 1080 } });
    expect(parseProxyServer("socks5://%41:1080")).toEqual({ ok: true, value: { scheme: "socks5", host: "a", port: 1080 } });
    expect(parseProxyServer("http://[::1]:80")).toEqual({ ok: true, value: { scheme: "http", host: "::1", port: 80 } });
    expect(parseProxyServer("socks4://h")).toEqual({ ok: true, value: { scheme: "socks4", host: "h" } });
  });

  it("refuses a Recorder step in a page other than the main one at submission, naming it (it failed mid-run as unsupported after the steps before it acted); an assignment of one takes it (a job from before: the worker fails it before its first step)", () => {
    const steps = [{ type: "navigate", url: "https://example.com", target: "main" }, { type: "click", target: "https://example.com/popup", selectors: [["#a"]] }];
    expect(bad({ scenario: { steps } })).toMatchObject({ path: "scenario.steps[1].target", message: expect.stringMatching(/^click step: target "https:\/\/example.com\/popup" is not supported: steps run in the main page only/) });
    const assign = decodeCommand("worker.assign", JSON.stringify({ jobId: "j-1", attempt: 1, epoch: 1, spec: { priority: 5, maxAttempts: 3, timeoutMs: 60_000, scenario: { steps } } }));
    // Refused there, every worker would refuse it and the master requeue it for days (a review).
    expect(assign.ok).toBe(true);
    expect(decodeCommand("jobs.submit", JSON.stringify({ scenario: { steps: [steps[0]] } })).ok).toBe(true);
  });

  it("refuses an unpaired surrogate anywhere (three idempotency keys made one job id, two jobs lost) and a __proto__ key (its page answered 500), naming the field", () => {
    for (const [body, path] of [
      [{ url: "https://example.com/\ud800" }, "url"],
      [{ url: "https://example.com", idempotencyKey: "A1\udfff" }, "idempotencyKey"],
      [{ scenario: { steps: [{ type: "navigate", url: "https://example.com" }, { type: "type", selector: "#q", text: "x\ud83d" }] } }, "scenario.steps[1].text"],
      [{ scenario: { steps: [{ type: "navigate", url: "https://example.com" }, { type: "waitForElement", selectors: [["#a"]], attributes: JSON.parse('{"__proto__": "x"}') }] } }, "scenario.steps[1].attributes.__proto__"],
    ] as const) {
      const r = decodeCommand("jobs.submit", JSON.stringify(body));
      expect(r.ok, path).toBe(false);
      if (!r.ok) expect(r.error.path, path).toBe(path);
    }
    expect(decodeCommand("jobs.submit", JSON.stringify({ scenario: { steps: [{ type: "navigate", url: "https://example.com/\u{1F600}" }, { type: "type", selector: "#q", text: "caf\u00e9 \u{1F600}" }] } })).ok).toBe(true);
  });

  it("refuses a key given twice in one object, naming it (JSON.parse kept the last silently: a job file with two timeouts ran with either), and accepts the same key in different objects", () => {
    for (const [text, path] of [
      ['{"url":"https://example.com","priority":1,"priority":9}', "priority"],
      ['{"url":"https://example.com","tags":["a"],"scenario":{"steps":[{"type":"navigate","url":"https://example.com"},{"type":"wait","ms":1,"ms":2}]}}', "scenario.steps[1].ms"],
      // The same key spelled with an escape is the same key.
      ['{"url":"https://example.com","\\u0070riority":1,"priority":2}', "priority"],
      ['{"url":"https://example.com","fingerprint":{"locale":"en","timezone":"UTC","locale":"de"}}', "fingerprint.locale"],
    ] as const) {
      const r = decodeCommand("jobs.submit", text);
      expect(r.ok, text).toBe(false);
      if (!r.ok) expect([r.error.path, r.error.message], text).toEqual([path, "this key appears twice in one object (JSON keeps only the last); give it once"]);
    }
    // Keys repeated across objects, keys inside string values, and a string value equal to a key are fine.
    const ok = '{"url":"https://example.com/\\"priority\\":","tags":["priority","priority"],"scenario":{"steps":[{"type":"navigate","url":"https://example.com"},{"type":"wait","ms":1}],"timeout":5},"timeoutMs":9000}';
    const r = decodeCommand("jobs.submit", ok);
    expect(r.ok ? r.value : r.error).toMatchObject({ url: 'https://example.com/"priority":', tags: ["priority", "priority"] });
  });

  it("accepts a url job and applies defaults", () => {
    const r = decodeCommand("jobs.submit", JSON.stringify({ url: "https://example.com", tags: ["a"] }));
    expect(r.ok).toBe(true);
    if (r.ok) expect(jobSpecFromSubmit(r.value)).toEqual({ url: "https://example.com", tags: ["a"], priority: 5, maxAttempts: 3, timeoutMs: 120_000 });
  });

  it("leaves an empty workerLabels out of the job's spec (workers that predate labels refuse the field)", () => {
    const r = decodeCommand("jobs.submit", JSON.stringify({ url: "https://example.com", workerLabels: [] }));
    expect(r.ok && "workerLabels" in jobSpecFromSubmit(r.value)).toBe(false);
    const l = decodeCommand("jobs.submit", JSON.stringify({ url: "https://example.com", workerLabels: ["eu"] }));
    expect(l.ok && jobSpecFromSubmit(l.value).workerLabels).toEqual(["eu"]);
  });

  it("takes a browser name, not any text (a NUL browser was taken and waited for ever)", () => {
    expect(decodeCommand("jobs.submit", JSON.stringify({ url: "https://example.com", browser: "chromium" })).ok).toBe(true);
    for (const b of ["\u0000", "Google Chrome", "chrome\n"]) expect(bad({ url: "https://example.com", browser: b }).path).toBe("browser");
  });

  it("refuses a proxy password or username with control characters (Basic credentials may not have any), and takes other characters", () => {
    const proxy = (p: Record<string, string>) => ({ url: "https://example.com", proxy: { server: "http://p:3128", username: "u", ...p } });
    for (const pw of ["a\r\nX-Injected: 1", "tab\there", "nul\u0000", "del\u007f"]) expect(bad(proxy({ password: pw })).path).toBe("proxy.password");
    expect(bad(proxy({ username: "u\r\n" })).path).toBe("proxy.username");
    expect(decodeCommand("jobs.submit", JSON.stringify(proxy({ password: "pä ss:wörd/\"'$%€" }))).ok).toBe(true);
  });

  it("replaces a proxy password by what the sealer makes of it, and refuses to go on without a sealer", () => {
    const r = decodeCommand("jobs.submit", JSON.stringify({ url: "https://example.com", proxy: { server: "http://p:3128", username: "u", password: "s3cret", bypass: ["<-loopback>"] } }));
    if (!r.ok) throw new Error(r.error.message);
    const spec = jobSpecFromSubmit(r.value, (plain) => `v1.AAAAAAAAAAAAAAAA.${Buffer.from(plain).toString("base64url").padEnd(22, "A")}`);
    expect(spec.proxy).toEqual({ server: "http://p:3128", username: "u", sealedPassword: "v1.AAAAAAAAAAAAAAAA.czNjcmV0AAAAAAAAAAAAAA", bypass: ["<-loopback>"] });
    expect(JSON.stringify(spec)).not.toContain("s3cret");
    expect(() => jobSpecFromSubmit(r.value)).toThrow(/proxy password and no sealer/);
    const noPassword = decodeCommand("jobs.submit", JSON.stringify({ url: "https://example.com", proxy: { server: "http://p:3128" } }));
    if (noPassword.ok) expect(jobSpecFromSubmit(noPassword.value).proxy).toEqual({ server: "http://p:3128" });
  });

  it.each([
    [{ priority: 5 }, "url", /url or a scenario/],
    [{ url: "ftp://x" }, "url", /http\(s\) URL/],
    [{ url: "http://x.test:99999/" }, "url", /not a URL a browser can open/],
    [{ url: "https://x", priority: 0 }, "priority", /greater or equal to 1/],
    [{ url: "https://x", priority: 11 }, "priority", /less or equal to 10/],
    [{ url: "https://x", priority: 2.5 }, "priority", /integer/],
    [{ url: "https://x", maxAttempts: 0 }, "maxAttempts", /greater or equal/],
    [{ url: "https://x", timeoutMs: 10 }, "timeoutMs", /greater or equal to 1000/],
    [{ url: "https://x", runAt: "soon" }, "runAt", /ISO-8601/],
    [{ url: "https://x", runAt: "2026-01-02T00:00:00Z", expiresAt: "2026-01-01T00:00:00Z" }, "expiresAt", /after runAt/],
    [{ url: "https://x", tags: ["has space"] }, "tags[0]", /match/],
    [{ url: "https://x", proxy: { server: "proxy:8080" } }, "proxy.server", /scheme:\/\/host:port/],
    [{ url: "https://x", proxy: { server: "http://p:3128", username: "u\r\nX-Injected: 1" } }, "proxy.username", /no control characters/],
    [{ url: "https://x", fingerprint: { timezone: "Not A Zone" } }, "fingerprint.timezone", /IANA/],
    [{ url: "https://x", fingerprint: { viewport: { width: 0, height: 10 } } }, "fingerprint.viewport.width", /greater or equal/],
    [{ url: "https://x", colour: "red" }, "colour", /unknown property/],
    [{ scenario: { steps: [] } }, "scenario.steps", /at least one step/],
    [{ scenario: { steps: [{ type: "navigate", url: "https://x" }, { type: "teleport" }] } }, "scenario.steps[1].type", /unknown step type "teleport"/],
    [{ scenario: { steps: [{ type: "type", selector: "#q" }] } }, "scenario.steps[0].text", /type step: .*required/i],
    [{ scenario: { steps: [{ type: "extract", fields: { price: { selector: ".p", from: "attribute" } } }] } }, "scenario.steps[0].fields.price.attribute", /required/],
    [{ scenario: { steps: [{ type: "assert" }] } }, "scenario.steps[0]", /at least one of selector, text, url, title/],
  ])("rejects %j at %s", (body, path, message) => {
    const e = bad(body);
    expect(e.path).toBe(path);
    expect(e.message).toMatch(message);
  });

  it("rejects non-JSON and oversized bodies", () => {
    expect(decodeCommand("jobs.submit", "nope")).toMatchObject({ ok: false, error: { code: "not-json" } });
    expect(decodeCommand("jobs.submit", JSON.stringify({ url: "https://x" }), 10)).toMatchObject({ ok: false, error: { code: "too-large" } });
  });

  it("validates worker.assign including its spec's scenario", () => {
    const r = decodeCommand("worker.assign", JSON.stringify({ jobId: "j", attempt: 1, epoch: 3, spec: { priority: 5, maxAttempts: 3, timeoutMs: 5000, scenario: { steps: [{ type: "wait" }] } } }));
    expect(r).toMatchObject({ ok: false, error: { path: "spec.scenario.steps[0].ms" } });
  });
});

describe("decodeReply", () => {
  it("accepts valid replies and names the field of an invalid one", async () => {
    const { decodeReply } = await import("./command-codec.ts");
    expect(decodeReply("worker.assign", '{"accepted":true}')).toEqual({ ok: true, value: { accepted: true } });
    expect(decodeReply("jobs.submit", '{"ok":true,"jobId":"j1","duplicate":true}').ok).toBe(true);
    const bad = decodeReply("worker.assign", '{"accepted":false,"reason":"bored"}');
    expect(bad.ok).toBe(false);
    expect(decodeReply("ack", "nope")).toMatchObject({ ok: false, error: { code: "not-json" } });
  });
});

describe("worker.assign bounds", () => {
  it("refuses an epoch past the integers a double holds (a worker once took 1e300 and refused every real master after it)", () => {
    const r = decodeCommand("worker.assign", JSON.stringify({ jobId: "j1", attempt: 1, epoch: 1e300, spec: { url: "https://example.com", priority: 5, maxAttempts: 3, timeoutMs: 60_000 } }));
    expect(r).toMatchObject({ ok: false, error: { path: "epoch" } });
  });

  it("refuses a scenario nested past the depth limit before parsing it", () => {
    const deep = `{"url":"https://example.com","tags":${"[".repeat(100)}${"]".repeat(100)}}`;
    expect(decodeCommand("jobs.submit", deep)).toMatchObject({ ok: false, error: { code: "too-deep" } });
  });
});

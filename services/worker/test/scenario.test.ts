import { readFileSync } from "node:fs";
import { Objm } from "@nats-io/obj";
import { validateScenario, type AssignReply, type Command, type Scenario } from "@troupe/events";
import { loadSecretsKey, newSecretsKey, parseSecretsKey, sealSecret } from "@troupe/events/node";
import { startTestNats, type TestNats } from "@troupe/tests/harness";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { JobAbort } from "../src/job.ts";
import type { Worker } from "../src/worker.ts";
import { EventLog, jobId, startPages, startTestWorker, type TestPages } from "./helpers.ts";
import { startHttpProxy, startSocksProxy } from "./proxies.ts";

let nats: TestNats;
let events: EventLog;
let worker: Worker;
let pages: TestPages;

beforeAll(async () => {
  [nats, pages] = await Promise.all([startTestNats({ init: true }), startPages()]);
  events = await EventLog.start(nats);
  worker = await startTestWorker(nats, { TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_WORKER_NAME: "Worker Node Scenario" });
});
// A test that ran out of time leaves its job running: stopped here, or the tests after it found the worker full
// and failed too (one slow screenshot under load made six failures).
afterEach(async () => {
  const left = [...(worker?.running.values() ?? [])];
  for (const j of left) j.abort(new JobAbort("cancelled", "the test that ran this job is over", false));
  await Promise.allSettled(left.map((j) => j.done));
});
afterAll(async () => {
  await worker?.stop("test over");
  await Promise.all([nats?.stop(), pages?.close()]);
});

type Spec = Partial<Command<"worker.assign">["spec"]>;

async function assign(spec: Spec | ((jobId: string) => Spec), tag: string) {
  const id = jobId(tag);
  const nc = await nats.connect("master");
  const body: Command<"worker.assign"> = { jobId: id, attempt: 1, epoch: 1, spec: { priority: 5, maxAttempts: 3, timeoutMs: 60_000, ...(typeof spec === "function" ? spec(id) : spec) } };
  const reply = (await nc.request(`troupe.worker.${worker.config.workerId}.assign`, JSON.stringify(body), { timeout: 5000 })).json<AssignReply>();
  return { id, reply };
}

async function run(spec: Spec | ((jobId: string) => Spec), tag: string) {
  const { id, reply } = await assign(spec, tag);
  expect(reply).toEqual({ accepted: true });
  return { id, final: await events.final(id) };
}

/** The master's secrets key (the test server's credentials.env), as the worker loads it. */
const secretsKey = () => {
  const key = loadSecretsKey(nats.env().TROUPE_DATA_DIR as string, {});
  if (!key) throw new Error("the test data dir has no secrets key");
  return key;
};

describe("a Troupe scenario on a local page", () => {
  it("types, clicks, waits, extracts and stores a screenshot", async () => {
    const { id, final } = await run({
      scenario: {
        title: "form",
        steps: [
          { type: "navigate", url: pages.url("/form") },
          { type: "type", selector: "#name", text: "Ada" },
          { type: "select", selector: "#plan", values: ["pro"] },
          { type: "click", selectors: [["#submit"]] },
          { type: "waitForElement", selectors: [["#result"]] },
          { type: "waitForElement", selectors: [["#missing"], [".item"]], operator: "==", count: 3 },
          { type: "waitForElement", selectors: [["#name"]], attributes: { name: "name" }, properties: { value: "Ada" } },
          { type: "extract", fields: {
            greeting: { selector: "#result" },
            items: { selector: ".item", all: true },
            firstLink: { selector: ".item a", from: "attribute", attribute: "href" },
            heading: { selector: "#heading", from: "html" },
            missing: { selector: "#nope" },
          } },
          { type: "screenshot", fullPage: true, label: "done" },
          { type: "assert", text: "Hello Ada", title: "Troupe test form", url: "/form" },
        ],
      },
    }, "form");
    expect(final.type).toBe("job.completed");
    if (final.type !== "job.completed") return;
    expect(final.data.attempt).toBe(1);
    expect(final.data.result.data).toEqual({ greeting: "Hello Ada (pro)", items: ["Alpha", "Beta", "Gamma"], firstLink: "/a", heading: "Sign up", missing: null });
    expect(final.data.result.dataExtracted).toBe(6);
    expect(final.data.result.steps?.map((s) => s.status)).toEqual(Array(10).fill("ok"));
    expect(final.data.metrics.responseTime).toBeGreaterThanOrEqual(0);
    expect(final.data.metrics.memoryUsed).toBeGreaterThan(0);
    const [shot] = final.data.result.screenshots;
    expect(shot).toBe(`${id}/1/009-done.png`);
    // The screenshot is in the object store, as a PNG; the event carries only its name.
    const os = await new Objm(await nats.connect("master")).open("troupe-artifacts");
    const png = await os.getBlob(shot as string);
    expect(png?.length).toBeGreaterThan(1000);
    expect(Buffer.from(png!.subarray(0, 8)).toString("hex")).toBe("89504e470d0a1a0a");
    // started, then progress after every step (repeated while a step runs), in order, then completed.
    expect(events.of("job.started", (e) => e.data.jobId === id)).toHaveLength(1);
    const done = events.of("job.progress", (e) => e.data.jobId === id).map((e) => e.data.stepsDone ?? -1);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect([...new Set(done)].filter((n) => n > 0)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(events.of("job.progress", (e) => e.data.jobId === id).at(-1)?.data.progress).toBe(100);
  });

  it("takes at most 16M pixels of a 60,000 px tall page or element (the top-left part, logged), and the whole of a small one", async () => {
    const { id, final } = await run({ scenario: { steps: [
      { type: "navigate", url: pages.url("/tall") },
      { type: "screenshot", fullPage: true, label: "page" },
      { type: "screenshot", selector: "#long", label: "element" },
      { type: "screenshot", selector: "#top", label: "small" },
    ] } }, "tall");
    if (final.type !== "job.completed") throw new Error(final.data.error.message);
    const os = await new Objm(await nats.connect("master")).open("troupe-artifacts");
    /** Width and height from the PNG's IHDR chunk. */
    const size = async (name: string) => {
      const png = Buffer.from((await os.getBlob(name))!);
      return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
    };
    const [page, element, small] = final.data.result.screenshots as [string, string, string];
    expect(page).toBe(`${id}/1/002-page.png`);
    for (const name of [page, element]) {
      const { width, height } = await size(name);
      expect(width * height).toBeLessThanOrEqual(16_000_000);
      expect(height).toBeGreaterThan(10_000); // the top of it, not a thumbnail
    }
    expect(await size(small)).toEqual({ width: expect.any(Number), height: 200 });
    const notes = final.data.result.logs.filter((l) => l.source === "worker" && /^screenshot: the /.test(l.message)).map((l) => l.message);
    expect(notes).toHaveLength(2);
    expect(notes[0]).toMatch(/^screenshot: the page is \d+×60200 px; only its top-left \d+×\d+ px were taken \(a screenshot takes at most 16,000,000 device pixels\)$/);
    expect(notes[1]).toMatch(/^screenshot: the element #long is \d+×60000 px; only its top-left/);
  });

  it("keeps a page that lies about its size or pixel ratio within 16M pixels (the screenshot is clipped to what was checked)", async () => {
    const { final } = await run({
      fingerprint: { viewport: { width: 3000, height: 3000, deviceScaleFactor: 4 } },
      scenario: { steps: [
        { type: "navigate", url: pages.url("/tall-liar") },
        { type: "screenshot", fullPage: true, label: "page" },
        { type: "screenshot", label: "viewport" },
      ] },
    }, "liar");
    if (final.type !== "job.completed") throw new Error(final.data.error.message);
    const os = await new Objm(await nats.connect("master")).open("troupe-artifacts");
    for (const name of final.data.result.screenshots) {
      const png = Buffer.from((await os.getBlob(name))!);
      const [width, height] = [png.readUInt32BE(16), png.readUInt32BE(20)];
      expect(width * height, `${name}: ${width}×${height}`).toBeLessThanOrEqual(16_000_000);
    }
    // The viewport (3000×3000 at 4 device pixels per px: 144M) was cut, and said so.
    expect(final.data.result.logs.some((l) => /^screenshot: the viewport is 3000×3000 px at 4 device pixels per px; only its top-left/.test(l.message))).toBe(true);
  });

  it("double-clicks, presses keys on an element, scrolls an element and hovers", async () => {
    const { final } = await run({ scenario: { steps: [
      { type: "navigate", url: pages.url("/widgets") },
      { type: "doubleClick", selectors: [["aria/double-click me"], ["#dbl"]] },
      { type: "press", selector: "#keys", key: "a" },
      { type: "press", selector: "#keys", key: "Enter" },
      { type: "scroll", selectors: [["#box"]], x: 0, y: 250 },
      { type: "hover", selectors: [["text/hover me"]] },
      { type: "waitForElement", selectors: [["#hov[data-hovered=yes]"]] },
      { type: "extract", fields: {
        dbl: { selector: "#dbl", from: "attribute", attribute: "data-dbl" },
        keys: { selector: "#keys", from: "attribute", attribute: "data-keys" },
        top: { selector: "#box", from: "attribute", attribute: "data-top" },
      } },
    ] } }, "widgets");
    if (final.type === "job.failed") throw new Error(final.data.error.message);
    expect(final.data.result.data).toEqual({ dbl: "yes", keys: "a Enter ", top: "250" });
  });

  it("opens a job's plain url and reports the page title", async () => {
    const { final } = await run({ url: pages.url("/form") }, "url");
    expect(final.type).toBe("job.completed");
    if (final.type === "job.completed") expect(final.data.result.data).toEqual({ title: "Troupe test form" });
  });

  it("collects page console errors in the logs", async () => {
    const { final } = await run({ url: pages.url("/error") }, "console");
    expect(final.type).toBe("job.completed");
    if (final.type === "job.completed") expect(final.data.result.logs).toContainEqual(expect.objectContaining({ level: "error", source: "console", message: "boom from the page" }));
  });
});

describe("results that do not fit in an event", () => {
  it("fail clearly and not retryably instead of being lost", async () => {
    const { final } = await run({ scenario: { steps: [{ type: "navigate", url: pages.url("/big") }, { type: "extract", fields: { all: { selector: "#big", from: "html" } } }] } }, "big");
    if (final.type !== "job.failed") throw new Error("expected the job to fail");
    expect(final.data.error).toMatchObject({ code: "result-too-large", retryable: false, message: expect.stringMatching(/extracted data is \d+ bytes/) });
    expect(final.data.steps?.map((s) => s.status)).toEqual(["ok", "ok"]);
  });

  it("are cut in the page, not copied whole into the worker first: a 5 MB text and a 1 MB list both fail at about the limit", async () => {
    for (const field of [{ selector: "#huge" }, { selector: ".row", all: true }]) {
      const { final } = await run({ scenario: { steps: [{ type: "navigate", url: pages.url("/huge-text") }, { type: "extract", fields: { v: field } }] } }, "huge");
      if (final.type !== "job.failed") throw new Error("expected the job to fail");
      expect(final.data.error).toMatchObject({ code: "result-too-large", message: expect.stringMatching(/extracted data is 16\d{4} bytes/) });
    }
  }, 90_000); // two 5 MB pages: 5-8 s alone, over 30 s beside a loaded machine's other suites
});

describe("a Chrome DevTools Recorder export", () => {
  it("validates and runs unchanged (only its origin points at the test server)", async () => {
    const text = readFileSync(new URL("./fixtures/recorder-signup.json", import.meta.url), "utf8").replaceAll("http://127.0.0.1:8080", pages.url(""));
    const scenario = JSON.parse(text) as Scenario;
    expect(validateScenario(scenario)).toBeNull();
    const { final } = await run({ scenario }, "recorder");
    if (final.type === "job.failed") throw new Error(`recorder scenario failed: ${final.data.error.message}`);
    expect(final.data.result.steps?.every((s) => s.status === "ok")).toBe(true);
    // The form was filled through aria/ selectors and submitted by the click that asserted a navigation.
    expect(pages.urls).toContain("/submitted?name=Grace&plan=pro");
    expect(final.data.result.finalUrl).toBe(pages.url("/b"));
  });
});

describe("fingerprint", () => {
  it("the page sees the user agent, Accept-Language, timezone, viewport, screen and geolocation asked for", async () => {
    const userAgent = "Mozilla/5.0 (X11; Linux x86_64) TroupeTest/1.0";
    const { final } = await run({
      scenario: { steps: [{ type: "navigate", url: pages.url("/echo") }, { type: "waitForElement", selectors: [["#geo"]] }, { type: "extract", fields: { info: { selector: "#info" }, geo: { selector: "#geo" } } }] },
      fingerprint: {
        userAgent,
        userAgentMetadata: { brands: [{ brand: "Troupe", version: "1" }], platform: "Linux", platformVersion: "6.1", architecture: "x86", model: "", mobile: false },
        locale: "de-DE",
        // Written as Intl takes it (case ignored): Chromium takes only the canonical name, which the worker passes.
        timezone: "asia/tokyo",
        viewport: { width: 1111, height: 777 },
        screen: { width: 2560, height: 1440 },
        geolocation: { latitude: 35.6812, longitude: 139.7671 },
      },
    }, "fp");
    if (final.type === "job.failed") throw new Error(final.data.error.message);
    const h = pages.headers.get("/echo")!;
    expect(h["user-agent"]).toBe(userAgent);
    expect(h["accept-language"]).toMatch(/^de-DE/);
    // Client hints follow the metadata, not the real browser.
    expect(h["sec-ch-ua"]).toContain('"Troupe";v="1"');
    expect(h["sec-ch-ua-platform"]).toBe('"Linux"');
    const info = JSON.parse(final.data.result.data.info as string);
    expect(info).toEqual({ userAgent, language: "de-DE", timezone: "Asia/Tokyo", width: 1111, height: 777, screenWidth: 2560 });
    expect(JSON.parse(final.data.result.data.geo as string)).toEqual({ lat: 35.6812, lon: 139.7671 });
  });
});

describe("fingerprint in every frame and worker", () => {
  it("a cross-site frame (its own process) sees the user agent, platform, languages and time zone of the page, and a dedicated worker the user agent, languages and time zone (the frame saw HeadlessChrome, Linux, en-US and UTC; an attack)", async () => {
    const userAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
    const before = pages.urls.length;
    const { final } = await run({
      scenario: { steps: [{ type: "navigate", url: pages.url("/fp-frames") }, { type: "waitForElement", selectors: [["#probe.done"]] }, { type: "extract", fields: { main: { selector: "#main" }, probe: { selector: "#probe" } } }] },
      fingerprint: {
        userAgent,
        userAgentMetadata: { brands: [{ brand: "Google Chrome", version: "156" }], platform: "Windows", platformVersion: "15.0.0", architecture: "x86", model: "", mobile: false },
        locale: "de-DE",
        timezone: "America/New_York",
        viewport: { width: 1000, height: 700, deviceScaleFactor: 2 },
        screen: { width: 1920, height: 1080 },
      },
    }, "fp-frames");
    if (final.type === "job.failed") throw new Error(final.data.error.message);
    const expected = { platform: "Win32", languages: ["de-DE", "de"], timezone: "America/New_York", screenWidth: 1920, dpr: 2 };
    expect(JSON.parse(final.data.result.data.main as string)).toEqual(expected);
    const probe = JSON.parse(final.data.result.data.probe as string);
    // Not the screen and scale: Chromium emulates device metrics on top-level targets only (a known limit, docs/worker.md).
    expect(probe.frame).toEqual({ userAgent, platform: "Win32", languages: ["de-DE", "de"], timezone: "America/New_York", screenWidth: expect.any(Number), dpr: expect.any(Number) });
    // A worker's navigator.platform stays the browser's: Chromium applies that override to frames only (docs/worker.md).
    expect(probe.worker).toEqual({ userAgent, platform: expect.any(String), languages: ["de-DE", "de"], timezone: "America/New_York" });
    // What the servers were sent: the frame's request too, and one Accept-Language (Chromium adds the q-values).
    expect(pages.urls.slice(before)).toContain("/fp-probe");
    for (const path of ["/fp-frames", "/fp-probe"]) {
      const h = pages.headers.get(path)!;
      expect(h["user-agent"], path).toBe(userAgent);
      expect(h["accept-language"], path).toBe("de-DE,de;q=0.9");
    }
  });

  it("navigator.platform follows a user agent given without client-hint metadata", async () => {
    const userAgent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
    const { final } = await run({
      scenario: { steps: [{ type: "navigate", url: pages.url("/fp-frames") }, { type: "waitForElement", selectors: [["#probe.done"]] }, { type: "extract", fields: { main: { selector: "#main" }, probe: { selector: "#probe" } } }] },
      fingerprint: { userAgent },
    }, "fp-platform");
    if (final.type === "job.failed") throw new Error(final.data.error.message);
    expect(JSON.parse(final.data.result.data.main as string).platform).toBe("iPhone");
    expect(JSON.parse(final.data.result.data.probe as string).frame).toMatchObject({ userAgent, platform: "iPhone" });
  });

  it("a Recorder setViewport step sets the viewport of a job whose fingerprint names a screen, and the screen stays", async () => {
    const { final } = await run({
      scenario: { steps: [{ type: "setViewport", width: 1280, height: 720, deviceScaleFactor: 1, isMobile: false, hasTouch: false, isLandscape: false }, { type: "navigate", url: pages.url("/echo") }, { type: "extract", fields: { info: { selector: "#info" } } }] },
      fingerprint: { viewport: { width: 1000, height: 700 }, screen: { width: 2560, height: 1440 } },
    }, "fp-setviewport");
    if (final.type === "job.failed") throw new Error(final.data.error.message);
    expect(JSON.parse(final.data.result.data.info as string)).toMatchObject({ width: 1280, height: 720, screenWidth: 2560 });
  });
});

describe("proxy", () => {
  it("sends the job's traffic through its proxy with the job's credentials", async () => {
    const proxy = await startHttpProxy({ user: "troupe", password: "s3cret" });
    try {
      const before = pages.urls.length;
      const { final } = await run((id) => ({
        url: pages.url("/form"),
        // Chromium skips proxies for loopback unless told not to. The password travels sealed, as the master sends it.
        proxy: { server: proxy.url, username: "troupe", sealedPassword: sealSecret("s3cret", secretsKey(), id), bypass: ["<-loopback>"] },
      }), "proxy");
      if (final.type === "job.failed") throw new Error(final.data.error.message);
      expect(final.data.result.data).toEqual({ title: "Troupe test form" });
      // The worker sends the credentials up front: the proxy never had to ask (407), and it carries only what logs in.
      expect(proxy.refused).toBe(0);
      expect(proxy.carried).toContain(pages.url("/form"));
      expect(pages.urls.slice(before)).toContain("/form");
    } finally {
      await proxy.close();
    }
  });

  it("logs in to a SOCKS5 proxy with the job's username and password (Chromium alone cannot)", async () => {
    const socks = await startSocksProxy({ version: 5, user: "troupe", password: "s3cret" });
    try {
      const { final } = await run((id) => ({
        url: pages.url("/form"),
        proxy: { server: socks.url, username: "troupe", sealedPassword: sealSecret("s3cret", secretsKey(), id), bypass: ["<-loopback>"] },
      }), "socks5");
      if (final.type === "job.failed") throw new Error(final.data.error.message);
      expect(final.data.result.data).toEqual({ title: "Troupe test form" });
      expect(socks.carried).toContain(`127.0.0.1:${pages.port}`);
      expect(socks.refused).toBe(0);
    } finally {
      await socks.close();
    }
  });

  it("fails a job whose proxy cannot be used, saying why: a bypass rule the worker cannot read, a proxy host that does not resolve", async () => {
    const { final: badRule } = await run({ url: pages.url("/form"), proxy: { server: "http://127.0.0.1:9", bypass: ["10.0.0.0/99"] } }, "bypass-rule");
    expect(badRule.type).toBe("job.failed");
    if (badRule.type === "job.failed") expect(badRule.data.error).toMatchObject({ code: "invalid", retryable: false, message: expect.stringMatching(/the job's proxy: proxy bypass rule "10\.0\.0\.0\/99" is not a valid IP range/) });
    const { final: unresolved } = await run({ url: pages.url("/form"), proxy: { server: "http://no-such-proxy.invalid:3128" } }, "proxy-dns");
    expect(unresolved.type).toBe("job.failed");
    if (unresolved.type === "job.failed") expect(unresolved.data.error).toMatchObject({ code: "proxy", retryable: true, message: expect.stringMatching(/the job's proxy http:\/\/no-such-proxy\.invalid:3128: cannot resolve no-such-proxy\.invalid/) });
  });

  it("refuses a job whose sealed proxy password does not open with its key (other key, or sealed for another job), and says why", async () => {
    const otherKey = parseSecretsKey(newSecretsKey());
    const wrongKey = await assign((id) => ({ url: pages.url("/form"), proxy: { server: "http://127.0.0.1:9", username: "u", sealedPassword: sealSecret("pw", otherKey, id) } }), "proxy-key");
    expect(wrongKey.reply).toMatchObject({ accepted: false, reason: "invalid", field: "spec.proxy.sealedPassword", message: expect.stringMatching(/does not open with this TROUPE_SECRETS_KEY/) });
    const otherJob = await assign({ url: pages.url("/form"), proxy: { server: "http://127.0.0.1:9", username: "u", sealedPassword: sealSecret("pw", secretsKey(), "another-job") } }, "proxy-job");
    expect(otherJob.reply).toMatchObject({ accepted: false, reason: "invalid", field: "spec.proxy.sealedPassword" });
    expect(worker.running.size).toBe(0);
  });
});

import { readFileSync } from "node:fs";
import { createSocket, type Socket } from "node:dgram";
import { once } from "node:events";
import { createServer as createNetServer } from "node:net";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { AssignReply, Command } from "@troupe/events";
import { descendants, startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Connection } from "puppeteer-core";
import type { Worker } from "../src/worker.ts";
import { EventLog, jobId, startPages, startTestWorker, type TestPages } from "./helpers.ts";

let nats: TestNats;
let events: EventLog;
let open: Worker;
let guarded: Worker;
let listed: Worker;
let pages: TestPages;
/** The test's master connection, for every assignment: one each (never closed) failed with "Authentication Timeout" on a loaded machine. */
let master: NatsConnection;

beforeAll(async () => {
  [nats, pages] = await Promise.all([startTestNats({ init: true }), startPages()]);
  events = await EventLog.start(nats);
  master = await nats.connect("master", "test-assign");
  open = await startTestWorker(nats, { TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_WORKER_NAME: "Worker Node Open" });
  guarded = await startTestWorker(nats, { TROUPE_WORKER_NAME: "Worker Node Guarded" });
  // "localhost" is allowed by name; 127.0.0.1 itself is not.
  listed = await startTestWorker(nats, { TROUPE_WORKER_NAME: "Worker Node Listed", TROUPE_ALLOWED_TARGETS: "localhost" });
});
afterAll(async () => {
  await Promise.all([open?.stop("test over"), guarded?.stop("test over"), listed?.stop("test over")]);
  await Promise.all([nats?.stop(), pages?.close()]);
});

type Spec = Partial<Command<"worker.assign">["spec"]>;
async function assign(w: Worker, spec: Spec, tag: string) {
  const id = jobId(tag);
  const body: Command<"worker.assign"> = { jobId: id, attempt: 2, epoch: 1, spec: { priority: 5, maxAttempts: 3, timeoutMs: 60_000, ...spec } };
  const reply = (await master.request(`troupe.worker.${w.config.workerId}.assign`, JSON.stringify(body), { timeout: 5000 })).json<AssignReply>();
  expect(reply).toEqual({ accepted: true });
  return id;
}
/** The test server's page of one link (`#go`) to `path` on the same server. */
const linkToPage = (path: string) => pages.url(`/link-to?to=${encodeURIComponent(path)}`);

/** A port nothing listens on: taken, then let go. */
async function closedPort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}
async function failed(id: string) {
  const f = await events.final(id);
  if (f.type !== "job.failed") throw new Error(`expected job ${id} to fail, it completed`);
  return f;
}

describe("step failures", () => {
  it("a failing step fails the job naming that step", async () => {
    const id = await assign(open, { scenario: { steps: [
      { type: "navigate", url: pages.url("/form") },
      { type: "click", name: "press the missing button", selectors: [["#does-not-exist"]], timeout: 500 },
      { type: "extract", fields: { h: { selector: "#heading" } } },
    ] } }, "fail");
    const f = await failed(id);
    expect(f.data.attempt).toBe(2);
    expect(f.data.error).toMatchObject({ code: "timeout", retryable: true, step: { index: 1, type: "click", name: "press the missing button" } });
    expect(f.data.error.message).toMatch(/^step 2 \(click "press the missing button"\)/);
    expect(f.data.steps?.map((s) => s.status)).toEqual(["ok", "failed"]);
  });

  // 4 s, not 300 ms: the first check must be answered for the step to say what it found, and on a loaded machine it
  // took over 1.5 s (puppeteer injects its query helpers into the page first); the same for the two asserts below.
  it("a navigation that gets a download fails for good, naming the file (it failed as a retryable net::ERR_ABORTED on every attempt)", async () => {
    for (const spec of [{ scenario: { steps: [{ type: "navigate" as const, url: pages.url("/report.pdf") }] } }, { url: pages.url("/report.pdf") }]) {
      const f = await failed(await assign(open, spec, `download-${"url" in spec ? "url" : "navigate"}`));
      expect(f.data.error, JSON.stringify(spec)).toMatchObject({ code: "navigation", retryable: false });
      expect(f.data.error.message).toMatch(/navigation to http:\/\/127\.0\.0\.1:\d+\/report\.pdf got a download \(report\.pdf\), not a page/);
    }
  });

  it("a screenshot of an element waits for it to be shown, and one never shown fails as a timeout to retry (it was a final 'not visible' at once)", async () => {
    const shot = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/shown-later") }, { type: "screenshot", selector: "#box" }] } }, "shot-later");
    const f = await events.final(shot);
    // Without the wait it failed here: #box is there, hidden, for 2 s after the load.
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    // Named by its step (2) and, without a label, as an element's (it was "page", at the 0-based index).
    expect(f.data.result.screenshots).toEqual([expect.stringMatching(/\/002-element\.png$/)]);
    const never = await failed(await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/shown-later") }, { type: "screenshot", selector: "#never", timeout: 3000 }] } }, "shot-never"));
    expect(never.data.error).toMatchObject({ code: "timeout", retryable: true, step: { index: 1, type: "screenshot" } });
  });

  it("a waitForElement whose count never matches names what it found", async () => {
    const id = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/form") }, { type: "waitForElement", selectors: [[".item"]], operator: "==", count: 5, timeout: 4000 }] } }, "count");
    expect((await failed(id)).data.error).toMatchObject({ code: "timeout", retryable: true, step: { index: 1, type: "waitForElement" }, message: expect.stringMatching(/expected == 5 matching elements, found 3/) });
  });

  it("a waitForElement with visible: false waits for its elements to go (Puppeteer Replay's `result === visible`): it waited for them to be there", async () => {
    const ok = await assign(open, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: pages.url("/spinner") },
      { type: "waitForElement", selectors: [["#spin"]], visible: false, timeout: 15_000 },
      { type: "waitForElement", selectors: [["#never"], ["#hidden"]], visible: false, timeout: 15_000 },
      // Not plain CSS: counted with Puppeteer's own query.
      { type: "waitForElement", selectors: [["text/loading"]], visible: false, timeout: 15_000 },
      { type: "extract", fields: { state: { selector: "#state" } } },
    ] } }, "wfe-gone");
    const f = await events.final(ok);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ state: "loaded" });
    // 4 s: what is proved (it never goes) does not depend on it, as long as the first check is answered within it (+ 900
    // ms; over 1.5 s on a loaded machine, as for the count above).
    const stays = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/spinner") }, { type: "waitForElement", selectors: [["#stays"]], visible: false, timeout: 4000 }] } }, "wfe-stays");
    expect((await failed(stays)).data.error).toMatchObject({ code: "timeout", retryable: true, message: expect.stringMatching(/expected no visible matching element \(visible: false\), found 1$/) });
    // The same through Puppeteer's own query (not plain CSS): the text "here" of #stays never goes either (the
    // `text/loading` step above is already gone when it starts, so it proves no counting; a review).
    const staysText = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/spinner") }, { type: "waitForElement", selectors: [["text/here"]], visible: false, timeout: 4000 }] } }, "wfe-stays-text");
    expect((await failed(staysText)).data.error).toMatchObject({ code: "timeout", retryable: true, message: expect.stringMatching(/expected no visible matching element \(visible: false\), found 1$/) });
    const counted = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/spinner") }, { type: "waitForElement", selectors: [[".item"]], operator: "==", count: 3, visible: false, timeout: 4000 }] } }, "wfe-counted");
    expect((await failed(counted)).data.error).toMatchObject({ code: "timeout", message: expect.stringMatching(/expected the visible matching elements to be no longer == 3 \(visible: false\), found 3$/) });
  }, 90_000);

  it("a waitForElement or assert on a page that answers no check waits a grace for the first, then says none was answered, retryable (the scenario's backstop had ended it as 'did not finish')", async () => {
    // The wait named is what was left of the step's 300 ms when it began asking (the time the step before took to
    // settle comes off it: "1192 ms" on a loaded machine), plus the 900 ms grace.
    const waited = (message: string, step: string) => {
      const m = new RegExp(`^step 2 \\(${step}\\): the page answered no check within (\\d+) ms$`).exec(message);
      expect(m, message).not.toBeNull();
      return Number(m![1]);
    };
    const id = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/busy") }, { type: "waitForElement", selectors: [[".item"]], operator: "==", count: 5, timeout: 300 }] } }, "busy");
    const e = (await failed(id)).data.error;
    expect(e).toMatchObject({ code: "timeout", retryable: true, step: { index: 1, type: "waitForElement" } });
    expect(waited(e.message, "waitForElement")).toBeGreaterThan(900);
    expect(waited(e.message, "waitForElement")).toBeLessThanOrEqual(1200);
    // Not an assertion (final): whether the title holds is unknown.
    const a = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/busy") }, { type: "assert", title: "Another title", timeout: 300 }] } }, "busy-assert");
    const ae = (await failed(a)).data.error;
    expect(ae).toMatchObject({ code: "timeout", retryable: true, step: { index: 1, type: "assert" } });
    expect(waited(ae.message, "assert")).toBeGreaterThan(900);
    expect(waited(ae.message, "assert")).toBeLessThanOrEqual(1200);
  });

  it("a step in a page other than the main one (a job submitted before jobs.submit refused them) fails the job for good, naming it, before any step runs (it failed mid-run as unsupported after the steps before it had acted)", async () => {
    // Taken, not refused: a refusal is requeued by the master, and every worker would refuse it again (a review).
    const id = await assign(open, { scenario: { steps: [
      { type: "navigate", url: pages.url("/before-popup-target") }, { type: "click", target: pages.url("/popup"), selectors: [["#a"]] },
    ] } }, "popup-target");
    const f = await failed(id);
    expect(f.data.error).toMatchObject({ code: "invalid", retryable: false, step: { index: 1, type: "click" }, message: expect.stringMatching(/^step 2: click step: target ".*\/popup" is not supported/) });
    expect(pages.urls).not.toContain("/before-popup-target");
    // A step in the main page by name runs.
    const ok = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/form"), target: "main" }] } }, "main-target");
    expect((await events.final(ok)).type).toBe("job.completed");
  });

  it("a failed assertion is not retryable", async () => {
    const id = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/form") }, { type: "assert", title: "Another title", timeout: 4000 }] } }, "assert");
    expect((await failed(id)).data.error).toMatchObject({ code: "assertion", retryable: false, step: { index: 1, type: "assert" }, message: expect.stringMatching(/title "Troupe test form" does not contain "Another title"/) });
  });

  it("a failing assert without its own timeout ends before the job's hard timeout and says so, not retryable (timeoutMs equal to the step default made it a retryable hard timeout, run three times)", async () => {
    const id = await assign(open, { timeoutMs: 4000, scenario: { timeout: 4000, steps: [{ type: "navigate", url: pages.url("/form") }, { type: "assert", title: "Another title" }] } }, "assert-deadline");
    const f = await failed(id);
    expect(f.data.error).toMatchObject({ code: "assertion", retryable: false, step: { index: 1, type: "assert" } });
    expect(f.data.error.message).not.toMatch(/hard timeout/);
  });

  it("a 50M-character title is compared in the page: a failed title assert says so as an assertion, and a url-only job keeps 10,000 characters of it", async () => {
    const id = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/huge-title") }, { type: "assert", title: "never there", timeout: 2000 }] } }, "hugetitle");
    expect((await failed(id)).data.error).toMatchObject({
      code: "assertion", retryable: false,
      message: expect.stringMatching(/title "x{200}" \(the first 200 of 50000000 characters\) does not contain "never there"/),
    });
    const plain = await assign(open, { url: pages.url("/huge-title") }, "hugetitle-url");
    const f = await events.final(plain);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect((f.data.result.data.title as string).length).toBe(10_000);
  });

  it("a page that replaces String.prototype.slice and includes gets no more than 10,000 characters of its title back, and an assert only a boolean of its includes", async () => {
    const plain = await assign(open, { url: pages.url("/title-liar") }, "liar-url");
    const f = await events.final(plain);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect((f.data.result.data.title as string).length).toBe(10_000);
    // includes() made to return a megabyte counts as "contains": the page chooses its own title's verdict, not the worker's memory.
    const id = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/title-liar") }, { type: "assert", text: "never there", timeout: 4000 }] } }, "liar-assert");
    const g = await events.final(id);
    expect(g.type).toBe("job.completed");
  });

  it("an optional step that fails is skipped and the job completes", async () => {
    const id = await assign(open, { scenario: { steps: [
      { type: "navigate", url: pages.url("/form") },
      { type: "click", selectors: [["#does-not-exist"]], timeout: 300, optional: true },
      { type: "extract", fields: { h: { selector: "#heading" } } },
    ] } }, "optional");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ h: "Sign up" });
    expect(f.data.result.steps?.map((s) => s.status)).toEqual(["ok", "skipped", "ok"]);
    expect(f.data.result.logs).toContainEqual(expect.objectContaining({ level: "warn", source: "worker", message: expect.stringMatching(/^optional step 2 \(click\)/) }));
  });
});

describe("reports that must fit in an event", () => {
  it("console errors of control characters: the job completes with its logs cut to fit (its job.completed was refused and the outcome lost)", async () => {
    const id = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/log-ctrl") }, { type: "extract", fields: { h: { selector: "#h" } } }] } }, "logctrl");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(`expected job.completed, got ${f.data.error.message}`);
    expect(f.data.result.data).toEqual({ h: "x" });
    const logs = f.data.result.logs;
    expect(logs.filter((l) => l.source === "console").length).toBeGreaterThan(0);
    expect(logs.at(-1)).toMatchObject({ source: "worker", message: expect.stringMatching(/^\d+ more log entries dropped \(event size limit\)$/) });
  });

  it("80 failed optional asserts quoting a 5000-character title: the job completes with every step, their errors cut", async () => {
    const asserts = Array.from({ length: 80 }, () => ({ type: "assert" as const, title: "nope", timeout: 1, optional: true }));
    const id = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/long-title") }, ...asserts, { type: "extract", fields: { h: { selector: "#h" } } }] } }, "longtitle");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(`expected job.completed, got ${f.data.error.message}`);
    expect(f.data.result.data).toEqual({ h: "x" });
    const steps = f.data.result.steps ?? [];
    expect(steps).toHaveLength(82);
    expect(steps.filter((s) => s.status === "skipped")).toHaveLength(80);
    expect(Math.max(...steps.map((s) => s.error?.length ?? 0))).toBeLessThanOrEqual(301);
  });
});

describe("hard timeout and cancel", () => {
  it("a page that never loads: the context is closed and job.failed comes at the hard timeout, long before the step's own 60 s", async () => {
    // Long enough that the browser asks for the page before the hard timeout even on a loaded machine
    // (at 2 s, a context made slowly under load once timed the job out before the request left).
    const timeoutMs = 5000;
    const id = await assign(open, { timeoutMs, scenario: { steps: [{ type: "navigate", url: pages.url("/hang"), timeout: 60_000 }] } }, "timeout");
    const final = failed(id);
    await Promise.race([pages.hangOpened, final.then((e) => Promise.reject(new Error(`the job failed before its page asked for /hang: ${e.data.error.message}`)))]);
    const f = await final;
    const started = await events.wait("job.started", (e) => e.data.jobId === id);
    // The context's close is waited for up to 1.5 s; the rest is room for a loaded machine (a bound of timeout + 2 s
    // left 0.5 s for the timer's lateness and event-loop stalls of 1.5 s seen under load), far from the step's 60 s.
    expect(Date.parse(f.time) - Date.parse(started.time)).toBeLessThan(timeoutMs + 1500 + 10_000);
    expect(f.data.error).toMatchObject({ code: "timeout", retryable: true, message: expect.stringMatching(/hard timeout/) });
    // The browser dropped the hanging request: the page really stopped.
    let dropped = false;
    void pages.hangClosed.then(() => (dropped = true));
    await waitFor("the browser to drop the hanging request", () => dropped, 15_000);
    await waitFor("the context to be released", () => open.pool.openContexts === 0 && open.running.size === 0);
  });

  it("a page flooding history.pushState: its hard timeout closes it in time, and the job beside it on the same browser completes (the browser is not killed)", async () => {
    await waitFor("no job left on the worker", () => open.running.size === 0 && open.pool.openContexts === 0, 30_000);
    const killed = open.pool.killed;
    const timeoutMs = 4000;
    const flood = await assign(open, { timeoutMs, scenario: { steps: [{ type: "navigate", url: pages.url("/flood") }, { type: "wait", ms: 60_000 }] } }, "flood");
    await events.wait("job.progress", (e) => e.data.jobId === flood && e.data.stepsDone === 1);
    // Beside it: an ordinary job whose steps run through the flood and past its hard timeout.
    const beside = await assign(open, { timeoutMs: 60_000, scenario: { steps: [{ type: "navigate", url: pages.url("/form") }, { type: "wait", ms: timeoutMs + 2000 }, { type: "extract", fields: { h: { selector: "#heading" } } }] } }, "beside-flood");
    const f = await failed(flood);
    const started = await events.wait("job.started", (e) => e.data.jobId === flood);
    expect(f.data.error).toMatchObject({ code: "timeout", message: expect.stringMatching(/hard timeout/) });
    // Far from the 60 s wait it would have run to (room for a loaded machine, as above).
    expect(Date.parse(f.time) - Date.parse(started.time)).toBeLessThan(timeoutMs + 1500 + 10_000);
    const b = await events.final(beside);
    expect(b.type, JSON.stringify(b.data)).toBe("job.completed");
    // Not killed (a slow close on a loaded machine may retire it, which is no harm to the job beside it).
    expect(open.pool.killed).toBe(killed);
    await waitFor("both contexts released", () => open.pool.openContexts === 0 && open.running.size === 0);
  }, 90_000);

  it("troupe.worker.<id>.cancel stops a running job", async () => {
    const id = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/form") }, { type: "wait", ms: 30_000 }] } }, "cancel");
    await events.wait("job.progress", (e) => e.data.jobId === id && e.data.stepsDone === 1);
    const nc = await nats.connect("master");
    const t0 = Date.now();
    const r = (await nc.request(`troupe.worker.${open.config.workerId}.cancel`, JSON.stringify({ jobId: id, attempt: 2, reason: "user asked" }), { timeout: 5000 })).json();
    expect(r).toEqual({ ok: true });
    const f = await failed(id);
    // Far from the 30 s wait it would have run to.
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(f.data.error).toMatchObject({ code: "cancelled", retryable: false, message: "cancelled: user asked" });
    await waitFor("the context to be released", () => open.pool.openContexts === 0 && open.running.size === 0);
  });
});

describe("SSRF guard (no allowance)", () => {
  it.each([
    ["loopback literal", () => pages.url("/form")],
    ["cloud metadata", () => "http://169.254.169.254/latest/meta-data/"],
    ["a hostname resolving to 127.0.0.1", () => `http://localhost:${pages.port}/form`],
  ])("refuses %s", async (_what, url) => {
    const before = pages.urls.length;
    const id = await assign(guarded, { url: url() }, "ssrf");
    const f = await failed(id);
    expect(f.data.error).toMatchObject({ code: "ssrf", retryable: false, step: { index: 0, type: "navigate" }, message: expect.stringMatching(/target refused: .*(loopback|metadata)/) });
    expect(pages.urls.length).toBe(before);
  });
});

describe("SSRF guard on the job's own proxy", () => {
  it("refuses a job whose proxy is on a private address before its browser connects anywhere", async () => {
    const before = pages.urls.length;
    const id = await assign(guarded, { url: "https://example.com/", proxy: { server: `http://127.0.0.1:${pages.port}` } }, "proxy");
    const f = await failed(id);
    expect(f.data.error).toMatchObject({ code: "ssrf", retryable: false, message: expect.stringMatching(/the job's proxy http:\/\/127\.0\.0\.1:\d+ is refused: 127\.0\.0\.1 is a loopback/) });
    expect(pages.urls.length).toBe(before);
  });
});

describe("SSRF guard on every request the page makes", () => {
  it("blocks a subresource on a private address and logs it; the job goes on", async () => {
    const id = await assign(listed, { scenario: { steps: [{ type: "navigate", url: `http://localhost:${pages.port}/embed` }, { type: "extract", fields: { p: { selector: "#p" } } }] } }, "embed");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ p: "embedding" });
    expect(f.data.result.logs).toContainEqual(expect.objectContaining({ level: "warn", source: "worker", message: expect.stringMatching(/^blocked connection to 127\.0\.0\.1:\d+: 127\.0\.0\.1 is a loopback/) }));
    expect(pages.urls).not.toContain("/secret.png");
  });

  it("refuses a redirect from an allowed host to a private address", async () => {
    const before = pages.urls.length;
    const id = await assign(listed, { url: `http://localhost:${pages.port}/redirect` }, "redirect");
    const f = await failed(id);
    expect(f.data.error).toMatchObject({ code: "ssrf", retryable: false, message: expect.stringMatching(/target refused: 127\.0\.0\.1 is a loopback/) });
    // The redirect was requested; its private target never was.
    expect(pages.urls.slice(before).filter((u) => u !== "/favicon.ico")).toEqual(["/redirect"]);
  });
});

describe("SSRF guard on what request interception never sees", () => {
  it("refuses a WebSocket to a private address at the job's egress proxy and logs it; the job goes on", async () => {
    const id = await assign(listed, { scenario: { steps: [
      { type: "navigate", url: `http://localhost:${pages.port}/socket` },
      { type: "waitForElement", selectors: [["#s.done"]] },
      { type: "extract", fields: { s: { selector: "#s" } } },
    ] } }, "socket");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ s: "error" });
    expect(f.data.result.logs).toContainEqual(expect.objectContaining({ level: "warn", source: "worker", message: expect.stringMatching(/^blocked connection to 127\.0\.0\.1:\d+: 127\.0\.0\.1 is a loopback/) }));
    expect(pages.urls.filter((u) => u.startsWith("upgrade"))).toEqual([]);
  });
});

describe("a target or a job's proxy the egress proxy cannot reach (plain http)", () => {
  it("fails the navigation, naming why, instead of completing with a 502 page of the egress proxy's own (an attack)", async () => {
    const port = await closedPort();
    const id = await assign(listed, { url: `http://localhost:${port}/nothing-here`, maxAttempts: 1 }, "refused-target");
    expect((await failed(id)).data.error).toMatchObject({
      code: "navigation", retryable: true, step: { index: 0, type: "navigate" },
      message: expect.stringMatching(new RegExp(`navigation to http://localhost:${port}/nothing-here failed: localhost:${port}: .*ECONNREFUSED`)),
    });
  });

  it("sends a request a target hung up on once: the navigation fails, and the target never sees it twice (a closed reused connection made Chromium send it again, form POSTs too)", async () => {
    const before = pages.urls.length;
    const id = await assign(listed, { maxAttempts: 1, scenario: { steps: [
      // A page first, so that a connection to the egress proxy could be reused.
      { type: "navigate", url: `http://localhost:${pages.port}/form` },
      { type: "navigate", url: `http://localhost:${pages.port}/drop` },
    ] } }, "drop");
    expect((await failed(id)).data.error).toMatchObject({ code: "navigation", retryable: true, step: { index: 1, type: "navigate" } });
    expect(pages.urls.slice(before).filter((u) => u === "/drop")).toEqual(["/drop"]);
  });

  it("is a failed navigation, not a refused one, while the page keeps asking for a private address (any refusal during the navigation made it a final ssrf; a review)", async () => {
    const down = await closedPort();
    const page = `http://localhost:${pages.port}/poll-private?down=${down}`;
    const nav = await assign(listed, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: page }, { type: "wait", ms: 300 },
      { type: "navigate", url: `http://localhost:${down}/gone` },
    ] } }, "poll-nav");
    expect((await failed(nav)).data.error).toMatchObject({ code: "navigation", retryable: true, step: { index: 2, type: "navigate" }, message: expect.stringMatching(new RegExp(`failed: localhost:${down}: .*ECONNREFUSED`)) });
    // A click there: the page shows the egress proxy's failure page, which fails the job as a navigation too.
    const click = await assign(listed, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: page }, { type: "wait", ms: 300 },
      { type: "click", selectors: [["#down"]] }, { type: "wait", ms: 1000 },
    ] } }, "poll-click");
    expect((await failed(click)).data.error).toMatchObject({ code: "navigation", retryable: true });
  });

  it("is not fooled by a target's service worker sending the egress proxy's header: the page it served is the page (it was a final ssrf; a review)", async () => {
    const id = await assign(listed, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: `http://localhost:${pages.port}/sw-forge` },
      { type: "waitForElement", selectors: [["#s.done"]], timeout: 5000 },
      { type: "navigate", url: `http://localhost:${pages.port}/forged` },
      { type: "extract", fields: { ok: { selector: "#ok" } } },
    ] } }, "sw-forge");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ ok: "a fine page" });
  });

  it("is a refused navigation when the page goes to a private address while a frame of it is still loading (the aborted frame explained it: a retryable navigation; a review)", async () => {
    const id = await assign(listed, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: `http://localhost:${pages.port}/frame-then-private` },
      { type: "click", selectors: [["#b"]] }, { type: "wait", ms: 1500 },
    ] } }, "frame-private");
    expect((await failed(id)).data.error).toMatchObject({ code: "ssrf", retryable: false, message: expect.stringMatching(/refused target: 127\.0\.0\.1 is a loopback/) });
  });

  it("fails the navigation when the job's proxy is down, and nothing goes direct", async () => {
    const port = await closedPort();
    const before = pages.urls.length;
    const id = await assign(listed, { url: `http://localhost:${pages.port}/form`, proxy: { server: `http://localhost:${port}`, bypass: ["<-loopback>"] } }, "proxy-down");
    expect((await failed(id)).data.error).toMatchObject({
      code: "navigation", retryable: true, step: { index: 0, type: "navigate" },
      message: expect.stringMatching(new RegExp(`navigation to http://localhost:${pages.port}/form failed: localhost:${pages.port}: .*localhost:${port}`)),
    });
    expect(pages.urls.length).toBe(before);
  });
});

describe("a dedicated worker's fetch on a guarded worker", () => {
  it("goes through every time (with Puppeteer's request interception, 3 runs in 12 hung until the step's timeout: puppeteer#14515)", async () => {
    for (let i = 0; i < 8; i++) {
      const id = await assign(listed, { scenario: { steps: [
        { type: "navigate", url: `http://localhost:${pages.port}/worker-fetch` },
        { type: "waitForElement", selectors: [["#w.done"]], timeout: 5000 },
        { type: "extract", fields: { w: { selector: "#w" } } },
      ] } }, `worker-fetch-${i}`);
      const f = await events.final(id);
      if (f.type !== "job.completed") throw new Error(`run ${i + 1}: ${f.data.error.message}`);
      expect(f.data.result.data, `run ${i + 1}`).toEqual({ w: "200" });
    }
  });
});

describe("a site's own HTTP auth on a guarded worker", () => {
  it("gets no answer from the worker: the egress proxy's login goes to proxy challenges only (Puppeteer's page.authenticate gave it to any site answering 401)", async () => {
    const before = pages.urls.length;
    const id = await assign(listed, { scenario: { steps: [
      { type: "navigate", url: `http://localhost:${pages.port}/needs-auth` },
      { type: "waitForElement", selectors: [["#fetched"]] },
      { type: "extract", fields: { page: { selector: "#p" }, fetched: { selector: "#fetched" } } },
    ] } }, "site-auth");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    // The page and its fetch saw the site's 401, as a browser nobody logs in with.
    expect(f.data.result.data).toEqual({ page: "401", fetched: "401" });
    const seen = pages.urls.slice(before);
    expect(seen).toEqual(expect.arrayContaining(["/needs-auth", "/needs-auth?from=fetch"]));
    expect(seen.filter((u) => u.startsWith("authorization"))).toEqual([]);
  });
});

describe("a page that sends itself somewhere refused", () => {
  it("fails as ssrf at the step that left it on Chromium's error page (it used to complete with the error page's text)", async () => {
    const id = await assign(listed, { scenario: { steps: [
      { type: "navigate", url: `http://localhost:${pages.port}/self-nav` },
      { type: "wait", ms: 1000 },
      { type: "extract", fields: { h: { selector: "body" } } },
    ] } }, "self-nav");
    const f = await failed(id);
    expect(f.data.error).toMatchObject({ code: "ssrf", retryable: false, step: { index: 1, type: "wait" }, message: expect.stringMatching(/went to a refused target: .*169\.254\.169\.254/) });
  });
});

describe("a scenario whose last step sends the page somewhere (the job completed before the page got there)", () => {
  const linkTo = (to: string, host = "localhost") => `http://${host}:${pages.port}/link-to?to=${encodeURIComponent(to)}`;

  it("fails as ssrf when a last-step click goes to a refused target", async () => {
    const id = await assign(listed, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: linkTo("http://169.254.169.254/latest/") }, { type: "click", selectors: [["#go"]] }] } }, "last-click-refused");
    expect((await failed(id)).data.error).toMatchObject({ code: "ssrf", retryable: false, step: { index: 1, type: "click" }, message: expect.stringMatching(/refused target: .*169\.254\.169\.254/) });
  });

  it("fails as a retryable navigation when a last-step click or form goes to a target that is down, through the egress proxy or straight", async () => {
    const down = await closedPort();
    const guardedClick = await assign(listed, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: linkTo(`http://localhost:${down}/gone`) }, { type: "click", selectors: [["#go"]] }] } }, "last-click-down");
    expect((await failed(guardedClick)).data.error).toMatchObject({ code: "navigation", retryable: true, step: { index: 1, type: "click" }, message: expect.stringMatching(new RegExp(`localhost:${down}: .*ECONNREFUSED`)) });
    const openForm = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: linkTo(`http://127.0.0.1:${down}/gone`, "127.0.0.1") }, { type: "click", selectors: [["#send"]] }] } }, "last-form-down");
    expect((await failed(openForm)).data.error).toMatchObject({ code: "navigation", retryable: true, step: { index: 1, type: "click" }, message: expect.stringMatching(/Chromium's error page/) });
  });

  it("completes on the page a last-step click led to, and without waiting when nothing is loaded (a 204)", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: linkTo("/form", "127.0.0.1") }, { type: "click", selectors: [["#go"]] }] } }, "last-click-ok");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.finalUrl).toBe(pages.url("/form"));
    // The step's time is the default (30 s): had it waited for the 204, it would have said so in a warning.
    const none = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: linkTo("/no-content", "127.0.0.1") }, { type: "click", selectors: [["#go"]] }] } }, "last-click-204");
    const g = await events.final(none);
    if (g.type !== "job.completed") throw new Error(g.data.error.message);
    expect(g.data.result.finalUrl).toBe(linkTo("/no-content", "127.0.0.1"));
    expect(g.data.result.logs.filter((l) => /still loading/.test(l.message))).toEqual([]);
  });

  it("does not wait when a last-step click loads nothing of the page's own (another window, mailto:, a fragment, javascript:)", async () => {
    for (const link of ["blank", "mail", "hash", "js"]) {
      const id = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/links-elsewhere") }, { type: "click", selectors: [[`#${link}`]] }] } }, `last-click-${link}`);
      const f = await events.final(id);
      if (f.type !== "job.completed") throw new Error(`${link}: ${f.data.error.message}`);
      // The step's time is the default (30 s): a wait for a load that never comes would end in this warning.
      expect(f.data.result.logs.filter((l) => /still loading/.test(l.message)), link).toEqual([]);
    }
  });

  it("completes with a warning when the page a last-step form goes to is still loading at the step's time (a retry could send the form again)", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { timeout: 1500, steps: [{ type: "navigate", url: linkTo("/hang", "127.0.0.1") }, { type: "click", selectors: [["#send"]] }] } }, "last-form-hang");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.logs).toContainEqual(expect.objectContaining({ level: "warn", source: "worker", message: expect.stringMatching(new RegExp(`^step 2 \\(click\\) began loading ${pages.url("/hang")}, still loading after \\d+ ms; the scenario ends without it$`)) }));
    expect(f.data.result.steps?.map((s) => s.status)).toEqual(["ok", "ok"]);
  });
});

describe("steps on a page going to another document (they read the one on its way out: a final step-failed, 'Execution context was destroyed')", () => {
  async function completed(spec: Spec, tag: string) {
    const id = await assign(open, { maxAttempts: 1, ...spec }, tag);
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(`${tag}: ${f.data.error.code}: ${f.data.error.message}`);
    return f.data.result;
  }

  it("an assert or extract right after a click on a link reads the next page", async () => {
    await completed({ scenario: { steps: [{ type: "navigate", url: pages.url("/link-fast") }, { type: "click", selectors: [["#go"]] }, { type: "assert", text: "second page" }] } }, "click-assert");
    const r = await completed({ scenario: { steps: [{ type: "navigate", url: pages.url("/link-fast") }, { type: "click", selectors: [["#go"]] }, { type: "extract", fields: { h: { selector: "#h" } } }] } }, "click-extract");
    expect(r.data).toEqual({ h: "second page" });
  });

  it("a form sent with Enter, then an assert and an extract of the page it led to", async () => {
    const r = await completed({ scenario: { steps: [
      { type: "navigate", url: pages.url("/signup") }, { type: "type", selector: "#name", text: "Ada" }, { type: "press", key: "Enter" },
      { type: "assert", title: "Thanks" }, { type: "extract", fields: { thanks: { selector: "#thanks" } } },
    ] } }, "enter-assert");
    expect(r.data).toEqual({ thanks: "Thanks, Ada" });
  });

  it("an assert or extract after navigating to a page that sends itself on once loaded (a meta refresh, a load handler)", async () => {
    for (const page of ["/meta-refresh", "/js-redirect-load"]) {
      await completed({ scenario: { steps: [{ type: "navigate", url: pages.url(page) }, { type: "assert", title: "Troupe test form" }] } }, `refresh-assert${page.replace(/\//g, "-")}`);
      const r = await completed({ scenario: { steps: [{ type: "navigate", url: pages.url(page) }, { type: "extract", fields: { h: { selector: "#heading" } } }] } }, `refresh-extract${page.replace(/\//g, "-")}`);
      expect(r.data, page).toEqual({ h: "Sign up" });
    }
  });

  it("a url-only job on such a page completes with the title of the page it lands on (it failed as a retryable 'worker error' every attempt)", async () => {
    for (const page of ["/meta-refresh", "/js-redirect-load"]) {
      const r = await completed({ url: pages.url(page) }, `refresh-url${page.replace(/\//g, "-")}`);
      expect(r.data, page).toEqual({ title: "Troupe test form" });
      expect(r.finalUrl, page).toBe(pages.url("/form"));
    }
  });
});

describe("a step past its time", () => {
  it("is stopped, not left running: an optional slow type that outlived its time typed on into the next step's field", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: pages.url("/typing") },
      { type: "type", selector: "#a", text: "x".repeat(40), delay: 100, timeout: 1000, optional: true },
      { type: "type", selector: "#b", text: "HELLO" }, { type: "wait", ms: 2500 },
      { type: "extract", fields: { a: { selector: "#va" }, b: { selector: "#vb" } } },
    ] } }, "optional-type");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.steps?.map((s) => s.status)).toEqual(["ok", "skipped", "ok", "ok", "ok"]);
    expect(f.data.result.data.b).toBe("HELLO");
    expect((f.data.result.data.a as string).length).toBeLessThan(40);
  });

  it("a hard timeout reports the step it ended, the steps before it and their screenshots (they were dropped)", async () => {
    const id = await assign(open, { maxAttempts: 1, timeoutMs: 5000, scenario: { steps: [
      { type: "navigate", url: pages.url("/typing") }, { type: "screenshot", label: "before" },
      { type: "type", selector: "#a", text: "x".repeat(100), delay: 1000, timeout: 600_000 },
    ] } }, "hard-partial");
    const f = await failed(id);
    expect(f.data.error).toMatchObject({ code: "timeout", retryable: true, step: { index: 2, type: "type" }, message: expect.stringMatching(/hard timeout/) });
    expect(f.data.steps?.map((s) => [s.index, s.status])).toEqual([[0, "ok"], [1, "ok"], [2, "failed"]]);
    expect(f.data.steps?.[2]?.error).toMatch(/hard timeout/);
    // Then the page as the hard timeout found it (failure-shots.test.ts).
    expect(f.data.screenshots).toEqual([expect.stringMatching(/\/002-before\.png$/), expect.stringMatching(/\/003-failed\.png$/)]);
  });
});

describe("fields a type step cannot use (it reported ok with nothing typed)", () => {
  const on = (step: Record<string, unknown>) => ({ maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/fields") }, step] } }) as Spec;

  it("types into the first visible match, and waits for a field the page enables late", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: pages.url("/fields") }, { type: "type", selector: ".q", text: "shown" }, { type: "type", selector: "#late", text: "late" },
      { type: "extract", fields: { shown: { selector: "#v-shown" }, late: { selector: "#v-late" } } },
    ] } }, "fields-ok");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ shown: "shown", late: "late" });
  });

  it("fails a hidden, disabled or read-only field as a retryable timeout, and a wrapper as a final step failure, naming why", async () => {
    for (const [selector, why] of [["#off", "is disabled"], ["#in-fieldset", "is disabled"], ["#ro", "is read-only"]] as const) {
      const id = await assign(open, on({ type: "type", selector, text: "x", timeout: 500 }), `field${selector.replace("#", "-")}`);
      expect((await failed(id)).data.error, selector).toMatchObject({ code: "timeout", retryable: true, step: { index: 1, type: "type" }, message: `step 2 (type): type: ${selector} ${why}` });
    }
    const wrap = await assign(open, on({ type: "type", selector: "#wrap", text: "x", timeout: 500 }), "field-wrap");
    expect((await failed(wrap)).data.error).toMatchObject({ code: "step-failed", retryable: false, message: expect.stringMatching(/#wrap is a div, not a text field/) });
    const sel = await assign(open, on({ type: "select", selector: "#off", values: ["a"], timeout: 500 }), "field-select");
    expect((await failed(sel)).data.error).toMatchObject({ code: "timeout", message: expect.stringMatching(/#off is disabled/) });
  });

  it("selects in the first visible select, not in a hidden one before it (the step reported ok with the visible one unchanged)", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: pages.url("/two-selects") }, { type: "select", selector: ".s", values: ["b"] },
      { type: "extract", fields: { changed: { selector: "#v-s" } } },
    ] } }, "select-visible");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data.changed).toBe("b");
  });

  it("completes when the last key is an Enter that sends a POST form, sending it once (the focus, checked after the last key, failed it as a retryable browser error, and each retry sent the form again)", async () => {
    const post = await assign(open, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: pages.url("/type-post") }, { type: "type", selector: "#q", text: "hello\n", delay: 50 },
      { type: "extract", fields: { p: { selector: "p" } } },
    ] } }, "type-enter-post");
    const p = await events.final(post);
    if (p.type !== "job.completed") throw new Error(`${p.data.error.code}: ${p.data.error.message}`);
    expect(p.data.result.data).toEqual({ p: "page /posted" });
    expect(pages.urls.filter((u) => u === "/posted")).toEqual(["/posted"]);
  });

  it("an Enter mid-text that sends a form fails for good; a page that leaves on its own while typing is a navigation to retry (it was made final too)", async () => {
    const mid = await failed(await assign(open, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: pages.url("/type-post") }, { type: "type", selector: "#q", text: "hi\nthere", delay: 50 },
    ] } }, "type-enter-mid"));
    expect(mid.data.error).toMatchObject({ code: "step-failed", retryable: false, message: expect.stringMatching(/an Enter in the text sent the page to another document before its last key/) });
    // 40 keys at 100 ms (4 s): the page leaves 300 ms after the first, in the middle of them.
    const left = await failed(await assign(open, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: pages.url("/leaves-soon") }, { type: "type", selector: "#q", text: "x".repeat(40), delay: 100 },
    ] } }, "type-page-left"));
    expect(left.data.error).toMatchObject({ code: "navigation", retryable: true });
  });

  it("completes when a code field moves the focus on after its last digit (it failed as 'lost the focus', every attempt)", async () => {
    const otp = await assign(open, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: pages.url("/otp") }, { type: "type", selector: "#code", text: "1234", delay: 50 },
      { type: "extract", fields: { code: { selector: "#v-code" } } },
    ] } }, "type-otp");
    const o = await events.final(otp);
    if (o.type !== "job.completed") throw new Error(`${o.data.error.code}: ${o.data.error.message}`);
    expect(o.data.result.data).toEqual({ code: "1234" });
  });

  it("fails when the page replaces the field while typing (the keys went elsewhere)", async () => {
    const id = await assign(open, on({ type: "type", selector: "#swap", text: "hello", delay: 50 }), "field-swap");
    expect((await failed(id)).data.error).toMatchObject({ code: "step-failed", retryable: true, message: expect.stringMatching(/#swap lost the focus while typing/) });
  });
});

/**
 * The timeout of a click or hover on an element whose cover never goes: what the test proves does not depend on it, as
 * long as the worker answers one hit test within it (plus the step's first-check grace); 800 ms did not on a loaded machine.
 */
const COVER_WAIT_MS = 5000;

describe("an element something else covers (the click landed on the cover and the step reported ok)", () => {
  const on = (...steps: Record<string, unknown>[]) => ({ maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/covered") }, ...steps] } }) as Spec;

  it("waits out a loading overlay, then clicks the button; clicks a checkbox its own label draws over, and an icon a badge of its button draws over", async () => {
    const id = await assign(open, on(
      { type: "click", selectors: ["#spin-under"] },
      { type: "click", selectors: ["#cb"] },
      { type: "click", selectors: ["#icon"] },
      { type: "extract", fields: { state: { selector: "#state" }, button: { selector: "#state2" } } },
      { type: "assert", selector: "#cb:checked" },
    ), "covered-ok");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ state: "clicked", button: "button" });
  });

  it("clicks what a click reaches although the point is not plainly the element (a review: all failed as covered)", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: pages.url("/reachable") },
      { type: "click", selectors: ["#i9"], timeout: 3000 }, // out of its list's view
      { type: "click", selectors: ["pierce/#inner"], timeout: 3000 }, // slotted text over the shadow button
      { type: "click", selectors: ["#lens"], timeout: 3000 }, // the centre of a hollow path is its svg
      { type: "click", selectors: ["#opt-icon"], timeout: 3000 }, // pointer-events: none in a clickable option
      { type: "click", selectors: ["#plan-label"], timeout: 3000 }, // its radio is stretched over it
      { type: "hover", selectors: ["#help"], timeout: 3000 },
      { type: "click", selectors: ["#next"], timeout: 3000 }, // under the tooltip the hover opened: the move closes it
      { type: "click", selectors: ["#far"], timeout: 3000 }, // far below, scrolled to
      { type: "click", selectors: ["#i2"], timeout: 3000 }, // the list is now under the sticky header
      { type: "extract", fields: { log: { selector: "#log" } } },
    ] } }, "reachable");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ log: "i9 shadow lens option plan next far i2" });
  });

  it("clicks past a menu the last click opened on :hover, as a hand goes round it (the click landed on the menu)", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/hover-menu") },
      { type: "click", selectors: ["#products"] }, { type: "click", selectors: ["#content"], timeout: 3000 },
      { type: "extract", fields: { clicked: { selector: "#content", from: "attribute", attribute: "data-clicked" } } }] } }, "hover-menu");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ clicked: "yes" });
  });

  it("fails a click on a button a banner keeps covering as a retryable timeout naming the banner (the click went to the banner)", async () => {
    const id = await assign(open, on({ type: "click", selectors: ["#banner-under"], timeout: COVER_WAIT_MS }), "covered-banner");
    expect((await failed(id)).data.error).toMatchObject({ code: "timeout", retryable: true, step: { index: 1, type: "click" },
      message: expect.stringMatching(/click: #banner-under is covered by <div#cookie-banner\.consent> at \(\d+, \d+\)/) });
  });

  it("sees the cover of an element below the fold of a page without a doctype (its point was off the window, unchecked)", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/quirks-footer") }, { type: "click", selectors: ["#far"], timeout: COVER_WAIT_MS }] } }, "covered-quirks");
    expect((await failed(id)).data.error).toMatchObject({ code: "timeout", message: expect.stringMatching(/click: #far is covered by <div#footer>/) });
  });

  it("names a cover that is a form with inputs named id and tagName (its properties are those inputs)", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/covered") }, { type: "click", selectors: ["#form-under"], timeout: COVER_WAIT_MS }] } }, "covered-form");
    expect((await failed(id)).data.error).toMatchObject({ code: "timeout", message: expect.stringMatching(/click: #form-under is covered by <form#newsletter\.signup\.box> at/) });
  });

  it("clicks a second selector alternative when the first one's element is covered", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/covered") },
      { type: "click", selectors: [["#banner-under"], ["#free"]], timeout: 3000 }, { type: "extract", fields: { s: { selector: "#state3" } } }] } }, "covered-alternative");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ s: "free" });
  });

  it("clicks on a page that broke what the check uses, and says the check could not be made", async () => {
    // 10 s for the step: nothing here waits on time, but a loaded full run took the failed check and the click past 3 s
    // (the job's logs showed the check given up, then the step's timeout: 3.8 s).
    const id = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/broken-rects") },
      { type: "click", selectors: ["#b"], timeout: 10_000 }, { type: "extract", fields: { clicked: { selector: "#b", from: "attribute", attribute: "data-clicked" } } }] } }, "broken-rects");
    const f = await events.final(id);
    // With the job's logs and steps (they showed the 3 s step timeout above).
    if (f.type !== "job.completed") throw new Error(`${f.data.error.message}\nlogs: ${JSON.stringify(f.data.logs)}\nsteps: ${JSON.stringify(f.data.steps)}`);
    expect(f.data.result.data).toEqual({ clicked: "yes" });
    expect(f.data.result.logs).toContainEqual(expect.objectContaining({ level: "warn", message: expect.stringMatching(/could not check that the click reaches its element \(.*no rects for you/) }));
  });

  it("fails a hover on a covered element and a click on one with pointer-events: none", async () => {
    // Side by side (the worker runs two jobs at once): each waits out its whole timeout.
    const [hover, ghost] = await Promise.all([
      assign(open, on({ type: "hover", selectors: ["#banner-under"], timeout: COVER_WAIT_MS }), "covered-hover"),
      assign(open, on({ type: "click", selectors: ["#ghost"], timeout: COVER_WAIT_MS }), "covered-ghost"),
    ]);
    expect((await failed(hover)).data.error).toMatchObject({ code: "timeout", message: expect.stringMatching(/hover: #banner-under is covered by <div#cookie-banner/) });
    expect((await failed(ghost)).data.error).toMatchObject({ code: "timeout", message: expect.stringMatching(/click: #ghost gets no pointer events at \(\d+, \d+\) \(pointer-events: none/) });
  });
});

describe("WebRTC (its UDP went round the job's proxy and the SSRF guard: the site learned the worker's own address)", () => {
  let udp: Socket;
  const packets: string[] = [];
  let port = 0;
  beforeAll(async () => {
    udp = createSocket("udp4");
    udp.on("message", (_m, from) => packets.push(`${from.address}:${from.port}`));
    await new Promise<void>((r) => udp.bind(0, "127.0.0.1", r));
    port = udp.address().port;
  });
  afterAll(() => udp?.close());

  it("gathers no address and sends no UDP from a page (a STUN server of the page's choice hears nothing)", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: pages.url(`/webrtc?port=${port}`) },
      { type: "waitForElement", selectors: ["#out.done"], timeout: 15_000 },
      { type: "extract", fields: { candidates: { selector: "#out" } } },
    ] } }, "webrtc-off");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    // Gathering is over: Chromium sent all it would.
    expect(f.data.result.data).toEqual({ candidates: "[]" });
    expect(packets).toEqual([]);
  });

  it("sends it with TROUPE_WEBRTC_UDP=true (the check above sees a leak)", async () => {
    const w = await startTestWorker(nats, { TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_WEBRTC_UDP: "true", TROUPE_WORKER_NAME: "Worker Node WebRTC" });
    try {
      const heard = once(udp, "message", { signal: AbortSignal.timeout(20_000) });
      await assign(w, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url(`/webrtc?port=${port}`) }, { type: "wait", ms: 5000 }] } }, "webrtc-on");
      const [msg] = (await heard) as [Buffer];
      expect(msg.readUInt16BE(0)).toBe(0x0001); // a STUN Binding Request
    } finally {
      await w.stop("test over");
    }
  }, 60_000);
});

describe("a page whose speculation rules prerender or prefetch where its links lead", () => {
  // The scenario lingers on the page a second, as a user would: long enough for Chromium to preload.
  const via = (link: string, tag: string) => assign(open, { maxAttempts: 1, scenario: { steps: [
    { type: "navigate", url: pages.url("/prerender") }, { type: "wait", ms: 1000 },
    { type: "click", selectors: [[link]], assertedEvents: [{ type: "navigation" }], timeout: 8000 },
    { type: "assert", url: link === "#go" ? "/prerendered" : "/prefetched", timeout: 3000 },
    { type: "assert", selector: "#never", timeout: 1000, optional: true },
    { type: "extract", fields: { h: { selector: "#h" }, act: { selector: "#act" } } },
  ] } }, tag);

  it("a click goes to the page as an ordinary navigation: the URL is the page's, the worker still holds the page (a prerendered one opened windows past the gesture rule, and its URL was the old one)", async () => {
    const f = await events.final(await via("#go", "prerendered"));
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ h: "next page", act: "" });
    expect(f.data.result.finalUrl).toBe(pages.url("/prerendered"));
    expect(pages.headers.get("/prerendered")?.["sec-purpose"]).toBeUndefined();
  });

  it("a click on a link to a prefetched page that asserted its navigation completes (Puppeteer's wait for it timed out)", async () => {
    const f = await events.final(await via("#pf", "prefetched"));
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ h: "prefetched page", act: null });
    expect(pages.headers.get("/prefetched")?.["sec-purpose"]).toBeUndefined();
  });
});

describe("pages that never settle (a review: every step waited its whole time)", () => {
  it("a document that never finishes parsing is waited for once, not before every step", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { timeout: 15_000, steps: [
      { type: "navigate", url: linkToPage("/slowscript") }, { type: "click", selectors: [["#go"]] },
      { type: "extract", fields: { h: { selector: "#h" } } }, { type: "assert", selector: "#h" }, { type: "extract", fields: { h2: { selector: "h1" } } },
    ] } }, "slowscript");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ h: "slow page", h2: "slow page" });
    // Without the bound each step after the click took its 15 s; with it, at most its 2 s wait for the parse plus a
    // turn of the page (500 ms) and the round trips, which a loaded machine stretches (6 s left too little room).
    for (const s of f.data.result.steps!.slice(2)) expect(s.durationMs, JSON.stringify(s)).toBeLessThan(12_000);
  });

  it("a page that replaced setTimeout and lies about readyState costs its steps nothing: the worker's waits on the page never use either (they run in a world of its own)", async () => {
    // Reached by a click: the step after it waits for the new document to be parsed (readyState). The last type step,
    // followed by a step that reads, waits a turn of the page's tasks (setTimeout). In the page's own world the first
    // waited out its 2 s bound and the second its 500 ms; the page lists every use of either, so the test does not
    // depend on how fast the machine is (a bound on the steps' time failed on a loaded one).
    const id = await assign(open, { maxAttempts: 1, scenario: { timeout: 15_000, steps: [
      { type: "navigate", url: linkToPage("/notimer") }, { type: "click", selectors: [["#go"]] },
      ...Array.from({ length: 3 }, () => ({ type: "type" as const, selector: "#i", text: "a" })),
      { type: "extract", fields: { title: { selector: "title" }, used: { selector: "#used" } } },
    ] } }, "notimer");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ title: "no timer", used: "" });
  });

  it("a last-step click on a download that never ends is not waited for (Chromium aborts the navigation once it sees a download)", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { timeout: 15_000, steps: [{ type: "navigate", url: linkToPage("/slow-download") }, { type: "click", selectors: [["#go"]] }] } }, "slow-download");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.logs.filter((l) => /still loading/.test(l.message))).toEqual([]);
    // Waited for, it took the scenario's 15 s; room for a loaded machine below that.
    expect(f.data.result.steps![1]!.durationMs).toBeLessThan(12_000);
  });
});

describe("an HTTP error page", () => {
  it("is the page (as in a browser), and the job's logs say what the site answered", async () => {
    const id = await assign(open, { maxAttempts: 1, url: pages.url("/server-error") }, "http-500");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ title: "500 Internal Server Error" });
    expect(f.data.result.logs).toContainEqual(expect.objectContaining({ level: "warn", source: "worker", message: `navigate: ${pages.url("/server-error")} answered HTTP 500 Internal Server Error` }));
  });
});

describe("a selector the page cannot parse", () => {
  it("fails the step at once, final, for every step (a click, hover or waitForElement waited out its timeout as retryable)", async () => {
    for (const step of [{ type: "click", selectors: [["#h["]] }, { type: "hover", selectors: [["#ok"], ["#h["]] }, { type: "waitForElement", selectors: [["#h["]] }, { type: "type", selector: "#h[", text: "x" }]) {
      const id = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/form") }, step as never] } }, `bad-selector-${step.type}`);
      const f = await failed(id);
      expect(f.data.error, step.type).toMatchObject({ code: "step-failed", retryable: false, step: { index: 1, type: step.type } });
      expect(f.data.error.message, step.type).toMatch(/valid selector/);
      expect(f.data.steps?.[1]?.durationMs, step.type).toBeLessThan(10_000);
    }
  });
});

describe("frames", () => {
  it("a frame path waits for a frame the page adds after its load (it failed at once, as a final step-failed marked retryable)", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/late-frame") }, { type: "waitForElement", frame: [0], selectors: [["#go"]] }, { type: "extract", frame: [0], fields: { h: { selector: "#h" } } }] } }, "late-frame");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ h: "first page" });
    const none = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/form") }, { type: "extract", frame: [0], timeout: 500, fields: { h: { selector: "#h" } } }] } }, "no-frame");
    expect((await failed(none)).data.error).toMatchObject({ code: "timeout", retryable: true, step: { index: 1, type: "extract" }, message: expect.stringMatching(/frame path \[0\]: no child frame 0 within 500 ms/) });
  });

  it("the wait for a frame is part of the step's time: a failing assert in a late frame is still a final assertion (it ran past the backstop as a retryable 'did not finish')", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/later-frame") }, { type: "assert", frame: [0], text: "no such text", timeout: 2500 }] } }, "later-frame");
    expect((await failed(id)).data.error).toMatchObject({ code: "assertion", retryable: false, step: { index: 1, type: "assert" } });
  });

  it("a click in a frame that asserted a navigation waits for that frame's navigation (it waited for the page's and timed out)", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: pages.url("/frame-link") }, { type: "waitForElement", frame: [0], selectors: [["#go"]] },
      { type: "click", frame: [0], selectors: [["#go"]], timeout: 5000, assertedEvents: [{ type: "navigation" }] },
      { type: "extract", frame: [0], fields: { h: { selector: "#h" } } },
    ] } }, "frame-nav");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ h: "second page" });
  });
});

describe("Chromium's own traffic", () => {
  it("a form job on a guarded worker logs no connection of Chromium's own (autofill asked content-autofill.googleapis.com, refused, in every job with inputs)", async () => {
    const id = await assign(listed, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: `http://localhost:${pages.port}/signup` }, { type: "click", selectors: [["#name"]] }, { type: "type", selector: "#name", text: "Ada" },
      { type: "wait", ms: 1500 },
    ] } }, "autofill");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.logs.filter((l) => /googleapis|gstatic|google\.com/.test(l.message))).toEqual([]);
  });
});

describe("a screenshot the store cannot take", () => {
  it("fails the job as retryable (storage), naming the store, instead of as a final step failure", async () => {
    const jsm = await jetstreamManager(await nats.connect("master", "test-drop-artifacts"));
    await jsm.streams.delete("OBJ_troupe-artifacts");
    try {
      const id = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/form") }, { type: "screenshot", label: "lost" }] } }, "no-store");
      expect((await failed(id)).data.error).toMatchObject({
        code: "storage", retryable: true, step: { index: 1, type: "screenshot" },
        message: expect.stringMatching(/screenshot \S+ not stored in object store troupe-artifacts \(`troupe init` creates it\)/),
      });
    } finally {
      await nats.init();
    }
  });
});

describe("popups", () => {
  /** Windows open in the worker's job contexts, counted as targets (c.pages() would attach to each from the worker's own process). */
  const windows = () => Math.max(0, ...open.pool.contexts().map((c) => c.targets().filter((t) => t.type() === "page").length));

  it("a page opening windows on a timer gets none (Chromium's popup blocker is on: with Puppeteer's default it got 28 in 1.5 s)", async () => {
    const id = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/popups") }, { type: "wait", ms: 1500 }, { type: "wait", ms: 500 }] } }, "popups");
    // After 1.5 s of the page's timer (30 tries), only the job's own page is open.
    await events.wait("job.progress", (e) => e.data.jobId === id && e.data.stepsDone === 2);
    expect(windows()).toBe(1);
    expect((await events.final(id)).type).toBe("job.completed");
  });

  it("a page opening windows on a timer gets none while the scenario polls it (an assert's or a count's checks gave it a user gesture every 100 ms)", async () => {
    const id = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/popups") },
      { type: "assert", selector: "#never", optional: true, timeout: 1500 },
      { type: "waitForElement", selectors: [["#p"]], count: 5, optional: true, timeout: 1500 },
      { type: "extract", fields: { p: { selector: "#p" }, ps: { selector: "p", all: true } } },
      { type: "wait", ms: 300 }, { type: "wait", ms: 100 }] } }, "popups-polled");
    await events.wait("job.progress", (e) => e.data.jobId === id && e.data.stepsDone === 5);
    expect(windows()).toBe(1);
    expect((await events.final(id)).type).toBe("job.completed");
  });

  it("a change step's wait for its field gives the page no gesture (a page's timer opened windows all the while)", async () => {
    // 15 s for the change: the field comes 1.5 s after the load, and loaded, 5 s ran out in the act (a 1.4 s stall of
    // the worker's process, then 1.75 s for one evaluation).
    const id = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/popups-late-field") },
      { type: "change", selectors: ["#late"], value: "x", timeout: 15_000 }, { type: "wait", ms: 300 }] } }, "popups-change");
    const f = await events.final(id);
    // What the page saw (its console): its timer tried all through the wait for the field, and got no window then
    // (the windows a gesture at every check let through stalled the step: said before its failure).
    const said = (f.type === "job.completed" ? f.data.result.logs : f.data.logs ?? []).filter((l) => l.source === "console").map((l) => l.message);
    expect(said).toContainEqual(expect.stringMatching(/^#late added after [1-9]\d* tries$/));
    const opened = said.filter((m) => m.startsWith("window opened"));
    expect(opened.filter((m) => m.endsWith("absent"))).toEqual([]);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    // The change itself is the user's act: Puppeteer's fill of a short text grants a transient activation four times,
    // with three evaluations (the field's kind, clearing it, focusing it) and the key it types (its keyUp grants
    // none). Each grant lets one window.open through (which uses the activation up); grants within one tick of the
    // timer make one window. On an idle machine the act fits in one tick (one window); on a loaded one it got three
    // (a window per tick, each delaying the next evaluation past the next tick; measured 2026-11-30 over CDP). The
    // test allowed two grants (three windows with the job's page) and failed under load.
    expect(opened.length).toBeLessThanOrEqual(4);
  });

  it("a scenario's select is the user's act: the window the page opens on its change is let through (a review: it was blocked)", async () => {
    const id = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/select-opens") }, { type: "select", selector: "#s", values: ["b"] }, { type: "wait", ms: 3000 }] } }, "select-window");
    await events.wait("job.progress", (e) => e.data.jobId === id && e.data.stepsDone === 2);
    await waitFor("the window the select's change opened", () => windows() >= 2, 3000);
    expect((await events.final(id)).type).toBe("job.completed");
  });

  it("a scenario's click on a target=_blank link still opens its window (a user gesture)", async () => {
    const id = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/new-window-link") }, { type: "click", selectors: [["#open"]] }, { type: "wait", ms: 3000 }] } }, "new-window");
    await events.wait("job.progress", (e) => e.data.jobId === id && e.data.stepsDone === 2);
    await waitFor("the clicked link's window", () => windows() >= 2, 3000);
    expect((await events.final(id)).type).toBe("job.completed");
  });
});

describe("dialogs", () => {
  it("alert and confirm are dismissed and logged, and the job goes on (an alert used to hang it until its timeout)", async () => {
    const id = await assign(open, { timeoutMs: 20_000, scenario: { steps: [{ type: "navigate", url: pages.url("/alert") }, { type: "extract", fields: { h: { selector: "#after" } } }] } }, "alert");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ h: "after the dialogs" });
    expect(f.data.result.logs).toContainEqual(expect.objectContaining({ level: "warn", source: "page", message: "alert dialog dismissed: hello from the page" }));
    expect(f.data.result.logs).toContainEqual(expect.objectContaining({ message: "confirm dialog dismissed: sure?" }));
  });
});

describe("dataExtracted", () => {
  it("counts the non-empty values of a list, not its empty or null items (it counted 5 here)", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { steps: [{ type: "navigate", url: pages.url("/sparse") },
      { type: "extract", fields: { texts: { selector: ".e", all: true }, links: { selector: ".l", from: "attribute", attribute: "href", all: true } } }] } }, "sparse");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data).toEqual({ texts: ["", "", "x"], links: [null, "/h"] });
    expect(f.data.result.dataExtracted).toBe(2);
  });
});

describe("large element lists", () => {
  it("are read, counted and searched in the page, not through a handle per element (an extract of 20,000 cells took over 16 s and 382 MB): the job releases a few objects, not one per element", async () => {
    // Counts the CDP messages the worker's Puppeteer sends (it runs in this process); each handle is released by one.
    const proto = Connection.prototype as unknown as { _rawSend: (...a: unknown[]) => unknown };
    const send = proto._rawSend;
    let released = 0;
    proto._rawSend = function (this: unknown, ...a: unknown[]) {
      if (a[1] === "Runtime.releaseObject") released++;
      return send.apply(this, a);
    };
    try {
      const id = await assign(open, { maxAttempts: 1, scenario: { steps: [
        { type: "navigate", url: pages.url("/big-table") },
        { type: "waitForElement", selectors: [["td"]], operator: "==", count: 20_000 },
        { type: "type", selector: ".f", text: "ok" },
        { type: "extract", fields: { cells: { selector: "td", all: true }, typed: { selector: "#v-f" } } },
      ] } }, "big-table");
      const f = await events.final(id);
      if (f.type !== "job.completed") throw new Error(f.data.error.message);
      expect(f.data.result.data.typed).toBe("ok");
      expect(f.data.result.data.cells).toHaveLength(20_000);
      expect(f.data.result.dataExtracted).toBe(20_001);
      // Each step above made 3000 (the hidden fields) or 20,000 handles.
      expect(released).toBeLessThan(1000);
    } finally {
      proto._rawSend = send;
    }
  }, 120_000);

  it("selectors that are not plain CSS still go through Puppeteer's query: type, press and extract with all through pierce/", async () => {
    const id = await assign(open, { maxAttempts: 1, scenario: { steps: [
      { type: "navigate", url: pages.url("/fields") }, { type: "type", selector: "pierce/.q", text: "shown" }, { type: "press", selector: "pierce/#shown", key: "a" },
      { type: "extract", fields: { shown: { selector: "#v-shown" }, ids: { selector: "pierce/input", from: "attribute", attribute: "id", all: true } } },
    ] } }, "pierce-fields");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(f.data.error.message);
    expect(f.data.result.data.shown).toBe("showna");
    expect(f.data.result.data.ids).toEqual([null, "shown", "off", "in-fieldset", "ro", "inner", "late", "swap"]);
  });
});

describe("dialogs in other windows of the job", () => {
  it("a same-origin popup's alert is dismissed and logged, and the job's page goes on (it shares the popup's renderer: the next step did not finish)", async () => {
    const id = await assign(open, { maxAttempts: 1, timeoutMs: 30_000, scenario: { steps: [
      { type: "navigate", url: pages.url("/opens-alerting") }, { type: "click", selectors: [["#open"]] },
      // Set by the popup right before its alert(): from then on the renderer waits for the dialog to be answered.
      { type: "waitForElement", selectors: [["#h[data-popup]"]], timeout: 20_000 },
      { type: "extract", fields: { h: { selector: "#h" } } },
    ] } }, "popup-alert");
    const f = await events.final(id);
    if (f.type !== "job.completed") throw new Error(`${f.data.error.code}: ${f.data.error.message}`);
    expect(f.data.result.data).toEqual({ h: "opener" });
    expect(f.data.result.logs).toContainEqual(expect.objectContaining({ level: "warn", source: "page", message: "alert dialog dismissed in another window: hello from the popup" }));
  });
});

describe("page crash", () => {
  it("a renderer that dies (out of memory, killed) fails the job at once as page-crashed, and the worker goes on", async () => {
    const id = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/form") }, { type: "wait", ms: 30_000 }] } }, "renderer");
    await events.wait("job.progress", (e) => e.data.jobId === id && e.data.stepsDone === 1);
    // The renderers of the worker's browser (this file's jobs run one at a time): killed as the OOM killer would.
    const renderers = childRenderers(open.pool.activePid!);
    expect(renderers.length).toBeGreaterThan(0);
    for (const pid of renderers) process.kill(pid, "SIGKILL");
    const f = await failed(id);
    expect(f.data.error).toMatchObject({ code: "page-crashed", retryable: true });
    expect(f.data.metrics?.totalDuration).toBeLessThan(30_000);
    const next = await assign(open, { url: pages.url("/form") }, "after-renderer");
    expect((await events.final(next)).type).toBe("job.completed");
  });
});

/** Renderer processes under a browser process (descendants whose command line says --type=renderer). */
function childRenderers(browserPid: number): number[] {
  return descendants(browserPid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("--type=renderer");
    } catch {
      return false; // exited meanwhile
    }
  });
}

describe("browser crash", () => {
  it("fails the running job as retryable and replaces the browser", async () => {
    const id = await assign(open, { scenario: { steps: [{ type: "navigate", url: pages.url("/form") }, { type: "wait", ms: 30_000 }] } }, "crash");
    await events.wait("job.progress", (e) => e.data.jobId === id && e.data.stepsDone === 1);
    const pid = open.pool.activePid;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid!, "SIGKILL");
    const f = await failed(id);
    expect(f.data.error).toMatchObject({ retryable: true, code: expect.stringMatching(/^(browser-crashed|browser)$/) });
    // The next job starts a new Chromium first (slow on a loaded machine).
    const next = await assign(open, { url: pages.url("/form") }, "after-crash");
    expect((await events.final(next, 60_000)).type).toBe("job.completed");
    expect(open.pool.activePid).not.toBe(pid);
  }, 90_000);
});

describe("the lease before the first step", () => {
  it("is renewed while the browser context is slow to come (Chromium stopped): progress at 0 % every tick, then the job runs", async () => {
    const w = await startTestWorker(nats, { TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_WORKER_NAME: "Worker Node Slow Context" });
    try {
      const pid = w.pool.activePid!;
      expect(pid).toBeGreaterThan(0);
      process.kill(pid, "SIGSTOP"); // the context cannot be made while it is stopped
      let id = "";
      try {
        id = await assign(w, { url: pages.url("/form") }, "slow-context");
        // The test worker ticks every 300 ms: renewals come while no step can start.
        await waitFor("two progress events before the first step", () => events.of("job.progress", (e) => e.data.jobId === id && e.data.stepsDone === 0 && e.data.progress === 0).length >= 2, 10_000);
        expect(events.of("job.progress", (e) => e.data.jobId === id && (e.data.stepsDone ?? 0) > 0)).toEqual([]);
      } finally {
        process.kill(pid, "SIGCONT");
      }
      expect((await events.final(id)).type).toBe("job.completed");
    } finally {
      await w.stop("test over");
    }
  });
});

import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { AssignReply, Command } from "@troupe/events";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { CDPSessionEvent, type Connection } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Worker } from "../src/worker.ts";
import { EventLog, jobId, startTestWorker } from "./helpers.ts";

/**
 * A page a job's page opens (a `target=_blank` link a scenario clicks: the popup blocker lets a click's window through)
 * runs in the job's browser context and goes out through its proxy: it must show the job's fingerprint too. It saw the
 * real browser (HeadlessChrome, Linux, en-US, UTC) beside the opener's Windows, de-DE, Asia/Tokyo (a review).
 */

let nats: TestNats;
let events: EventLog;
let worker: Worker;
let site: Server;
let base: string;
const popupHeaders: IncomingHttpHeaders[] = [];
const reportHeaders: IncomingHttpHeaders[] = [];
let report: Record<string, unknown> | undefined;

beforeAll(async () => {
  site = createServer((req, res) => {
    const html = (body: string) => res.writeHead(200, { "content-type": "text/html" }).end(`<!doctype html><html><body>${body}</body></html>`);
    if (req.url === "/opener") {
      // It shows #seen once the popup has reported (a scenario step can wait for that).
      // rel=opener: a window with its opener, as window.open makes one. Without it (target=_blank is noopener by
      // default) the popup's scripts saw the job's user agent, languages and time zone in only about half the runs: its
      // document commits in a new browsing context group while the overrides are sent (a known limit, docs/worker.md).
      return html(`<a id="pop" href="/popup" target="_blank" rel="opener">open</a>
        <script>const t = setInterval(async () => { if ((await (await fetch("/seen")).text()) === "yes") { clearInterval(t); const d = document.createElement("div"); d.id = "seen"; document.body.append(d); } }, 50);</script>`);
    }
    if (req.url === "/popup") {
      popupHeaders.push(req.headers);
      return html(`<script>fetch("/report", { method: "POST", body: JSON.stringify({ userAgent: navigator.userAgent, platform: navigator.platform, languages: navigator.languages, timezone: Intl.DateTimeFormat().resolvedOptions().timeZone, width: innerWidth, screenWidth: screen.width, dpr: devicePixelRatio }) });</script>`);
    }
    if (req.url === "/report" && req.method === "POST") {
      reportHeaders.push(req.headers);
      let body = "";
      req.on("data", (b: Buffer) => (body += b.toString()));
      req.on("end", () => {
        report = JSON.parse(body) as Record<string, unknown>;
        res.end("ok");
      });
      return;
    }
    if (req.url === "/seen") return res.end(report ? "yes" : "no");
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => site.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  nats = await startTestNats({ init: true });
  events = await EventLog.start(nats);
  worker = await startTestWorker(nats, { TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_WORKER_NAME: "Worker Node Popups" });
}, 120_000);

afterAll(async () => {
  await worker?.stop("test over");
  await nats?.stop();
  await new Promise((r) => site?.close(r));
});

describe("a page the job's page opens", () => {
  it("shows its scripts and sends with its requests the job's user agent, languages, time zone, viewport and screen (it showed the real browser's)", async () => {
    const userAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
    const id = jobId("popup-fp");
    const nc = await nats.connect("master");
    const body: Command<"worker.assign"> = {
      jobId: id, attempt: 1, epoch: 1,
      spec: {
        priority: 5, maxAttempts: 1, timeoutMs: 60_000,
        scenario: { steps: [{ type: "navigate", url: `${base}/opener` }, { type: "click", selectors: [["#pop"]], offsetX: 1, offsetY: 1 }, { type: "waitForElement", selectors: [["#seen"]] }] },
        fingerprint: {
          userAgent,
          userAgentMetadata: { brands: [{ brand: "Google Chrome", version: "156" }], platform: "Windows", platformVersion: "15.0.0", architecture: "x86", model: "", mobile: false },
          locale: "de-DE", timezone: "Asia/Tokyo",
          viewport: { width: 1111, height: 777, deviceScaleFactor: 2 }, screen: { width: 2560, height: 1440 },
        },
      },
    };
    // What the job listens to on the browser's connection, shared by every job: left there, it grew with each job.
    // Puppeteer's own (internal) handle on it: a CDP session of ours on the browser target would change how tabs attach.
    const [browser] = worker.pool.browsers();
    const connection = (browser as unknown as { _connection: Connection })._connection;
    const listening = () => [connection.listenerCount("Target.attachedToTarget"), connection.listenerCount(CDPSessionEvent.SessionAttached)];
    const before = listening();
    const reply = (await nc.request(`troupe.worker.${worker.config.workerId}.assign`, JSON.stringify(body), { timeout: 5000 })).json<AssignReply>();
    expect(reply).toEqual({ accepted: true });
    const final = await events.final(id);
    if (final.type === "job.failed") throw new Error(final.data.error.message);
    // What its scripts see.
    expect(report).toEqual({ userAgent, platform: "Win32", languages: ["de-DE", "de"], timezone: "Asia/Tokyo", width: 1111, screenWidth: 2560, dpr: 2 });
    // What its requests send. Not its first document's: Chromium starts that navigation before the new page's
    // session can be told anything, so it goes out with the browser's own headers (a known limit, docs/worker.md).
    expect(popupHeaders).toHaveLength(1);
    expect(reportHeaders).toHaveLength(1);
    expect(reportHeaders[0]?.["user-agent"]).toBe(userAgent);
    expect(reportHeaders[0]?.["accept-language"]).toBe("de-DE,de;q=0.9");
    expect(reportHeaders[0]?.["sec-ch-ua-platform"]).toBe('"Windows"');
    // The fingerprint's and the dialogs' listeners go with the job's page.
    await waitFor("the job's listeners gone from the browser's connection", () => worker.pool.openContexts === 0 && listening().every((n, i) => n === before[i]), 10_000);
  }, 90_000);
});

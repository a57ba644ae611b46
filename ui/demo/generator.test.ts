import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDemoJobs } from "./generator.ts";

let nats: TestNats;
beforeAll(async () => {
  nats = await startTestNats({ init: true });
});
afterAll(async () => {
  await nats?.stop();
});

describe("the demo's job stream", () => {
  it("waits for the master quietly before its first job (it logged 'cannot submit … no responders' each time), then submits", async () => {
    const ui = await nats.connect("ui");
    const lines: string[] = [];
    // Each try is a request the server counts (messages in), answered "no responders" at once.
    const messagesIn = async () => ((await (await fetch(`${nats.monitorUrl}/varz`)).json()) as { in_msgs: number }).in_msgs;
    const before = await messagesIn();
    const stop = startDemoJobs(ui, { site: "http://127.0.0.1:3005", perMinute: 6000, prefix: "troupe", log: (l) => lines.push(l) });
    try {
      await waitFor("five tries with nobody answering jobs.submit", async () => (await messagesIn()) - before >= 5, 10_000, 20);
      expect(lines).toEqual(["waiting for the master to take jobs before the first demo job"]);
      // A stand-in master takes them.
      const master = await nats.connect("master");
      const sub = master.subscribe("troupe.rpc.jobs.submit", { callback: (_e, m) => m.respond(JSON.stringify({ ok: true, jobId: `j${Math.random().toString(36).slice(2, 10)}` })) });
      await waitFor("a demo job submitted", () => lines.some((l) => /^submitted \w+ job j/.test(l)), 10_000, 20);
      sub.unsubscribe();
    } finally {
      stop();
    }
  });
});

import { fileURLToPath } from "node:url";
import type { Msg } from "@nats-io/nats-core";
import type { AssignReply, Command } from "@troupe/events";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnChild } from "../../master/test/helpers.ts";
import { jobId, startPages, type TestPages } from "./helpers.ts";

/**
 * A worker whose clock runs 3 minutes behind the NATS server's. It dated its heartbeats 3 minutes in the past, and
 * every page showed it "suspect, last seen 3 min ago" while it worked (an attack). It now reads back the server's
 * stamp of its own heartbeat and dates its events on the server's clock once its own is more than a second off.
 */

const SKEW = fileURLToPath(new URL("../../master/test/fixtures/skew-clock.mjs", import.meta.url));
const SKEW_MS = -180_000;

let nats: TestNats;
let pages: TestPages;
beforeAll(async () => {
  [nats, pages] = await Promise.all([startTestNats({ init: true }), startPages()]);
});
afterAll(async () => {
  await Promise.all([nats?.stop(), pages?.close()]);
});

interface Seen {
  subject: string;
  type: string;
  /** The event's own time minus when this process received it (the same machine's clock as the server's). */
  offMs: number;
}

/**
 * "On the server's clock": within 10 s of when this process read it — far from the 3 minutes off, and above a loaded
 * machine's delays between the worker's stamp and this process's callback (2 s was within reach of one stall).
 */
const ON_TIME_MS = 10_000;

describe("a worker whose clock runs 3 minutes behind the server's", () => {
  it("dates its heartbeats and job events on the server's clock after its first heartbeat, and says its clock is off", async () => {
    const nc = await nats.connect("master");
    const seen: Seen[] = [];
    const note = (_: Error | null, m: Msg) => {
      const e = m.json<{ type: string; time: string }>();
      seen.push({ subject: m.subject, type: e.type, offMs: Date.parse(e.time) - Date.now() });
    };
    nc.subscribe("troupe.hb.wn-skew", { callback: note });
    nc.subscribe("troupe.evt.>", { callback: note });
    await nc.flush();
    const child = spawnChild(["--import", SKEW, "bin/troupe.mjs", "worker"], {
      ...nats.env(), SKEW_MS: String(SKEW_MS), SKEW_MONO: "1", TROUPE_WORKER_ID: "wn-skew", TROUPE_WORKER_PORT: "0", TROUPE_WORKER_HOST: "127.0.0.1",
      TROUPE_HEARTBEAT_MS: "500", TROUPE_ALLOW_PRIVATE_TARGETS: "1", TROUPE_MAX_CPU: "100", TROUPE_LOG_LEVEL: "warn",
    });
    const out = () => child.output();
    try {
      const beats = () => seen.filter((s) => s.type === "worker.heartbeat");
      await waitFor("a heartbeat on the server's clock", () => beats().some((b) => Math.abs(b.offMs) < ON_TIME_MS), 60_000, 50);
      // The first was sent before any sample: dated on its own clock (what the fixture does, and what was fixed).
      expect(beats()[0]!.offMs).toBeLessThan(-170_000);
      expect(out()).toMatch(/this machine's clock is 1[78]\d\.\d s behind the NATS server's: events are dated on the server's clock/);

      const id = jobId("skew");
      const body: Command<"worker.assign"> = {
        jobId: id, attempt: 1, epoch: 1,
        spec: { priority: 5, maxAttempts: 3, timeoutMs: 60_000, scenario: { steps: [{ type: "navigate", url: pages.url("/form") }, { type: "wait", ms: 100 }] } },
      };
      expect((await nc.request("troupe.worker.wn-skew.assign", JSON.stringify(body), { timeout: 10_000 })).json<AssignReply>()).toEqual({ accepted: true });
      await waitFor("the job's end", () => seen.some((s) => s.subject.startsWith(`troupe.evt.job.${id}.`) && (s.type === "job.completed" || s.type === "job.failed")), 60_000, 50);
      const job = seen.filter((s) => s.subject.startsWith(`troupe.evt.job.${id}.`));
      expect(job.map((s) => s.type)).toContain("job.completed");
      for (const s of job) expect(Math.abs(s.offMs), s.type).toBeLessThan(ON_TIME_MS);

      await child.stop();
      expect(child.proc.exitCode, out()).toBe(0);
      // Stored before the process exited, but this test's subscription may receive it just after the exit.
      const gone = await waitFor("the deregistration delivered", () => seen.find((s) => s.type === "worker.deregistered"), 10_000).catch(() => undefined);
      expect(gone, out()).toBeDefined();
      expect(Math.abs(gone!.offMs)).toBeLessThan(ON_TIME_MS);
    } finally {
      await child.kill9();
      await nc.close();
    }
  }, 120_000);
});

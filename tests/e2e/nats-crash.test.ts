import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeEvent, evolveJob, type JobView, type TroupeEvent } from "@troupe/events";
import { waitFor } from "../harness/index.ts";
import { callApi, startStack, tail, type Stack } from "./stack.ts";

/**
 * The single crash that takes everything's connection away: nats-server
 * killed with SIGKILL while real workers run jobs, then started again on the
 * same store. Master, projector, UI and workers must reconnect on their own,
 * no job may be lost or run to completion twice, and the read models must
 * come back to the log.
 */

let stack: Stack;

beforeAll(async () => {
  // 3 s heartbeats: "no worker is lost for the outage" must hold on a loaded test machine too. At 1 s (a 3 s window
  // after the master sees again), the full suite beside a CPU hog once had a worker declared lost in the outage.
  stack = await startStack({ workers: 2, heartbeatMs: 3000 });
}, 300_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

const api = (path: string, init?: RequestInit) => callApi(stack, path, init);

/** Submits through the UI's API; while NATS is coming back the same idempotency key is tried again (a client should). */
async function submit(i: number): Promise<string> {
  const url = `${stack.site.url}/product/${i % 5}`;
  const body = JSON.stringify({
    url, tags: ["nats-crash"], idempotencyKey: `nats-crash-${i}`,
    scenario: { title: `crash ${i}`, steps: [{ type: "navigate", url }, { type: "wait", ms: 300 }, { type: "extract", fields: { title: { selector: "h1.title" } } }] },
  });
  return waitFor(`job ${i} accepted`, async () => {
    const r = await api("/api/jobs", { method: "POST", headers: { "content-type": "application/json" }, body });
    if (r.status === 201 || r.status === 200) return r.body.jobId as string;
    // 503 while no master answers; anything else is a real refusal.
    if (r.status !== 503) throw new Error(`submit ${i} refused: ${r.status} ${JSON.stringify(r.body)}`);
    return null;
  }, 60_000, 250);
}

/** The whole event log as it stands, folded per job with the shared reducer. */
async function foldLog(nc: NatsConnection) {
  const js = jetstream(nc);
  const info = await (await js.jetstreamManager()).streams.info("TROUPE_EVENTS");
  const events: TroupeEvent[] = [];
  const c = await js.consumers.get("TROUPE_EVENTS", { deliver_policy: DeliverPolicy.All });
  const msgs = await c.consume();
  for await (const m of msgs) {
    const d = decodeEvent(m.subject, m.data);
    if (d.ok) events.push(d.value);
    if (m.seq >= info.state.last_seq) break;
  }
  await msgs.close();
  const jobs = new Map<string, JobView>();
  for (const e of events) {
    if (!e.type.startsWith("job.")) continue;
    const r = evolveJob(jobs.get((e.data as { jobId: string }).jobId), e as Parameters<typeof evolveJob>[1]);
    if (r.ok) jobs.set(r.job.id, r.job);
  }
  return { events, jobs };
}

describe("nats-server killed mid-run", () => {
  it("everything reconnects; every job submitted before and after completes exactly once; the read models catch up", async () => {
    const before: string[] = [];
    for (let i = 0; i < 10; i++) before.push(await submit(i));
    // Some done, some still to run: the crash lands in the middle of the work.
    await waitFor("some jobs completed", async () => {
      const done = await Promise.all(before.map(async (id) => (await api(`/api/jobs/${id}`)).body.job?.status === "completed"));
      return done.filter(Boolean).length >= 2;
    }, 120_000, 200);

    await stack.nats.server.stop("SIGKILL");
    await stack.nats.restart();

    const after: string[] = [];
    for (let i = 10; i < 16; i++) after.push(await submit(i));
    const all = [...before, ...after];

    // The projector (and so the UI's API) shows every job completed.
    await waitFor("every job completed in GET /api/jobs/<id>", async () => {
      const st = await Promise.all(all.map(async (id) => (await api(`/api/jobs/${id}`)).body.job?.status));
      return st.every((s) => s === "completed");
    }, 180_000, 500).catch((e: Error) => {
      throw new Error(`${e.message}\nmaster:\n${tail(stack, "master")}\nprojector:\n${tail(stack, "projector")}\nworker-01:\n${tail(stack, "worker-01")}`);
    });

    // The log says the same, with one accepted completion per job and no attempt given out twice.
    const nc = await stack.nats.connect("ui");
    const { events, jobs } = await foldLog(nc);
    for (const id of all) {
      const j = jobs.get(id);
      expect(j?.status, `job ${id}`).toBe("completed");
      expect(j!.history.filter((h) => h.outcome === "completed").length, `completions of ${id}`).toBe(1);
    }
    const attempts = new Map<string, number>();
    for (const e of events) {
      if (e.type !== "job.assigned") continue;
      const k = `${e.data.jobId}#${e.data.attempt}`;
      attempts.set(k, (attempts.get(k) ?? 0) + 1);
    }
    expect([...attempts].filter(([, n]) => n > 1)).toEqual([]);
    // Both workers heartbeated whenever the server let them: the outage is not a worker failure, and no job was taken from them for it.
    expect(events.filter((e) => e.type === "worker.lost").map((e) => e.data)).toEqual([]);
    expect(events.filter((e) => e.type === "job.requeued" && e.data.reason !== "worker-refused").map((e) => e.data)).toEqual([]);
    // Each worker registered again once reconnected (the same instance; a master whose log lost it would learn it so).
    const registrations = new Map<string, number>();
    for (const e of events) if (e.type === "worker.registered") registrations.set(e.data.instanceId, (registrations.get(e.data.instanceId) ?? 0) + 1);
    expect([...registrations.values()].every((n) => n >= 2), JSON.stringify([...registrations])).toBe(true);
    // Nobody died of it.
    for (const [name, p] of stack.procs) expect([name, p.child.exitCode, p.child.signalCode]).toEqual([name, null, null]);
  }, 420_000);
});

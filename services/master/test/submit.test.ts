import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import type { RunningMaster } from "../src/main.ts";
import { masterIn, readLog, submit } from "./helpers.ts";
import { lookupJob } from "../src/state.ts";
import { jobIdForKey } from "../src/rpc.ts";
import { createEvent, MAX_EVENT_BYTES, type TroupeEvent } from "@troupe/events";
import { publishEvent } from "@troupe/events/node";

let nats: TestNats;
let master: RunningMaster;
let ui: NatsConnection;
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  master = await masterIn(nats, "m-submit");
  ui = await nats.connect("ui");
});
afterAll(async () => {
  await master?.stop();
  await nats?.stop();
});

const messages = async () => (await (await jetstreamManager(ui)).streams.info("TROUPE_EVENTS")).state.messages;

/**
 * What a worker credential can do: append a job event for the key's job under the submission's predictable message
 * id (`submit-<jobId>`), before the job is submitted. Returns that job id.
 */
async function takeSubmitId(key: string): Promise<string> {
  const jobId = jobIdForKey(key);
  const e = createEvent("job.started", { jobId, workerId: "w-evil", attempt: 1 }, "w-evil") as TroupeEvent;
  e.id = `submit-${jobId}`;
  await publishEvent(jetstream(await nats.connect("worker")), e);
  return jobId;
}

describe("jobs.submit", () => {
  it("appends job.submitted with the defaults applied and replies with the job id", async () => {
    const r = await submit(ui, { url: "https://example.com/a", tags: ["t1"] });
    expect(r).toMatchObject({ ok: true });
    const jobId = (r as { jobId: string }).jobId;
    const log = await readLog(ui);
    const e = log.find((l) => l.event.type === "job.submitted" && l.event.data.jobId === jobId);
    expect(e?.event.data).toMatchObject({ jobId, spec: { url: "https://example.com/a", priority: 5, maxAttempts: 3, timeoutMs: 120_000, tags: ["t1"] } });
  });

  it("returns the same job id for the same idempotency key, and appends once", async () => {
    const body = { url: "https://example.com/idem", idempotencyKey: "order-42" };
    const [a, b] = await Promise.all([submit(ui, body), submit(ui, body)]);
    const c = await submit(ui, body);
    expect(a.ok && b.ok && c.ok).toBe(true);
    const ids = [a, b, c].map((r) => (r as { jobId: string }).jobId);
    expect(new Set(ids).size).toBe(1);
    expect([a, b, c].filter((r) => (r as { duplicate?: boolean }).duplicate).length).toBe(2);
    const log = await readLog(ui);
    expect(log.filter((l) => l.event.type === "job.submitted" && l.event.data.jobId === ids[0])).toHaveLength(1);
  });

  it("says a job whose append got no confirmation may be recorded, naming its id; the same key then finds it (a stopping master said \"could not be recorded\" of jobs that ran: a chaos soak)", async () => {
    // The append is stored, and then the confirmation is lost (the master's requests closing under it as it stops).
    const m = master.master as unknown as { append: (...a: unknown[]) => Promise<unknown> };
    const append = m.append;
    m.append = async (...a) => {
      m.append = append;
      await append.apply(master.master, a);
      throw new Error("requests closed");
    };
    const body = { url: "https://example.com/unconfirmed", idempotencyKey: "order-unconfirmed" };
    const jobId = jobIdForKey(body.idempotencyKey);
    const r = await submit(ui, body);
    expect(r).toMatchObject({ ok: false, error: { code: "unavailable" } });
    const message = (r as { error: { message: string } }).error.message;
    expect(message).toContain(`it may have been recorded all the same, as job ${jobId}`);
    expect(message).toContain("submit it again with the same idempotencyKey");
    expect(message).not.toMatch(/could not be recorded/);
    expect(await submit(ui, body)).toEqual({ ok: true, jobId, duplicate: true });
    const log = await readLog(ui);
    expect(log.filter((l) => l.event.type === "job.submitted" && l.event.data.jobId === jobId)).toHaveLength(1);
  });

  it("records a keyed job whose message id another message took first (any job-event writer can pick it), and only once", async () => {
    const key = "order-poisoned";
    const jobId = await takeSubmitId(key);
    const body = { url: "https://example.com/poisoned", idempotencyKey: key };
    expect(await submit(ui, body)).toEqual({ ok: true, jobId });
    expect(await submit(ui, body)).toEqual({ ok: true, jobId, duplicate: true });
    const log = await readLog(ui);
    expect(log.filter((l) => l.event.type === "job.submitted" && l.event.data.jobId === jobId)).toHaveLength(1);
    await waitFor("the master to hold the job", () => lookupJob(master.master.state, jobId));
  });

  it("records a keyed job once when its resubmission comes while the first is being folded (the guard took what the fold knew, and let a second one in)", async () => {
    const key = "order-poisoned-race";
    const jobId = await takeSubmitId(key);
    const body = { url: "https://example.com/poisoned-race", idempotencyKey: key };
    expect(await submit(ui, body)).toEqual({ ok: true, jobId });
    await waitFor("the first submission folded", () => lookupJob(master.master.state, jobId));
    // The resubmission's first look finds no job (as when it comes before the fold), while the fold has read the
    // submission's subject (as by the time the master appends again): a full run hit that window.
    const jobs = master.master.state.jobs;
    const folded = jobs.get(jobId)!;
    jobs.delete(jobId);
    try {
      expect(lookupJob(master.master.state, jobId)).toBeUndefined();
      expect(await submit(ui, body)).toEqual({ ok: true, jobId, duplicate: true });
    } finally {
      jobs.set(jobId, folded);
    }
    const log = await readLog(ui);
    expect(log.filter((l) => l.event.type === "job.submitted" && l.event.data.jobId === jobId)).toHaveLength(1);
  });

  const invalid: [string, unknown, string][] = [
    ["no url and no scenario", { priority: 3 }, "url"],
    ["a url that is not http(s)", { url: "ftp://example.com" }, "url"],
    ["priority above 10", { url: "https://example.com", priority: 11 }, "priority"],
    ["priority below 1", { url: "https://example.com", priority: 0 }, "priority"],
    ["a fractional priority", { url: "https://example.com", priority: 2.5 }, "priority"],
    ["maxAttempts 0", { url: "https://example.com", maxAttempts: 0 }, "maxAttempts"],
    ["timeoutMs too small", { url: "https://example.com", timeoutMs: 5 }, "timeoutMs"],
    ["runAt not a time", { url: "https://example.com", runAt: "tomorrow" }, "runAt"],
    ["expiresAt before runAt", { url: "https://example.com", runAt: "2030-01-02T00:00:00Z", expiresAt: "2030-01-01T00:00:00Z" }, "expiresAt"],
    ["a bad tag", { url: "https://example.com", tags: ["has space"] }, "tags[0]"],
    ["an empty browser", { url: "https://example.com", browser: "" }, "browser"],
    ["a bad proxy", { url: "https://example.com", proxy: { server: "nope" } }, "proxy.server"],
    ["a proxy bypass rule Chromium's syntax has no place for", { url: "https://example.com", proxy: { server: "http://p:3128", bypass: ["<local>", "10.0.0.0/99"] } }, "proxy.bypass[1]"],
    ["a bad fingerprint viewport", { url: "https://example.com", fingerprint: { viewport: { width: 0, height: 10 } } }, "fingerprint.viewport.width"],
    ["an empty idempotency key", { url: "https://example.com", idempotencyKey: "" }, "idempotencyKey"],
    ["an unknown field", { url: "https://example.com", colour: "red" }, "colour"],
  ];
  it.each(invalid)("refuses %s, naming the field, and appends nothing", async (_name, body, field) => {
    const before = await messages();
    const r = await submit(ui, body);
    expect(r.ok).toBe(false);
    const e = (r as { error: { code: string; field?: string; message: string } }).error;
    expect(e.code).toBe("invalid");
    expect(e.field).toBe(field);
    expect(e.message.length).toBeGreaterThan(0);
    expect(await messages()).toBe(before);
  });

  it("refuses a Troupe-Client header the log's submittedBy cannot hold as the client's error, and appends nothing", async () => {
    const before = await messages();
    const h = headers();
    h.set("Troupe-Client", "x".repeat(201));
    const r = JSON.parse(new TextDecoder().decode((await ui.request("troupe.rpc.jobs.submit", JSON.stringify({ url: "https://example.com" }), { timeout: 5000, headers: h })).data));
    expect(r).toMatchObject({ ok: false, error: { code: "invalid", field: "headers.Troupe-Client" } });
    expect(await messages()).toBe(before);
  });

  it("refuses a job that fits the command's limit but not the log's as too-large (the client's to shrink, not an outage to retry), and appends nothing", async () => {
    const before = await messages();
    // Three texts of ~87 kB: the command is 50 bytes under 256 KiB, the job.submitted event around it is over.
    const body = { scenario: { steps: [0, 1, 2].map(() => ({ type: "type", selector: "#q", text: "x".repeat(87_000) })) } };
    const fill = MAX_EVENT_BYTES - 50 - new TextEncoder().encode(JSON.stringify(body)).length;
    body.scenario.steps[0]!.text += "x".repeat(fill);
    expect(new TextEncoder().encode(JSON.stringify(body)).length).toBe(MAX_EVENT_BYTES - 50);
    const r = await submit(ui, body);
    expect(r).toMatchObject({ ok: false, error: { code: "too-large", message: expect.stringMatching(/^the job does not fit the event log: payload is \d+ bytes, the limit is 262144/) } });
    // Past the command's own limit: too-large as well.
    body.scenario.steps[0]!.text += "x".repeat(100);
    expect(await submit(ui, body)).toMatchObject({ ok: false, error: { code: "too-large", message: expect.stringMatching(/^payload is \d+ bytes, the limit is 262144/) } });
    expect(await messages()).toBe(before);
  });

  it("refuses a job whose expiresAt is already past (it was recorded only to be declared dead at once)", async () => {
    const before = await messages();
    expect(await submit(ui, { url: "https://example.com/late", expiresAt: "2001-01-01T00:00:00Z" })).toMatchObject({ ok: false, error: { code: "invalid", field: "expiresAt", message: expect.stringMatching(/is already past/) } });
    expect(await messages()).toBe(before);
  });

  it("skips, counts and survives a malformed event in the log", async () => {
    const raw = await nats.connect("master", "raw-publisher");
    const before = master.master.counters.invalidMessages;
    raw.publish("troupe.evt.job.garbage-1.submitted", "{not an event");
    raw.publish("troupe.evt.job.garbage-2.submitted", JSON.stringify({ id: "x", type: "job.submitted", v: 1, time: "2026-01-01T00:00:00Z", source: "evil", data: { jobId: "other" } }));
    await raw.flush();
    await waitFor("both counted", () => master.master.counters.invalidMessages >= before + 2);
    expect((lookupJob(master.master.state, "garbage-1") !== undefined)).toBe(false);
    const r = await submit(ui, { url: "https://example.com/after-garbage" });
    expect(r.ok).toBe(true);
    await waitFor("the next job folded", () => r.ok && (lookupJob(master.master.state, r.jobId) !== undefined));
  });

  it("keeps its refusals within the reply contract however long the offending key or value (clients check replies)", async () => {
    for (const body of [
      { url: "https://example.com", ["k".repeat(400)]: 1 },
      { scenario: { steps: [{ type: "t".repeat(10_000) }] } },
      { url: "https://example.com", fingerprint: { viewport: { width: 10, height: 10, ["v".repeat(500)]: 1 } } },
    ]) {
      const r = await submit(ui, body); // throws on a reply outside the contract
      expect(r).toMatchObject({ ok: false, error: { code: "invalid" } });
      if (!r.ok) expect(r.error.message.length).toBeLessThanOrEqual(4000);
    }
  });

  it("refuses a body that is not JSON", async () => {
    const before = await messages();
    const r = await submit(ui, "{not json");
    expect(r).toMatchObject({ ok: false, error: { code: "invalid" } });
    expect(await messages()).toBe(before);
  });
});

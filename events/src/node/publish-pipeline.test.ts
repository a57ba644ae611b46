import { JetStreamApiError } from "@nats-io/jetstream";
import { NoRespondersError, TimeoutError, type NatsConnection } from "@nats-io/nats-core";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEvent, decodeEvent, type TroupeEvent } from "../index.ts";
import { EventAppender, Requests } from "./publish-pipeline.ts";
import { publishEvent } from "./publish.ts";
import { jetstream } from "@nats-io/jetstream";

let nats: TestNats;
let master: NatsConnection;
let worker: NatsConnection;

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  master = await nats.connect("master");
  worker = await nats.connect("worker");
}, 60_000);
afterAll(async () => {
  await nats?.stop();
});

const submitted = (jobId: string) => createEvent("job.submitted", { jobId, spec: { url: "https://example.com", priority: 5, maxAttempts: 3, timeoutMs: 1000 } }, "m1") as TroupeEvent;

describe("Requests", () => {
  it("matches many replies to their requests, in flight at once", async () => {
    const sub = worker.subscribe("troupe.worker.w1.assign", { callback: (_e, m) => void m.respond(`re:${new TextDecoder().decode(m.data)}`) });
    await worker.flush();
    const r = new Requests(master);
    try {
      const replies = await Promise.all(Array.from({ length: 300 }, (_, i) => r.request("troupe.worker.w1.assign", String(i), { timeoutMs: 5000 })));
      expect(replies.map((m) => m.string())).toEqual(Array.from({ length: 300 }, (_, i) => `re:${i}`));
      expect(r.size).toBe(0);
    } finally {
      sub.unsubscribe();
      r.close();
    }
  });

  it("gives each request a reply subject a client that saw the last one cannot guess, so a reply-to trick cannot answer it", async () => {
    const seen: string[] = [];
    const sub = worker.subscribe("troupe.worker.w2.assign", { callback: (_e, m) => { seen.push(m.reply ?? ""); } });
    await worker.flush();
    const r = new Requests(master);
    try {
      // Unanswered requests: what a worker sees of them is their reply subjects.
      const waiting = [r.request("troupe.worker.w2.assign", "1", { timeoutMs: 3000 }), r.request("troupe.worker.w2.assign", "2", { timeoutMs: 3000 })];
      await master.flush();
      await waitFor("both requests seen", () => seen.length === 2 || undefined);
      const [first, second] = seen as [string, string];
      const prefix = first.slice(0, first.lastIndexOf(".") + 1);
      expect(second.startsWith(prefix)).toBe(true);
      // A counter alone (the old token) made the second `prefix + 1`; guessing it now answers nothing.
      expect(second).not.toBe(`${prefix}1`);
      expect(second.slice(prefix.length)).toMatch(/^1[A-Za-z0-9_-]{11}$/);
      // Make JetStream send an ack to the guessed subject, as a worker could by publishing its heartbeat subject with that reply-to.
      worker.publish("troupe.hb.w2", "x", { reply: `${prefix}1` });
      await worker.flush();
      const outcomes = await Promise.allSettled(waiting);
      expect(outcomes.map((o) => o.status === "rejected" && (o.reason as Error).name)).toEqual(["TimeoutError", "TimeoutError"]);
    } finally {
      sub.unsubscribe();
      r.close();
    }
  });

  it("fails with no responders, and with a timeout when the answer never comes", async () => {
    const r = new Requests(master, 10);
    const silent = worker.subscribe("troupe.worker.w2.assign", { callback: () => {} });
    await worker.flush();
    try {
      await expect(r.request("troupe.worker.nobody.assign", "x", { timeoutMs: 5000 })).rejects.toBeInstanceOf(NoRespondersError);
      const t0 = Date.now();
      await expect(r.request("troupe.worker.w2.assign", "x", { timeoutMs: 100 })).rejects.toBeInstanceOf(TimeoutError);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
      expect(r.size).toBe(0);
    } finally {
      silent.unsubscribe();
      r.close();
    }
    await expect(r.request("troupe.worker.w2.assign", "x", { timeoutMs: 100 })).rejects.toThrow(/closed/);
  });
});

describe("Requests on a closed connection", () => {
  it("fails what is waiting at once, not after its timeout", async () => {
    const nc = await nats.connect("master", "closing");
    const silent = worker.subscribe("troupe.worker.w3.assign", { callback: () => {} });
    await worker.flush();
    const r = new Requests(nc);
    const waiting = r.request("troupe.worker.w3.assign", "x", { timeoutMs: 60_000 }).catch((e: unknown) => e);
    await nc.flush();
    await nc.close();
    expect(await waiting).toBeInstanceOf(Error);
    expect(r.size).toBe(0);
    silent.unsubscribe();
  });
});

describe("EventAppender", () => {
  it("appends validated events with their id as Nats-Msg-Id and the subject guard", async () => {
    const a = new EventAppender(master);
    try {
      const e = submitted("pj-1");
      const ack = await a.append(e, { expectLastSubjectSequence: 0 });
      expect(ack).toMatchObject({ stream: "TROUPE_EVENTS", duplicate: false });
      // The same id again inside the duplicate window: dropped by JetStream.
      expect((await a.append(e)).duplicate).toBe(true);
      // The guard: someone appended on the subject since sequence 0.
      const err = await a.append(submitted("pj-1"), { expectLastSubjectSequence: 0 }).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(JetStreamApiError);
      expect((err as Error).message).toMatch(/wrong last sequence/i);
      const m = await (await (await import("@nats-io/jetstream")).jetstreamManager(master)).streams.getMessage("TROUPE_EVENTS", { seq: ack.seq });
      expect(m?.header.get("Nats-Msg-Id")).toBe(e.id);
      expect(decodeEvent(m!.subject, m!.data)).toEqual({ ok: true, value: e });
    } finally {
      a.close();
    }
  });

  it("refuses an invalid event before sending it", async () => {
    const a = new EventAppender(master);
    try {
      const bad = submitted("pj-2") as Record<string, any>;
      bad.data.spec.priority = 99;
      await expect(a.append(bad as TroupeEvent)).rejects.toThrow(/invalid job.submitted event: data.spec.priority/);
      expect(a.requests.size).toBe(0);
    } finally {
      a.close();
    }
  });
});

describe("publishEvent", () => {
  it("appends through the connection's Requests: ack, duplicate, guard, invalid", async () => {
    const js = jetstream(worker);
    const e = createEvent("job.started", { jobId: "pj-3", workerId: "w1", attempt: 1 }, "w1") as TroupeEvent;
    const ack = await publishEvent(js, e, { expectLastSubjectSequence: 0 });
    expect(ack).toMatchObject({ stream: "TROUPE_EVENTS", duplicate: false });
    expect((await publishEvent(js, e)).duplicate).toBe(true);
    await expect(publishEvent(js, createEvent("job.started", { jobId: "pj-3", workerId: "w1", attempt: 1 }, "w1") as TroupeEvent, { expectLastSubjectSequence: 0 })).rejects.toThrow(/wrong last sequence/i);
    await expect(publishEvent(js, createEvent("job.started", { jobId: "pj-3", workerId: "w1", attempt: 0 }, "w1") as TroupeEvent)).rejects.toThrow(/data.attempt/);
    // A role may not append what it does not own: no acknowledgement, a timeout (as with js.publish).
    await expect(publishEvent(js, submitted("pj-4"), { timeoutMs: 2000 })).rejects.toThrow();
  });
});

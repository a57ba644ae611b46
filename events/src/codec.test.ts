import { describe, expect, it } from "vitest";
import { checkEvent, createEvent, decodeEvent, encodeCheckedEvent, encodeEvent, jsonTooDeep, MAX_EVENT_BYTES, subjectOf } from "./codec.ts";
import type { TroupeEvent } from "./events.ts";
import { subjectsFor } from "./subjects.ts";

const completed = () =>
  createEvent("job.completed", {
    jobId: "job-1", workerId: "wn-demo-01", attempt: 2,
    result: { success: true, data: { title: "Example" }, dataExtracted: 1, screenshots: ["job-1/2/shot-0.png"], logs: [{ time: "2026-01-15T10:30:00.000Z", level: "info", message: "ok" }] },
    metrics: { totalDuration: 1200, responseTime: 300, memoryUsed: 42 },
  }, "wn-demo-01") as TroupeEvent;

const heartbeat = () =>
  createEvent("worker.heartbeat", {
    workerId: "wn-demo-01", instanceId: "i1", status: "busy", currentJobs: 1, maxConcurrentJobs: 4, jobIds: ["job-1"],
    metrics: { memoryUsage: 512, cpuUsage: 35.5, diskUsage: 40, networkUsage: 1.2, jobsCompleted: 10, jobsFailed: 1, averageResponseTime: 250, openContexts: 1 },
    performance: { successRate: 90.9, averageJobDuration: 3000 },
  }, "wn-demo-01") as TroupeEvent;

const SUBJ = "troupe.evt.job.job-1.completed";
/** Objects and arrays nested `n` deep. */
const nest = (n: number): unknown => {
  let v: unknown = "leaf";
  for (let i = 0; i < n; i++) v = i % 2 ? [v] : { x: v };
  return v;
};
const mutate = (f: (e: Record<string, any>) => void) => {
  const e = JSON.parse(JSON.stringify(completed()));
  f(e);
  return JSON.stringify(e);
};

describe("decodeEvent", () => {
  it("round-trips a valid event and a heartbeat", () => {
    const e = completed();
    const r = decodeEvent(subjectOf(e), encodeEvent(e));
    expect(r).toEqual({ ok: true, value: e });
    const hb = heartbeat();
    expect(subjectOf(hb)).toBe("troupe.hb.wn-demo-01");
    expect(decodeEvent("troupe.hb.wn-demo-01", encodeEvent(hb)).ok).toBe(true);
  });

  // The bad-input table from the foundation issue: every row gets a precise code, path and reason.
  const table: { name: string; subject?: string; body: string | Uint8Array; code: string; path: string; message: RegExp }[] = [
    { name: "non-JSON", body: "{not json", code: "not-json", path: "", message: /not JSON/ },
    { name: "invalid UTF-8", body: new Uint8Array([0x7b, 0xff, 0x7d]), code: "not-json", path: "", message: /UTF-8/ },
    { name: "JSON array", body: "[1,2]", code: "not-object", path: "", message: /an array/ },
    { name: "JSON null", body: "null", code: "not-object", path: "", message: /null/ },
    { name: "wrong type of a data field", body: mutate((e) => (e.data.attempt = "2")), code: "invalid-data", path: "data.attempt", message: /integer/ },
    { name: "wrong type of an envelope field", body: mutate((e) => (e.time = 12)), code: "invalid-envelope", path: "time", message: /string/ },
    { name: "bad time format", body: mutate((e) => (e.time = "yesterday")), code: "invalid-envelope", path: "time", message: /ISO-8601/ },
    { name: "missing envelope id", body: mutate((e) => delete e.id), code: "invalid-envelope", path: "id", message: /required/i },
    { name: "missing data field", body: mutate((e) => delete e.data.result), code: "invalid-data", path: "data.result", message: /required/i },
    { name: "missing nested field", body: mutate((e) => delete e.data.metrics.totalDuration), code: "invalid-data", path: "data.metrics.totalDuration", message: /required/i },
    { name: "unknown data field", body: mutate((e) => (e.data.surprise = 1)), code: "invalid-data", path: "data.surprise", message: /unknown property/ },
    { name: "unknown envelope field", body: mutate((e) => (e.extra = 1)), code: "invalid-envelope", path: "extra", message: /unknown property/ },
    { name: "id not a subject token", body: mutate((e) => (e.data.workerId = "a.b")), code: "invalid-data", path: "data.workerId", message: /A-Za-z0-9_-/ },
    { name: "a duration no job lasts (sums of such once became Infinity in the read models)", body: mutate((e) => (e.data.metrics.totalDuration = 1e308)), code: "invalid-data", path: "data.metrics.totalDuration", message: /less or equal to 1000000000000/ },
    { name: "negative metric", body: mutate((e) => (e.data.metrics.memoryUsed = -1)), code: "invalid-data", path: "data.metrics.memoryUsed", message: /greater or equal/ },
    { name: "wrong subject for the type", subject: "troupe.evt.job.job-1.failed", body: encodeEvent(completed()), code: "subject-mismatch", path: "type", message: /belongs on troupe\.evt\.job\.job-1\.completed/ },
    { name: "subject names another job", subject: "troupe.evt.job.job-2.completed", body: encodeEvent(completed()), code: "subject-mismatch", path: "type", message: /job job-1/ },
    { name: "heartbeat on an event subject", subject: "troupe.evt.worker.wn-demo-01.registered", body: encodeEvent(heartbeat()), code: "subject-mismatch", path: "type", message: /troupe\.hb\.wn-demo-01/ },
    { name: "not a Troupe subject", subject: "other.thing", body: encodeEvent(completed()), code: "subject-mismatch", path: "", message: /not a Troupe event subject/ },
    { name: "nested too deep (a stack overflow for every recursive reader)", body: mutate((e) => (e.data.result.data = { a: nest(70) })), code: "too-deep", path: "", message: /deeper than 64 levels/ },
    { name: "oversized", body: mutate((e) => (e.data.result.data.big = "x".repeat(MAX_EVENT_BYTES))), code: "too-large", path: "", message: /limit is 262144/ },
    { name: "unknown event type", body: mutate((e) => (e.type = "job.exploded")), code: "unknown-type", path: "type", message: /job\.exploded/ },
    { name: "future schema version", body: mutate((e) => (e.v = 2)), code: "unsupported-version", path: "v", message: /version 2 .* newer/ },
    { name: "version zero", body: mutate((e) => (e.v = 0)), code: "invalid-envelope", path: "v", message: /greater or equal/ },
  ];
  for (const row of table) {
    it(`rejects ${row.name}`, () => {
      const r = decodeEvent(row.subject ?? SUBJ, row.body);
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.error.code).toBe(row.code);
      expect(r.error.path).toBe(row.path);
      expect(r.error.message).toMatch(row.message);
    });
  }

  it("checks job.submitted specs with scenario step detail", () => {
    const e = createEvent("job.submitted", {
      jobId: "job-9",
      spec: { priority: 5, maxAttempts: 3, timeoutMs: 10_000, scenario: { steps: [{ type: "navigate", url: "https://example.com" }, { type: "click", selectors: [] }] } },
    }, "master-1");
    const r = decodeEvent("troupe.evt.job.job-9.submitted", encodeEvent(e as TroupeEvent));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatchObject({ code: "invalid-data", path: "data.spec.scenario.steps[1].selectors" });
  });

  it("honours another subject prefix", () => {
    const s = subjectsFor("acme");
    const e = completed();
    expect(subjectOf(e, s)).toBe("acme.evt.job.job-1.completed");
    expect(decodeEvent("acme.evt.job.job-1.completed", encodeEvent(e), { subjects: s }).ok).toBe(true);
    expect(decodeEvent(SUBJ, encodeEvent(e), { subjects: s }).ok).toBe(false);
  });

  it("creates unique, time-ordered event ids", () => {
    const ids = Array.from({ length: 1000 }, () => completed().id);
    expect(new Set(ids).size).toBe(1000);
    expect([...ids].sort()[0]!.slice(0, 10)).toBe(ids[0]!.slice(0, 10));
  });
});

describe("unpaired surrogates and __proto__ keys", () => {
  it("an event's unpaired surrogate is read as U+FFFD (what UTF-8 makes of it), on the wire and when decoded; a valid pair stays", () => {
    const e = completed();
    (e as Extract<TroupeEvent, { type: "job.completed" }>).data.result.data = { title: "a\ud800b\udfffc", emoji: "\u{1F600}", literal: "\\ud800" };
    const text = new TextDecoder().decode(encodeEvent(e));
    expect(JSON.parse(text).data.result.data.title).toBe("a\uFFFDb\uFFFDc");
    const d = decodeEvent(SUBJ, text);
    expect(d.ok && (d.value as Extract<TroupeEvent, { type: "job.completed" }>).data.result.data).toEqual({ title: "a\uFFFDb\uFFFDc", emoji: "\u{1F600}", literal: "\\ud800" });
    expect(encodeCheckedEvent(e).ok).toBe(true);
    // One written before (JSON.stringify escapes them) folds the same way.
    const old = decodeEvent(SUBJ, JSON.stringify(e));
    expect(old.ok && (old.value as Extract<TroupeEvent, { type: "job.completed" }>).data.result.data.title).toBe("a\uFFFDb\uFFFDc");
  });

  it("repairs exactly as String#toWellFormed does, over random mixes of surrogates, pairs and text", () => {
    const units = [0x61, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xd83d, 0xde00, 0x5c, 0x75];
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let n = 0; n < 2000; n++) {
      const str = String.fromCharCode(...Array.from({ length: Math.floor(rnd() * 12) }, () => units[Math.floor(rnd() * units.length)]!));
      const e = completed();
      (e as Extract<TroupeEvent, { type: "job.completed" }>).data.result.data = { v: str };
      const d = decodeEvent(SUBJ, JSON.stringify(e));
      const want = (str as string & { toWellFormed(): string }).toWellFormed();
      expect(d.ok && (d.value as Extract<TroupeEvent, { type: "job.completed" }>).data.result.data.v, JSON.stringify(str)).toBe(want);
      expect(JSON.parse(new TextDecoder().decode(encodeEvent(e))).data.result.data.v).toBe(want);
    }
  });

  it("an event with a __proto__ key, or an unpaired surrogate in a key, is refused, naming where", () => {
    const proto = decodeEvent(SUBJ, mutate((e) => (e.data.result.data = JSON.parse('{"__proto__": 1}'))));
    expect(proto).toMatchObject({ ok: false, error: { code: "invalid-data", path: "data.result.data.__proto__", message: expect.stringMatching(/__proto__/) } });
    const escaped = decodeEvent(SUBJ, mutate((e) => (e.data.result.data = {})).replace('"data":{}', '"data":{"\\u005f_proto__":1}'));
    expect(escaped).toMatchObject({ ok: false, error: { path: "data.result.data.__proto__" } });
    const key = decodeEvent(SUBJ, mutate((e) => (e.data.result.data = { ["k\udc00"]: 1 })));
    expect(key).toMatchObject({ ok: false, error: { code: "invalid-data", message: expect.stringMatching(/surrogate/) } });
  });
});

describe("encodeCheckedEvent (what publishEvent sends)", () => {
  it("gives the subject and bytes that decode back to the same event", () => {
    const e = completed();
    const r = encodeCheckedEvent(e);
    if (!r.ok) throw new Error(r.error.message);
    expect(r.subject).toBe(SUBJ);
    expect(decodeEvent(r.subject, r.bytes)).toEqual({ ok: true, value: e });
    expect(checkEvent(heartbeat())).toBeNull();
  });

  it("refuses what a consumer would refuse, naming the field", () => {
    const e = completed() as Record<string, any>;
    e.data.attempt = 0;
    const r = encodeCheckedEvent(e as TroupeEvent);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatchObject({ code: "invalid-data", path: "data.attempt" });
    const bad = completed() as Record<string, any>;
    bad.data.workerId = "a.b";
    expect(checkEvent(bad as TroupeEvent)?.path).toBe("data.workerId");
    const big = completed() as Record<string, any>;
    big.data.result.logs = [{ time: "2026-01-15T10:30:00.000Z", level: "info", message: "x".repeat(MAX_EVENT_BYTES) }];
    expect(checkEvent(big as TroupeEvent)?.code).toBe("too-large");
  });

  it("judges by the bytes sent when JSON changes the object (an undefined field is dropped)", () => {
    const e = completed() as Record<string, any>;
    e.data.unknownButUndefined = undefined;
    expect(checkEvent(e as TroupeEvent)).toBeNull();
    const r = encodeCheckedEvent(e as TroupeEvent);
    if (!r.ok) throw new Error(r.error.message);
    expect(decodeEvent(r.subject, r.bytes).ok).toBe(true);
    // NaN becomes null in JSON: refused either way.
    const n = completed() as Record<string, any>;
    n.data.metrics.totalDuration = Number.NaN;
    expect(checkEvent(n as TroupeEvent)?.path).toBe("data.metrics.totalDuration");
  });
});

describe("nesting depth", () => {
  it("counts objects and arrays, not brackets inside strings; a real event is far from the limit", () => {
    expect(jsonTooDeep(JSON.stringify(nest(64)), 64)).toBe(false);
    expect(jsonTooDeep(JSON.stringify(nest(65)), 64)).toBe(true);
    expect(jsonTooDeep(JSON.stringify({ s: "[[[[[[{{{{{{\\\"[[[[", t: ["]]]}}}"] }), 2)).toBe(false);
    expect(jsonTooDeep(new TextDecoder().decode(encodeEvent(completed())), 5)).toBe(false);
  });

  it("58 levels of extracted data are an event; 70 are refused at the source too, before anyone has to read them", () => {
    const e = completed() as TroupeEvent & { data: { result: { data: Record<string, unknown> } } };
    e.data.result.data = { a: nest(58) };
    expect(decodeEvent(SUBJ, encodeEvent(e)).ok).toBe(true);
    e.data.result.data = { a: nest(70) };
    expect(checkEvent(e)).toMatchObject({ code: "too-deep" });
  });
});

describe("every number is bounded", () => {
  it("a heartbeat claiming more jobs than a worker may hold is refused (it once showed a fleet capacity of 1e300)", () => {
    for (const [field, value] of [["currentJobs", 1e300], ["maxConcurrentJobs", 1001]] as const) {
      const e = JSON.parse(JSON.stringify(heartbeat()));
      e.data[field] = value;
      expect(decodeEvent("troupe.hb.wn-demo-01", JSON.stringify(e))).toMatchObject({ ok: false, error: { code: "invalid-data", path: `data.${field}` } });
    }
  });

  it("an epoch past the integers a double holds is refused", () => {
    const e = createEvent("job.assigned", { jobId: "job-1", workerId: "wn-demo-01", attempt: 1, epoch: 1e300 }, "m");
    expect(checkEvent(e as TroupeEvent)).toMatchObject({ code: "invalid-data", path: "data.epoch" });
  });
});

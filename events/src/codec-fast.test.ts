import type { TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { describe, expect, it } from "vitest";
import { checkEvent, checkJobSpecSemantics, createEvent, decodeEvent, encodeEvent, subjectOf } from "./codec.ts";
import { firstError } from "./errors.ts";
import { EVENT_TYPES, EventDataSchemas, type EventData, type EventType, type TroupeEvent } from "./events.ts";
import { validateScenario } from "./scenario.ts";
import { standardPrefix, subjects, subjectsFor, type Subjects } from "./subjects.ts";

/**
 * decodeEvent's fast paths (subject compared piece by piece, ...) must give the verdict the
 * plain code gives. A copy of a Subjects ({...s}) is not one subjectsFor made, so decoding with
 * it takes the plain path: the reference each fast verdict is compared with.
 */

const ev = <T extends EventType>(type: T, data: EventData<T>) => createEvent(type, data, "src-1", new Date(Date.UTC(2026, 0, 15, 10))) as TroupeEvent;
const samples: TroupeEvent[] = [
  ev("worker.heartbeat", {
    workerId: "wn-1", instanceId: "i1", status: "busy", currentJobs: 1, maxConcurrentJobs: 4, jobIds: ["job-1"],
    metrics: { memoryUsage: 512, cpuUsage: 35.5, diskUsage: 40, networkUsage: 1.2, jobsCompleted: 10, jobsFailed: 1, averageResponseTime: 250 },
    performance: { successRate: 90.9, averageJobDuration: 3000 },
  }),
  ev("worker.registered", { workerId: "wn-1", instanceId: "i1", name: "w", type: "puppeteer", ip: "10.0.0.1", port: 3002, version: "0.1.0", capabilities: { maxConcurrentJobs: 4, memory: 8192, cpu: 4, supportedBrowsers: [] } }),
  ev("worker.lost", { workerId: "wn-1", lastSeen: "2026-01-15T09:59:00.000Z", epoch: 3, jobIds: ["job-1"] }),
  ev("worker.draining", { workerId: "wn-12", instanceId: "i1" }),
  ev("job.submitted", { jobId: "job-1", spec: { url: "https://example.com", priority: 1, maxAttempts: 3, timeoutMs: 60_000 } }),
  ev("job.assigned", { jobId: "job-1", workerId: "wn-1", attempt: 1, epoch: 3 }),
  ev("job.started", { jobId: "job-1", workerId: "wn-1", attempt: 1 }),
  ev("job.started", { jobId: "j", workerId: "wn-1", attempt: 1 }),
  ev("job.requeued", { jobId: "job-11", attempt: 2, reason: "worker-lost", notBefore: "2026-01-15T10:00:00Z", epoch: 3 }),
];

function candidateSubjects(s: Subjects): string[] {
  const out = new Set<string>(["", ".", "other.thing", `${s.prefix}.hb.`, `${s.prefix}.hb`, `${s.prefix}.evt.job..started`, `${s.prefix}.evt.job.job-1.`]);
  for (const e of samples) {
    const right = subjectOf(e, s);
    out.add(right);
    out.add(subjectOf(e, subjects));
    out.add(subjectOf(e, subjectsFor("acme.x")));
    for (const v of [`${right}x`, right.slice(0, -1), `x${right}`, right.slice(1), `${right}.`, right.toUpperCase(), right.replace("-1", "-2"), right.replace("-1", "-11"), right.replace("-1", ""), right.replace(".evt.", ".hb."), right.replace(".hb.", ".evt.worker.")]) out.add(v);
    for (const kind of ["registered", "lost", "submitted", "started", "completed", "heartbeat", "toString", "constructor", "__proto__"]) {
      out.add(right.replace(/\.[^.]+$/, `.${kind}`));
    }
  }
  return [...out];
}

describe("decodeEvent subject check, fast path", () => {
  it("knows which Subjects it may take the fast path for", () => {
    expect(standardPrefix(subjects)).toBe("troupe");
    expect(standardPrefix(subjectsFor("acme.x"))).toBe("acme.x");
    expect(standardPrefix({ ...subjects })).toBeUndefined();
    const swapped = subjectsFor("sw");
    swapped.heartbeat = (id: string) => `elsewhere.${id}`;
    expect(standardPrefix(swapped)).toBeUndefined();
  });

  it("samples are valid events", () => {
    for (const e of samples) expect(checkEvent(e)).toBeNull();
  });

  for (const prefix of ["troupe", "acme.x", "t"]) {
    it(`gives the plain path's verdict for every sample on right and wrong subjects (prefix ${prefix})`, () => {
      const s = subjectsFor(prefix);
      const plain = { ...s };
      let accepted = 0;
      for (const e of samples) {
        const bytes = encodeEvent(e);
        for (const subject of candidateSubjects(s)) {
          const fast = decodeEvent(subject, bytes, { subjects: s });
          expect(fast).toEqual(decodeEvent(subject, bytes, { subjects: plain }));
          expect(fast.ok).toBe(subject === subjectOf(e, s));
          if (fast.ok) accepted++;
        }
      }
      expect(accepted).toBe(samples.length);
    });
  }

  it("follows a Subjects whose builders were swapped, also after it was used", () => {
    const s = subjectsFor("troupe");
    const hb = samples[0]!;
    expect(decodeEvent("troupe.hb.wn-1", encodeEvent(hb), { subjects: s }).ok).toBe(true);
    s.heartbeat = (id: string) => `troupe.pulse.${id}`;
    expect(decodeEvent("troupe.pulse.wn-1", encodeEvent(hb), { subjects: s }).ok).toBe(true);
    expect(decodeEvent("troupe.hb.wn-1", encodeEvent(hb), { subjects: s }).ok).toBe(false);
  });

  it("alternating Subjects objects do not mix up their prefixes", () => {
    const a = subjectsFor("a");
    const b = subjectsFor("b");
    const e = samples[6]!;
    for (let i = 0; i < 3; i++) {
      expect(decodeEvent("a.evt.job.job-1.started", encodeEvent(e), { subjects: a }).ok).toBe(true);
      expect(decodeEvent("a.evt.job.job-1.started", encodeEvent(e), { subjects: b }).ok).toBe(false);
      expect(decodeEvent("b.evt.job.job-1.started", encodeEvent(e), { subjects: b }).ok).toBe(true);
    }
  });
});

describe("decodeEvent known-type check (a Set)", () => {
  const body = (type: unknown) => {
    const e = JSON.parse(JSON.stringify(samples[6])) as Record<string, unknown>;
    e.type = type;
    return JSON.stringify(e);
  };
  it("refuses prototype names and near misses as unknown types, as the array lookup did", () => {
    const odd = ["toString", "constructor", "__proto__", "hasOwnProperty", "valueOf", "__defineGetter__", "", "job", "job.", "job.started ", "Job.started", "job.started\u0000", "length", "0", "size", "has"];
    for (const type of odd) {
      expect((EVENT_TYPES as string[]).includes(type)).toBe(false);
      const r = decodeEvent("troupe.evt.job.job-1.started", body(type));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toEqual({ code: "unknown-type", path: "type", message: `unknown event type ${JSON.stringify(type)}` });
    }
  });
  it("a __proto__ key in the body is data, not a type", () => {
    const r = decodeEvent("troupe.evt.job.job-1.started", body("job.started").replace('"type"', '"__proto__":"job.started","type"'));
    expect(r.ok).toBe(false);
    // Refused before any check reads it as the envelope's: no key of that name is taken anywhere.
    if (!r.ok) expect(r.error).toMatchObject({ code: "invalid-data", path: "__proto__", message: "a key named __proto__ is not allowed" });
  });
  it("knows every event type, and a non-string type is the envelope's to refuse", () => {
    for (const type of EVENT_TYPES) {
      const r = decodeEvent("troupe.evt.job.job-1.started", body(type));
      if (!r.ok) expect(r.error.code).not.toBe("unknown-type");
    }
    for (const type of [1, null, ["job.started"], { toString: 1 }]) {
      const r = decodeEvent("troupe.evt.job.job-1.started", body(type));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toMatchObject({ code: "invalid-envelope", path: "type" });
    }
  });
});

describe("job.submitted with a scenario: the data check skips the scenario validateScenario just passed", () => {
  const full = TypeCompiler.Compile(EventDataSchemas["job.submitted"] as TSchema);
  /** decodeEvent's verdict on a job.submitted as it was: the scenario checked twice, then the whole data schema. */
  function reference(data: Record<string, any>): unknown {
    const e = validateScenario(data.spec.scenario, "data.spec.scenario");
    if (e) return { code: "invalid-data", ...e };
    const d = firstError(full, data, "data");
    if (d) return { code: "invalid-data", ...d };
    const sem = checkJobSpecSemantics(data.spec, "data.spec");
    return sem ? { code: "invalid-data", ...sem } : "ok";
  }
  const scenario = () => ({ title: "t", steps: [{ type: "navigate", url: "https://example.com/" }, { type: "click", selectors: [["#go"]] }, { type: "extract", fields: { a: { selector: "h1" } } }] });
  const mutations: ((d: Record<string, any>) => void)[] = [
    () => {},
    (d) => (d.spec.priority = 11),
    (d) => (d.spec.tags = ["bad tag"]),
    (d) => (d.spec.surprise = 1),
    (d) => (d.surprise = 1),
    (d) => (d.spec.proxy = { server: "nope" }),
    (d) => (d.spec.fingerprint = { locale: "x" }),
    (d) => (d.spec.url = "ftp://example.com"),
    (d) => (d.spec.runAt = "tomorrow"),
    (d) => { d.spec.runAt = "2026-01-15T10:30:00Z"; d.spec.expiresAt = "2026-01-15T10:00:00Z"; },
    (d) => (d.idempotencyKey = ""),
    (d) => (d.jobId = "a.b"),
    (d) => delete d.spec.maxAttempts,
    (d) => (d.spec.scenario.steps[1].selectors = []),
    (d) => (d.spec.scenario.steps[2].fields = {}),
    (d) => (d.spec.scenario.extra = 1),
    (d) => (d.spec.scenario.steps[0].type = "toString"),
  ];
  it("gives the verdict the whole data schema gave", () => {
    for (const [i, mutate] of mutations.entries()) {
      const data: Record<string, any> = { jobId: "job-9", spec: { priority: 5, maxAttempts: 3, timeoutMs: 60_000, scenario: scenario() } };
      mutate(data);
      const body = JSON.stringify({ id: "e1", type: "job.submitted", v: 1, time: "2026-01-15T10:30:00.000Z", source: "m", data });
      const r = decodeEvent(data.jobId === "job-9" ? "troupe.evt.job.job-9.submitted" : "x", body);
      expect([i, r.ok ? "ok" : r.error]).toEqual([i, reference(JSON.parse(body).data)]);
    }
  });
});

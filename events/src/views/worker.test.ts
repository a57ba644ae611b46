import { describe, expect, it } from "vitest";
import { createEvent } from "../codec.ts";
import type { EventData, EventType, TroupeEvent } from "../events.ts";
import { canonicalWorker, countJobOutcome, evolveWorker, isoAfter, workerPresence, type WorkerView } from "./worker.ts";

let clock = Date.parse("2026-01-01T00:00:00Z");
const at = (ms: number) => new Date(ms);
const ev = <T extends EventType>(type: T, data: EventData<T>, time = at((clock += 1000))) => createEvent(type, data, "test", time) as TroupeEvent;
const caps = { maxConcurrentJobs: 3, memory: 1024, cpu: 2, supportedBrowsers: [] };
const reg = (time?: Date) => ev("worker.registered", { workerId: "w", instanceId: "i", name: "W", type: "puppeteer", ip: "1.2.3.4", port: 3002, version: "1", capabilities: caps }, time);
const hb = (status: "online" | "busy" | "draining", cpu: number, time?: Date) =>
  ev("worker.heartbeat", { workerId: "w", instanceId: "i", status, currentJobs: status === "busy" ? 1 : 0, maxConcurrentJobs: 3, jobIds: [],
    metrics: { memoryUsage: 100, cpuUsage: cpu, diskUsage: 1, networkUsage: 2, jobsCompleted: 500, jobsFailed: 0, averageResponseTime: 1 },
    performance: { successRate: 100, averageJobDuration: 1 } }, time);
const res = { success: true as const, data: {}, dataExtracted: 0, screenshots: [], logs: [] };
const done = (totalDuration: number, responseTime: number) => ev("job.completed", { jobId: "j", workerId: "w", attempt: 1, result: res, metrics: { totalDuration, responseTime, memoryUsed: 1 } }) as Extract<TroupeEvent, { type: "job.completed" }>;
const failed = (totalDuration?: number) => ev("job.failed", { jobId: "j", workerId: "w", attempt: 1, error: { message: "x", retryable: false }, ...(totalDuration !== undefined ? { metrics: { totalDuration } } : {}) }) as Extract<TroupeEvent, { type: "job.failed" }>;

const foldAll = (events: TroupeEvent[]) => events.reduce<WorkerView | undefined>((w, e) => {
  if (e.type === "job.completed" || e.type === "job.failed") return countJobOutcome(w, e);
  return evolveWorker(w, e as Extract<TroupeEvent, { type: `worker.${string}` }>);
}, undefined) as WorkerView;

describe("worker view", () => {
  it("takes identity from registration and telemetry from heartbeats", () => {
    const w = foldAll([reg(), hb("busy", 55)]);
    expect(w).toMatchObject({ id: "w", name: "W", ip: "1.2.3.4", maxJobs: 3, status: "busy", cpu: 55, currentJobs: 1, memory: 100 });
  });

  it("stays registered when another process with its id drains and deregisters (a paused twin stopped after its replacement registered)", () => {
    const again = ev("worker.registered", { workerId: "w", instanceId: "i-2", name: "W", type: "puppeteer", ip: "1.2.3.4", port: 3002, version: "1", capabilities: caps });
    const w = foldAll([reg(), again, ev("worker.draining", { workerId: "w", instanceId: "i" }), ev("worker.deregistered", { workerId: "w", instanceId: "i" })]);
    expect(w).toMatchObject({ instanceId: "i-2", lifecycle: "registered" });
    expect(foldAll([reg(), ev("worker.deregistered", { workerId: "w", instanceId: "i" })]).lifecycle).toBe("deregistered");
  });

  it("ignores the heartbeats of another process with its id once a newer one registered (a paused twin resumed): no flicker between the two", () => {
    const t = Date.parse("2026-02-10T00:00:00Z");
    const beat = (instanceId: string, status: "online" | "busy", cpu: number, ms: number) => {
      const e = hb(status, cpu, at(ms)) as Extract<TroupeEvent, { type: "worker.heartbeat" }>;
      return { ...e, data: { ...e.data, instanceId } } as TroupeEvent;
    };
    const second = ev("worker.registered", { workerId: "w", instanceId: "i-2", name: "W", type: "puppeteer", ip: "1.2.3.4", port: 3002, version: "1", capabilities: caps }, at(t + 10_000));
    // i ran, i-2 replaced it while it was paused, then i resumed and heartbeats beside i-2.
    const live = [reg(at(t)), beat("i", "busy", 90, t + 5000), second, beat("i-2", "online", 10, t + 11_000), beat("i", "busy", 90, t + 12_000), beat("i", "busy", 91, t + 13_000)];
    const w = foldAll(live);
    expect(w).toMatchObject({ instanceId: "i-2", status: "online", cpu: 10, currentJobs: 0, lastHeartbeatAt: at(t + 11_000).toISOString() });
    // Before the replacement registered, the old instance's heartbeats count, folded live or rebuilt (events first).
    const before = foldAll([reg(at(t)), beat("i", "busy", 90, t + 5000), second]);
    const rebuilt = foldAll([reg(at(t)), second, beat("i", "busy", 90, t + 5000)]);
    expect(JSON.stringify(canonicalWorker(rebuilt))).toBe(JSON.stringify(canonicalWorker(before)));
    expect(before).toMatchObject({ cpu: 90, lastHeartbeatAt: at(t + 5000).toISOString() });
    // A late heartbeat of the old process dated before the registration (a clock behind, a paused send) does not win over the registered one's.
    expect(foldAll([...live, beat("i", "busy", 95, t + 9000)])).toMatchObject({ cpu: 10, lastHeartbeatAt: at(t + 11_000).toISOString() });
    // The whole stream rebuilt (events, then heartbeats) equals the live fold.
    const rebuiltAll = foldAll([reg(at(t)), second, beat("i", "busy", 90, t + 5000), beat("i-2", "online", 10, t + 11_000), beat("i", "busy", 90, t + 12_000), beat("i", "busy", 91, t + 13_000)]);
    expect(JSON.stringify(canonicalWorker(rebuiltAll))).toBe(JSON.stringify(canonicalWorker(w)));
  });

  it("computes success rate and averages from job outcomes, ignoring the worker's own claims", () => {
    const w = foldAll([reg(), hb("online", 1), done(1000, 200), done(3000, 400), failed(500), failed()]);
    expect(w.jobsCompleted).toBe(2);
    expect(w.jobsFailed).toBe(2);
    expect(w.successRate).toBe(50);
    expect(w.averageJobDuration).toBe(1500); // (1000 + 3000 + 500) / 3 — the failure without metrics has no duration
    expect(w.averageResponseTime).toBe(300);
  });

  it("has a 0 success rate and 0 averages with no jobs", () => {
    expect(foldAll([reg()])).toMatchObject({ successRate: 0, averageJobDuration: 0, averageResponseTime: 0, status: "online" });
  });

  it("is lost after worker.lost until a newer heartbeat, and offline after deregistration", () => {
    const t = Date.parse("2026-02-01T00:00:00Z");
    const lost = ev("worker.lost", { workerId: "w", lastSeen: at(t).toISOString(), epoch: 1, jobIds: [] }, at(t + 5000));
    expect(foldAll([reg(at(t)), hb("online", 1, at(t + 1000)), lost]).status).toBe("lost");
    expect(foldAll([reg(at(t)), hb("online", 1, at(t + 1000)), lost, hb("online", 1, at(t + 9000))]).status).toBe("online");
    // Lost while busy: it shows no jobs (they were requeued elsewhere), not its last heartbeat's.
    expect(foldAll([reg(at(t)), hb("busy", 1, at(t + 1000)), lost])).toMatchObject({ status: "lost", currentJobs: 0, jobIds: [] });
    const dereg = ev("worker.deregistered", { workerId: "w", instanceId: "i" }, at(t + 2000));
    expect(foldAll([reg(at(t)), dereg, hb("online", 1, at(t + 3000))]).status).toBe("offline");
    expect(foldAll([reg(at(t)), ev("worker.draining", { workerId: "w", instanceId: "i" }, at(t + 2000))]).status).toBe("draining");
  });

  it("a resumed worker (the same process registered again after its drain) is online whichever stream comes first; a draining heartbeat after the registration drains it", () => {
    const t = Date.parse("2026-02-02T00:00:00Z");
    const drain = ev("worker.draining", { workerId: "w", instanceId: "i" }, at(t + 2000));
    const events = [reg(at(t)), drain, reg(at(t + 5000))];
    // The draining heartbeat before the resume folds after it (the heartbeat stream behind the events).
    expect(foldAll([...events, hb("draining", 1, at(t + 4000))]).status).toBe("online");
    expect(foldAll([hb("draining", 1, at(t + 4000)), ...events]).status).toBe("online");
    expect(foldAll([...events, hb("draining", 1, at(t + 4000)), hb("busy", 1, at(t + 6000))]).status).toBe("busy");
    // A worker whose drain event never made it to the log still says so in its heartbeats.
    expect(foldAll([reg(at(t)), hb("draining", 1, at(t + 1000))]).status).toBe("draining");
    expect(foldAll([...events, hb("draining", 1, at(t + 7000))]).status).toBe("draining");
  });

  it("gives the same view whichever stream a consumer folds first", () => {
    const t = Date.parse("2026-03-01T00:00:00Z");
    const events = [reg(at(t)), done(100, 10)];
    const beats = [hb("busy", 10, at(t + 500)), hb("online", 20, at(t + 1500))];
    const a = foldAll([...events, ...beats]);
    const b = foldAll([...beats, ...events]);
    const c = foldAll([events[0]!, beats[0]!, events[1]!, beats[1]!]);
    expect(JSON.stringify(canonicalWorker(a))).toBe(JSON.stringify(canonicalWorker(b)));
    expect(JSON.stringify(canonicalWorker(a))).toBe(JSON.stringify(canonicalWorker(c)));
    expect(a.lastSeen).toBe(at(t + 1500).toISOString());
  });

  it("shows a silent online worker as suspect at read time", () => {
    const w = foldAll([reg(at(0)), hb("online", 1, at(1000))]);
    expect(workerPresence(w, 1000 + 60_000, 90_000)).toBe("online");
    expect(workerPresence(w, 1000 + 90_001, 90_000)).toBe("suspect");
    expect(workerPresence({ ...w, status: "lost" }, 1e12, 90_000)).toBe("lost");
  });

  it("judges a worker by its own heartbeat interval when that is longer than the UI's window (a remote worker at 30 s under up's 10 s)", () => {
    const beat = { ...(hb("online", 1, at(1000)) as Extract<TroupeEvent, { type: "worker.heartbeat" }>) };
    beat.data = { ...beat.data, heartbeatMs: 30_000 };
    const w = foldAll([reg(at(0)), beat]);
    expect(w.heartbeatMs).toBe(30_000);
    expect(workerPresence(w, 1000 + 45_000, 20_000)).toBe("online");
    expect(workerPresence(w, 1000 + 60_001, 20_000)).toBe("suspect");
    // A fast heartbeat does not make the UI stricter than its own setting.
    expect(workerPresence({ ...w, heartbeatMs: 1000 }, 1000 + 15_000, 20_000)).toBe("online");
  });

  it("with no floor set (the default), a worker is suspect after two of its own heartbeat intervals, 30 s taken for one that states none (the CLI's 90 s called a worker of troupe up online long after its dashboard said suspect)", () => {
    const beat = { ...(hb("online", 1, at(1000)) as Extract<TroupeEvent, { type: "worker.heartbeat" }>) };
    beat.data = { ...beat.data, heartbeatMs: 10_000 };
    const w = foldAll([reg(at(0)), beat]);
    expect(workerPresence(w, 1000 + 20_000, 0)).toBe("online");
    expect(workerPresence(w, 1000 + 20_001, 0)).toBe("suspect");
    const unstated = { ...w, heartbeatMs: undefined };
    expect(workerPresence(unstated, 1000 + 60_000, 0)).toBe("online");
    expect(workerPresence(unstated, 1000 + 60_001, 0)).toBe("suspect");
    // A floor set still holds for both.
    expect(workerPresence(w, 1000 + 20_001, 45_000)).toBe("online");
    expect(workerPresence(unstated, 1000 + 20_001, 15_000)).toBe("suspect");
  });

  it("returns views of one key order, so their JSON does not depend on which stream set a field first", () => {
    const t = Date.parse("2026-03-01T00:00:00Z");
    const a = foldAll([reg(at(t)), hb("busy", 10, at(t + 500))]);
    const b = foldAll([hb("busy", 10, at(t + 500)), reg(at(t))]);
    expect(Object.keys(a)).toEqual(Object.keys(b));
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(JSON.stringify(a)).toBe(JSON.stringify(canonicalWorker(a)));
  });

  it("compares event times as Date.parse does", () => {
    const cases: [string, string][] = [
      ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.001Z"],
      ["2026-01-01T00:00:00.001Z", "2026-01-01T00:00:00.000Z"],
      ["2026-01-01T10:00:00.000Z", "2026-01-01T10:00:00.000Z"],
      ["2026-01-01T23:59:59.999Z", "2026-01-02T00:00:00.000Z"],
      ["2026-01-02T00:00:00.000Z", "2026-01-01T23:59:59.999Z"],
      ["2026-01-01T10:00:00.000Z", "2026-01-01T11:00:00.000+02:00"],
      ["2026-01-01T10:00:00Z", "2026-01-01T09:59:59.5Z"],
      ["2026-01-01T10:00:00.000Z", "2026-01-01T10:00:00.000000001Z"],
    ];
    for (const [a, b] of cases) expect([a, b, isoAfter(a, b)]).toEqual([a, b, Date.parse(b) > Date.parse(a)]);
  });
});

describe("worker view: the same whichever stream is folded first", () => {
  it("maxJobs is the newer of the registration's and the latest heartbeat's (a rebuild folds the events before the heartbeats)", () => {
    const withMax = (e: TroupeEvent, n: number) => {
      const c = JSON.parse(JSON.stringify(e)) as TroupeEvent & { data: Record<string, any> };
      if (c.type === "worker.registered") c.data.capabilities.maxConcurrentJobs = n;
      else c.data.maxConcurrentJobs = n;
      return c;
    };
    const r1 = withMax(reg(at(1000)), 2), h = withMax(hb("online", 5, at(2000)), 7), r2 = withMax(reg(at(3000)), 3);
    const live = foldAll([r1, h, r2]);
    const rebuilt = foldAll([r1, r2, h]);
    expect(live?.maxJobs).toBe(3);
    expect(rebuilt).toEqual(live);
    // A heartbeat after the registration is the newer word.
    const h2 = withMax(hb("online", 5, at(4000)), 5);
    expect(foldAll([r1, h, r2, h2])?.maxJobs).toBe(5);
    expect(foldAll([r1, r2, h, h2])).toEqual(foldAll([r1, h, r2, h2]));
  });
});

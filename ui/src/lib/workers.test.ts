import { describe, expect, it } from "vitest";
import { createEvent, emptyWorker, evolveWorker, type WorkerView } from "@troupe/events";
import { countRetired, isRetired, selectWorkers, workerDto } from "./workers.ts";

const T0 = Date.parse("2026-01-15T10:00:00.000Z");
const at = (ms: number) => new Date(T0 + ms);

function registered(id: string, name: string, type = "puppeteer", ms = 0): WorkerView {
  return evolveWorker(undefined, createEvent("worker.registered", {
    workerId: id, instanceId: `i-${id}`, name, type, ip: "10.0.0.5", port: 3002, version: "1.0.0",
    capabilities: { maxConcurrentJobs: 4, memory: 8192, cpu: 4, supportedBrowsers: [{ name: "chromium", version: "120" }] },
  }, id, at(ms)));
}

function heartbeat(w: WorkerView, ms: number, cpu: number, currentJobs = 0): WorkerView {
  return evolveWorker(w, createEvent("worker.heartbeat", {
    workerId: w.id, instanceId: `i-${w.id}`, status: currentJobs ? "busy" : "online", currentJobs, maxConcurrentJobs: 4, jobIds: [],
    metrics: { memoryUsage: 1024, memoryTotal: 8192, cpuUsage: cpu, diskUsage: 40, networkUsage: 1.5, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
    performance: { successRate: 100, averageJobDuration: 0 },
  }, w.id, at(ms)));
}

describe("workerDto", () => {
  it("groups the view into the seed's shape: connection and performance", () => {
    const w = heartbeat(registered("wn-a", "Worker Node A"), 1000, 37.5, 2);
    const dto = workerDto(w, T0 + 2000, 90_000, undefined);
    expect(dto).toMatchObject({
      id: "wn-a", name: "Worker Node A", type: "puppeteer", status: "busy", currentJobs: 2, maxJobs: 4,
      connection: { ip: "10.0.0.5", port: 3002, lastSeen: at(1000).toISOString(), registeredAt: at(0).toISOString() },
      performance: { cpuUsage: 37.5, memoryUsage: 1024, memoryTotal: 8192, diskUsage: 40, networkUsage: 1.5, successRate: 0, jobsCompleted: 0, jobsFailed: 0 },
    });
    expect(dto.capabilities?.maxConcurrentJobs).toBe(4);
  });

  it("reports a worker not heard from past the window as suspect", () => {
    const w = heartbeat(registered("wn-a", "A"), 1000, 10);
    expect(workerDto(w, T0 + 1000 + 90_001, 90_000, undefined).status).toBe("suspect");
    expect(workerDto(w, T0 + 1000 + 89_000, 90_000, undefined).status).toBe("online");
  });

  it("has nulls, not missing keys, for a worker known only by id", () => {
    const dto = workerDto(emptyWorker("wn-x"), T0, 90_000, undefined);
    expect(dto.connection).toEqual({ ip: "", port: 0, lastSeen: null, registeredAt: null });
    expect(dto.capabilities).toBeNull();
  });

  it("adds the recent window's figures beside the all-time ones: null rate without attempts in the window", () => {
    const w = { ...heartbeat(registered("wn-a", "A"), 1000, 10), jobsCompleted: 10_000, jobsFailed: 4, successRate: 99.96 };
    const now = T0 + 30 * 60_000 + 5000;
    // Minutes 70 and 30 ago (the first out of the window), and the minute in progress.
    const recent = [[T0 - 40 * 60_000, 0, 100], [T0, 118, 4], [T0 + 30 * 60_000, 2, 0]] as const;
    expect(workerDto(w, now, 90_000, recent).performance).toMatchObject({
      successRate: 100, jobsCompleted: 10_000, jobsFailed: 4,
      recent: { windowMinutes: 60, from: new Date(T0 - 29 * 60_000).toISOString(), jobsCompleted: 120, jobsFailed: 4, successRate: 96.8 },
    });
    expect(workerDto(w, now, 90_000, undefined).performance.recent).toEqual({ windowMinutes: 60, from: new Date(T0 - 29 * 60_000).toISOString(), jobsCompleted: 0, jobsFailed: 0, successRate: null });
  });
});

describe("selectWorkers", () => {
  const ws = [
    heartbeat(registered("wn-b", "Bravo"), 1000, 80, 3),
    heartbeat(registered("wn-a", "Alpha", "playwright"), 1000, 20),
    registered("wn-c", "Charlie", "puppeteer", -200_000),
  ];
  const now = T0 + 2000;

  it("filters by status using the presence at now", () => {
    expect(selectWorkers(ws, { status: "suspect" }, now, 90_000).map((r) => r.worker.id)).toEqual(["wn-c"]);
    expect(selectWorkers(ws, { status: "busy" }, now, 90_000).map((r) => r.worker.id)).toEqual(["wn-b"]);
  });

  it("filters by type and searches names and ids case-insensitively", () => {
    expect(selectWorkers(ws, { type: "playwright" }, now, 90_000).map((r) => r.worker.id)).toEqual(["wn-a"]);
    expect(selectWorkers(ws, { search: "CHAR" }, now, 90_000).map((r) => r.worker.id)).toEqual(["wn-c"]);
    expect(selectWorkers(ws, { search: "wn-b" }, now, 90_000).map((r) => r.worker.id)).toEqual(["wn-b"]);
  });

  it("sorts by name, by cpu (highest first) and by status (busy before online before suspect)", () => {
    expect(selectWorkers(ws, { sort: "name" }, now, 90_000).map((r) => r.worker.name)).toEqual(["Alpha", "Bravo", "Charlie"]);
    expect(selectWorkers(ws, { sort: "cpu" }, now, 90_000).map((r) => r.worker.id)).toEqual(["wn-b", "wn-a", "wn-c"]);
    expect(selectWorkers(ws, { sort: "status" }, now, 90_000).map((r) => r.status)).toEqual(["busy", "online", "suspect"]);
  });
});

describe("selectWorkers by success rate", () => {
  it("sorts by the recent rate, best first, the all-time rate breaking ties; workers without attempts in the window last", () => {
    const now = T0 + 2000;
    const w = (id: string, successRate: number) => ({ ...registered(id, id), successRate, jobsCompleted: 1, jobsFailed: 1 });
    // All time, wn-old is the best and wn-now the worst; in the last hour it is the other way round.
    const ws = [w("wn-old", 99), w("wn-now", 10), w("wn-mid", 50), w("wn-idle", 80), w("wn-idle2", 90)];
    const recent = new Map<string, readonly (readonly [number, number, number])[]>([
      ["wn-old", [[T0, 1, 9]]], ["wn-now", [[T0, 10, 0]]], ["wn-mid", [[T0, 10, 0]], ], ["wn-idle", [[T0 - 3 * 3600_000, 5, 0]]],
    ]);
    expect(selectWorkers(ws, { sort: "successRate", recent: (id) => recent.get(id) }, now, 90_000).map((r) => r.worker.id))
      .toEqual(["wn-mid", "wn-now", "wn-old", "wn-idle2", "wn-idle"]);
  });
});

describe("selectWorkers row cache", () => {
  it("returns the same row object while a worker's view and status are unchanged", () => {
    const a = registered("wn-a", "A");
    const b = registered("wn-b", "B");
    const cache = new Map();
    const first = selectWorkers([a, b], {}, T0 + 1000, 90_000, cache);
    const b2 = heartbeat(b, 2000, 50);
    const second = selectWorkers([a, b2], {}, T0 + 2000, 90_000, cache);
    expect(second.find((r) => r.worker.id === "wn-a")).toBe(first.find((r) => r.worker.id === "wn-a"));
    expect(second.find((r) => r.worker.id === "wn-b")).not.toBe(first.find((r) => r.worker.id === "wn-b"));
  });
});

describe("retired workers", () => {
  const H = 3600_000;
  const lost = (id: string, lastSeenMs: number): WorkerView => {
    const w = heartbeat(registered(id, id), lastSeenMs, 5);
    return evolveWorker(w, createEvent("worker.lost", { workerId: id, lastSeen: at(lastSeenMs).toISOString(), epoch: 1, jobIds: [] }, "master", at(lastSeenMs + 60_000)));
  };
  const offline = (id: string, ms: number): WorkerView => evolveWorker(heartbeat(registered(id, id), ms, 5), createEvent("worker.deregistered", { workerId: id, instanceId: `i-${id}`, reason: "shutdown" }, id, at(ms)));
  const now = T0 + 30 * H;
  const ws = [
    heartbeat(registered("wn-live", "live"), 30 * H - 1000, 10),
    lost("wn-lost-old", 1000), // 30 h ago
    lost("wn-lost-new", 20 * H), // 10 h ago
    offline("wn-off-old", 2000),
    // A heartbeat-only row that never registered and went silent long ago (a made-up id).
    heartbeat(evolveWorker(undefined, createEvent("worker.heartbeat", {
      workerId: "wn-phantom", instanceId: "i-p", status: "online", currentJobs: 0, maxConcurrentJobs: 1, jobIds: [],
      metrics: { memoryUsage: 1, memoryTotal: 2, cpuUsage: 1, diskUsage: 1, networkUsage: 0, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
      performance: { successRate: 0, averageJobDuration: 0 },
    }, "wn-phantom", at(0))), 0, 1),
  ];

  it("is offline, lost or suspect and silent past the window; an online, a recently lost or a never-hiding setting is not", () => {
    const ids = (retireAfterMs: number) => ws.filter((w) => isRetired(w, selectWorkers([w], { showRetired: true }, now, 90_000)[0]!.status, now, retireAfterMs)).map((w) => w.id);
    expect(ids(24 * H)).toEqual(["wn-lost-old", "wn-off-old", "wn-phantom"]);
    expect(ids(5 * H)).toEqual(["wn-lost-old", "wn-lost-new", "wn-off-old", "wn-phantom"]);
    expect(ids(0)).toEqual([]);
    expect(countRetired(ws, now, 90_000, 24 * H)).toBe(3);
    expect(countRetired(ws, now, 90_000, 0)).toBe(0);
  });

  it("leaves the list unless asked for; filters and sorting still apply to them", () => {
    const list = (q: Parameters<typeof selectWorkers>[1]) => selectWorkers(ws, { sort: "name", retireAfterMs: 24 * H, ...q }, now, 90_000).map((r) => r.worker.id);
    expect(list({})).toEqual(["wn-live", "wn-lost-new"]);
    expect(list({ showRetired: true })).toEqual(["wn-live", "wn-lost-new", "wn-lost-old", "wn-off-old", "wn-phantom"]);
    expect(list({ showRetired: true, status: "offline" })).toEqual(["wn-off-old"]);
    expect(list({ status: "offline" })).toEqual([]);
    // Without a window (older callers), nothing is hidden.
    expect(selectWorkers(ws, {}, now, 90_000)).toHaveLength(5);
  });
});

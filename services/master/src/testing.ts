import { createEvent, type EventData, type EventOf, type EventType, type TroupeEvent } from "@troupe/events";
import { applyEvent, type MasterState } from "./state.ts";

/** Builds a log in memory for the pure modules' unit tests: events with increasing times and sequences. */
export function logBuilder(s: MasterState, startMs = Date.parse("2026-01-01T00:00:00Z")) {
  let seq = 0;
  let now = startMs;
  return {
    get now() {
      return now;
    },
    advance(ms: number) {
      now += ms;
    },
    add<T extends EventType>(type: T, data: EventData<T>, source = "test") {
      const e = createEvent(type, data, source, new Date(now)) as TroupeEvent;
      seq++;
      const subject = type === "worker.heartbeat" ? `troupe.hb.${(data as { workerId: string }).workerId}` : `troupe.evt.${type.split(".")[0]}.${(data as { jobId?: string; workerId?: string }).jobId ?? (data as { workerId: string }).workerId}.${type.split(".")[1]}`;
      return applyEvent(s, e, { seq, subject, timeMs: now });
    },
  };
}

export const SPEC = { url: "https://example.com", priority: 5, maxAttempts: 3, timeoutMs: 60_000 };
export const caps = (slots: number, browsers = ["chromium"]) => ({ maxConcurrentJobs: slots, memory: 1024, cpu: 2, supportedBrowsers: browsers.map((name) => ({ name, version: "1" })) });
export const registration = (workerId: string, slots = 2, browsers?: string[]) => ({ workerId, instanceId: `i-${workerId}`, name: workerId, type: "fake", ip: "127.0.0.1", port: 0, version: "1", capabilities: caps(slots, browsers) });

/** A worker.heartbeat of a worker process for applyHeartbeat. */
export const heartbeat = (workerId: string, instanceId: string, status: "online" | "busy" | "draining" = "online") => createEvent("worker.heartbeat", {
  workerId, instanceId, status, currentJobs: 0, maxConcurrentJobs: 2, jobIds: [],
  metrics: { memoryUsage: 1, cpuUsage: 1, diskUsage: 1, networkUsage: 0, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
  performance: { successRate: 100, averageJobDuration: 0 },
}, workerId) as EventOf<"worker.heartbeat">;

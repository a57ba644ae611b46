import { describe, expect, it } from "vitest";
import { newCounters, renderMetrics } from "./metrics.ts";
import { emptyState } from "./state.ts";
import { logBuilder, registration } from "./testing.ts";

const liveness = { heartbeatIntervalMs: 1000 };
const workers = (text: string) => Object.fromEntries([...text.matchAll(/^troupe_master_workers\{status="(\w+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));

describe("renderMetrics", () => {
  it("counts a worker lost only as the master would judge it: silence before its evidence window (its own stall, a reconnect) is none", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("worker.registered", registration("w1"));
    const render = (nowMs: number, seeingSinceMs?: number) => workers(renderMetrics(s, newCounters(), { leader: true, epoch: 1, nowMs, ...(seeingSinceMs !== undefined ? { seeingSinceMs } : {}), liveness, lagMs: 0, heartbeats: 0 }));
    expect(render(log.now + 500)).toMatchObject({ online: 1, suspect: 0, lost: 0 });
    expect(render(log.now + 2500)).toMatchObject({ online: 0, suspect: 1, lost: 0 });
    expect(render(log.now + 5000)).toMatchObject({ online: 0, suspect: 0, lost: 1 });
    // The master did not run (or could not see the log) until 4.5 s: 0.5 s of silence counts.
    expect(render(log.now + 5000, log.now + 4500)).toMatchObject({ online: 1, suspect: 0, lost: 0 });
    expect(render(log.now + 7000, log.now + 4500)).toMatchObject({ online: 0, suspect: 1, lost: 0 });
  });
});

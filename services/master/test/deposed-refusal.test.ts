import { Kvm } from "@nats-io/kv";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, describe, expect, it } from "vitest";
import type { RunningMaster } from "../src/main.ts";
import { fakeWorker, jobIdOf, masterIn, readLog, submit } from "./helpers.ts";

// Found by a soak (2026-12-01): the leader was paused (SIGSTOP) for longer than its lease while an assignment request
// was in flight; a standby took over; on SIGCONT the request's timeout fired before the worker's answer (waiting in the
// socket) was read, and the deposed master appended `job.requeued {reason: worker-refused}` with its old epoch (and sent
// the worker a cancel for the attempt it had accepted). The job had completed 17 ms earlier, so the fold rejected it;
// a job still running would have had its running attempt taken away: the epoch fence does not stop it, because the
// new leader had decided nothing about that job yet (its epoch is still the old leader's). askAndSettle → apply
// (master.ts) appended after the worker's answer without asking whether this master still leads with that epoch.
let nats: TestNats | undefined;
const stops: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const s of stops.reverse()) await s().catch(() => {});
  await nats?.stop();
});

describe("a master deposed while it waits for a worker's answer to an assignment", () => {
  it("appends no decision once it no longer leads", async () => {
    nats = await startTestNats({ init: true });
    const m: RunningMaster = await masterIn(nats, "m-deposed", { leaderLeaseMs: 2000, assignTimeoutMs: 2500 });
    stops.push(() => m.stop());
    await waitFor("m-deposed to lead", () => m.master.isLeader, 20_000);
    let asked!: () => void;
    const askedP = new Promise<void>((r) => (asked = r));
    let answer!: () => void;
    const answerP = new Promise<void>((r) => (answer = r));
    const w = await fakeWorker(nats, { id: "wn-slow-answer", behaviour: () => ({ kind: "hang" }), beforeAnswer: async () => { asked(); await answerP; } });
    stops.push(async () => { answer(); await w.stop(); });
    await waitFor("the master to know the worker", () => m.master.state.workers.get("wn-slow-answer")?.lifecycle === "online", 20_000);
    const ui = await nats.connect("ui");
    const id = jobIdOf(await submit(ui, { url: "https://example.com/", maxAttempts: 3 }));
    await askedP;
    // Another process takes the lease (what a standby does once the leader's lease lapsed, e.g. the leader paused):
    // the leader's next renewal is refused and it stops leading, while its request to the worker is still out.
    const kv = await new Kvm(await nats.connect("master")).open("troupe-master");
    await kv.put("leader", JSON.stringify({ holder: "m-intruder", expiresAtMs: Date.now() + 60_000, token: "intruder", leaseMs: 60_000 }));
    await waitFor("m-deposed to stop leading", () => !m.master.isLeader, 10_000);
    // Deposed before its request timed out: what follows the timeout is a deposed master's doing (else the test proves nothing).
    expect(m.master.counters.assignTimeouts).toBe(0);
    const lostAt = Date.now();
    // The request times out meanwhile (2.5 s after it was sent); the assignment is over once what followed it is stored.
    await waitFor("the assignment request to time out and be settled", () => m.master.counters.assignTimeouts >= 1 && m.master.assignmentsInFlight === 0, 20_000);
    const log = await readLog(ui);
    const late = log.filter((e) => e.event.source === "m-deposed" && e.event.type !== "job.submitted" && e.storedMs > lostAt - 50);
    expect(late.map((e) => `${e.event.type} ${"jobId" in e.event.data ? e.event.data.jobId === id : ""} ${"reason" in e.event.data ? String(e.event.data.reason) : ""}`)).toEqual([]);
  }, 60_000);
});

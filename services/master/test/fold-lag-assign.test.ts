import type { JsMsg } from "@nats-io/jetstream";
import { waitFor } from "@troupe/tests/harness";
import { describe, expect, it } from "vitest";
import { lookupJob } from "../src/state.ts";
import { fakeWorker, jobIdOf, masterSuite, readLog, submit } from "./helpers.ts";

/**
 * The master asks a worker only once it has folded its own job.assigned, and waits for that at most
 * assignTimeoutMs. A chaos soak (2026-11-30, two loaded cores) saw the fold lag by more than that: the event
 * follower missed its idle heartbeats and was made again. The master then logged "assignment did not stand; not
 * asking the worker" although the assignment was in the log and stood, and the job sat assigned to a worker that
 * was never asked until its lease lapsed (there: its last attempt, so it was dead without having run it).
 */

const s = masterSuite("m-fold-lag", { assignTimeoutMs: 300, leaseMs: 60_000 });

describe("an assignment folded later than the master waits for it", () => {
  it("is still given to its worker once folded", async () => {
    const m = s.master.master as unknown as { onEventMessage: (msg: JsMsg) => void };
    const fold = m.onEventMessage.bind(m);
    // Hold the first job.assigned, and everything after it, for 1.5 s: a fold that lags behind the append's ack.
    let held: JsMsg[] | undefined;
    let delayed = false;
    m.onEventMessage = (msg) => {
      if (held) return void held.push(msg);
      if (!delayed && msg.subject.endsWith(".assigned")) {
        delayed = true;
        held = [msg];
        setTimeout(() => {
          const h = held ?? [];
          held = undefined;
          for (const x of h) fold(x);
        }, 1500);
        return;
      }
      fold(msg);
    };
    const worker = await fakeWorker(s.nats, { id: "w-fold-lag", slots: 1, behaviour: () => ({ kind: "complete", afterMs: 20 }) });
    s.workers.push(worker);
    const id = jobIdOf(await submit(s.ui, { url: "https://example.com/fold-lag" }));
    await waitFor("the job completed", () => lookupJob(s.master.master.state, id)?.status === "completed", 15_000, 50);
    expect(delayed).toBe(true);
    const log = await readLog(s.ui);
    expect(log.filter((l) => l.event.type === "job.requeued")).toEqual([]);
    expect(worker.accepted.filter((a) => a.jobId === id)).toHaveLength(1);
  }, 30_000);
});

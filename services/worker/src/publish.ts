import type { JetStreamClient } from "@nats-io/jetstream";
import type { Subjects, TroupeEvent } from "@troupe/events";
import { publishEvent, type Logger } from "@troupe/events/node";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Appends an event, retrying with backoff while NATS or JetStream is away
 * (after a restart JetStream times out for a while). The event id is the
 * Nats-Msg-Id, so a retry of a publish that did land is dropped as a duplicate.
 * Gives up after `deadlineMs` and throws with the last error.
 */
export async function publishReliably(js: JetStreamClient, event: TroupeEvent, o: { subjects: Subjects; log: Logger; deadlineMs?: number; stopped?: () => boolean }): Promise<void> {
  const deadline = Date.now() + (o.deadlineMs ?? 120_000);
  let wait = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      await publishEvent(js, event, { subjects: o.subjects, timeoutMs: 5000 });
      if (attempt > 1) o.log.info({ type: event.type, attempt }, "event published after retrying");
      return;
    } catch (e) {
      const msg = (e as Error).message;
      // An invalid event will not get better by retrying.
      if (/refusing to publish/.test(msg) || Date.now() + wait > deadline || o.stopped?.()) {
        throw new Error(`cannot publish ${event.type} (${event.id}) after ${attempt} attempt(s): ${msg}`, { cause: e });
      }
      // No responders: nothing stores these subjects — the streams were never created (or were deleted).
      const hint = /no responders/i.test(msg) ? { hint: "no stream stores this subject: run `troupe init` (the master also creates the streams when it starts)" } : {};
      o.log.warn({ type: event.type, attempt, err: msg, retryInMs: wait, ...hint }, "publish failed; retrying");
      await sleep(wait);
      wait = Math.min(wait * 2, 5000);
    }
  }
}

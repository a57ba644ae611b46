import { DeliverPolicy, jetstream, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { decodeEvent, evolveWorker, subjectsFor, type TroupeEvent, type WorkerView } from "@troupe/events";
import { storeNames } from "@troupe/events/node";

/**
 * The workers as their last registration, lifecycle event and heartbeat say, read from the streams (the last message
 * of each subject only): what a client with nothing but NATS can know of the fleet (`troupe submit --wait` asks why
 * its job waits). Invalid messages are skipped, as every reader does.
 */
export async function readFleet(nc: NatsConnection, prefix: string, timeoutMs = 5_000): Promise<WorkerView[]> {
  const s = subjectsFor(prefix);
  const names = storeNames(prefix);
  const [lifecycle, heartbeats] = await Promise.all([
    lastPerSubject(nc, names.events, `${prefix}.evt.worker.>`, timeoutMs),
    lastPerSubject(nc, names.heartbeats, s.allHeartbeats, timeoutMs),
  ]);
  const workers = new Map<string, WorkerView>();
  // Lifecycle events in their log order, then heartbeats: the view judges them by their times, not by the interleaving.
  for (const m of [...lifecycle, ...heartbeats]) {
    const d = decodeEvent(m.subject, m.data, { subjects: s });
    if (!d.ok || !d.value.type.startsWith("worker.")) continue;
    const e = d.value as Extract<TroupeEvent, { type: `worker.${string}` }>;
    workers.set(e.data.workerId, evolveWorker(workers.get(e.data.workerId), e));
  }
  return [...workers.values()];
}

/** The last stored message of every subject matching `filter`, in stream order; up to `timeoutMs` in all. */
async function lastPerSubject(nc: NatsConnection, stream: string, filter: string, timeoutMs: number): Promise<JsMsg[]> {
  // One filter subject as a string: a list needs nats-server 2.10.
  const js = jetstream(nc, { timeout: timeoutMs });
  const consumer = await js.consumers.get(stream, { filter_subjects: filter, deliver_policy: DeliverPolicy.LastPerSubject });
  const out: JsMsg[] = [];
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`reading ${stream} (${filter}) took over ${timeoutMs} ms`);
      // A short expiry ends an empty read (nothing stored) without waiting out the whole budget.
      const batch = await consumer.fetch({ max_messages: 1000, expires: Math.max(1000, Math.min(left, 2000)) });
      let got = 0;
      let last = false;
      for await (const m of batch) {
        got++;
        out.push(m);
        if (m.info.pending === 0) last = true;
      }
      if (last) return out;
      // An empty read is the end only when nothing is stored: under load a fetch can expire before its first message.
      if (got === 0 && out.length === 0 && !(await storedUnder(js, stream, filter))) return out;
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}

async function storedUnder(js: JetStreamClient, stream: string, filter: string): Promise<boolean> {
  const info = await (await js.jetstreamManager()).streams.info(stream, { subjects_filter: filter });
  return Object.keys(info.state.subjects ?? {}).length > 0;
}

import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { encodeCheckedEvent } from "../codec.ts";
import type { TroupeEvent } from "../events.ts";
import { subjects as defaultSubjects, type Subjects } from "../subjects.ts";
import { appendEvent, InvalidEventError, Requests } from "./publish-pipeline.ts";

export * from "./publish-pipeline.ts";

export interface PublishEventOptions {
  subjects?: Subjects;
  /** Guard: append only if the last message on this subject has this sequence (0 = none yet). */
  expectLastSubjectSequence?: number;
  timeoutMs?: number;
}

/** One `Requests` per connection, made on its first publishEvent. */
const perConnection = new WeakMap<NatsConnection, Requests>();

function requestsFor(js: JetStreamClient): Requests | undefined {
  // nats.js's JetStream client keeps its connection as `nc`; publish goes straight to the subject, so the connection is all it needs.
  const nc = (js as JetStreamClient & { nc?: NatsConnection }).nc;
  if (!nc || typeof nc.subscribe !== "function" || nc.isClosed()) return undefined;
  let r = perConnection.get(nc);
  if (!r) perConnection.set(nc, (r = new Requests(nc)));
  return r;
}

/**
 * Validates and appends an event to its stream. The event id is sent as
 * Nats-Msg-Id, so a retried publish inside the duplicate window is dropped by
 * JetStream (the ack then says `duplicate: true`). Goes through the
 * connection's `Requests` (no timer, deferred or error object per publish,
 * see publish-pipeline.ts): the same bytes, headers and acknowledgement as
 * `js.publish`.
 */
export async function publishEvent(js: JetStreamClient, event: TroupeEvent, o: PublishEventOptions = {}): Promise<PubAck> {
  const r = requestsFor(js);
  if (r) return appendEvent(r, event, { timeoutMs: o.timeoutMs ?? js.getOptions().timeout ?? 5000, ...(o.subjects ? { subjects: o.subjects } : {}), ...(o.expectLastSubjectSequence !== undefined ? { expectLastSubjectSequence: o.expectLastSubjectSequence } : {}) });
  // No reachable connection (another JetStream client implementation, or a closed one): nats.js's own publish, same checks.
  const c = encodeCheckedEvent(event, o.subjects ?? defaultSubjects);
  if (!c.ok) throw new InvalidEventError(event.type, c.error);
  return js.publish(c.subject, c.bytes, {
    msgID: event.id,
    timeout: o.timeoutMs,
    ...(o.expectLastSubjectSequence !== undefined ? { expect: { lastSubjectSequence: o.expectLastSubjectSequence } } : {}),
  });
}

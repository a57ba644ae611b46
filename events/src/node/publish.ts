import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import { encodeCheckedEvent } from "../codec.ts";
import type { TroupeEvent } from "../events.ts";
import type { Subjects } from "../subjects.ts";
import { subjects as defaultSubjects } from "../subjects.ts";

export interface PublishEventOptions {
  subjects?: Subjects;
  /** Guard: append only if the last message on this subject has this sequence (0 = none yet). */
  expectLastSubjectSequence?: number;
  timeoutMs?: number;
}

/**
 * Validates and appends an event to its stream. The event id is sent as
 * Nats-Msg-Id, so a retried publish inside the duplicate window is dropped by
 * JetStream (the ack then says `duplicate: true`).
 */
export async function publishEvent(js: JetStreamClient, event: TroupeEvent, o: PublishEventOptions = {}): Promise<PubAck> {
  const s = o.subjects ?? defaultSubjects;
  const c = encodeCheckedEvent(event, s);
  if (!c.ok) throw new Error(`refusing to publish an invalid ${event.type} event: ${c.error.path || "(body)"}: ${c.error.message}`);
  return js.publish(c.subject, c.bytes, {
    msgID: event.id,
    timeout: o.timeoutMs,
    ...(o.expectLastSubjectSequence !== undefined ? { expect: { lastSubjectSequence: o.expectLastSubjectSequence } } : {}),
  });
}
export * from "./publish-pipeline.ts";

import { randomBytes } from "node:crypto";
import { JetStreamApiError, type ApiError, type PubAck } from "@nats-io/jetstream";
import { createInbox, headers as natsHeaders, NoRespondersError, TimeoutError, type Msg, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { encodeCheckedEvent, type DecodeError } from "../codec.ts";
import type { TroupeEvent } from "../events.ts";
import type { Subjects } from "../subjects.ts";
import { subjects as defaultSubjects } from "../subjects.ts";

/** Header of a master → worker assignment naming the worker process (instance) it is for. */
export const INSTANCE_HEADER = "Troupe-Instance";

/**
 * Request-reply for a hot path. nats.js's `request` (and `js.publish`, which
 * is a request) costs a timer, a deferred and — even with `noAsyncTraces` — a
 * freshly constructed `RequestError` with its stack trace per call (it rejects
 * the already-settled promise on clean-up). Measured in the dispatch
 * benchmark, that was about a tenth of the master's CPU. Here every reply
 * arrives on one wildcard inbox subscription (a callback, so a socket read's
 * replies are handled in one turn), a token maps it to its caller, and one
 * sweep timer per instance expires requests that got no answer.
 *
 * Same outcomes as `nc.request`: the reply, a `NoRespondersError` when nobody
 * serves the subject, a `TimeoutError` after `timeoutMs`.
 */
export class Requests {
  private readonly prefix: string;
  private readonly sub: Subscription;
  private readonly pending = new Map<string, Waiting>();
  private next = 0;
  private sweeper?: NodeJS.Timeout;
  private closed = false;

  constructor(readonly nc: NatsConnection, private readonly sweepMs = 50) {
    // The connection's inbox prefix: a worker's own NATS user may subscribe only under its own (worker-users.ts).
    this.prefix = `${createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix)}.`;
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: (err, m) => (err ? this.failAll(err) : this.onReply(m)) });
    // As nats.js does for its requests: a closed connection fails what is still waiting at once.
    void nc.closed().then(() => this.close());
  }

  private suffixes = "";
  private suffixAt = 0;

  /** 11 random base64url characters (66 bits), cut from a batch: one call for random bytes per 256 requests. */
  private randomSuffix(): string {
    if (this.suffixAt + 11 > this.suffixes.length) {
      this.suffixes = randomBytes(2112).toString("base64url");
      this.suffixAt = 0;
    }
    return this.suffixes.slice(this.suffixAt, (this.suffixAt += 11));
  }

  /** Requests in flight. */
  get size(): number {
    return this.pending.size;
  }

  request(subject: string, data: Uint8Array | string, o: { timeoutMs: number; headers?: ReturnType<typeof natsHeaders> }): Promise<Msg> {
    if (this.closed) return Promise.reject(new Error("requests closed"));
    // Unique (the counter) and unguessable (66 random bits): a client that saw one reply subject of ours (a worker,
    // in the assignments it gets) could otherwise make JetStream deliver an ack to the next one, by publishing
    // on a subject it may use with that as its reply-to (nats-server checks the subject, not the reply-to).
    const token = (this.next++).toString(36) + this.randomSuffix();
    return new Promise<Msg>((resolve, reject) => {
      this.pending.set(token, { resolve, reject, deadline: Date.now() + o.timeoutMs, subject });
      try {
        this.nc.publish(subject, data, { reply: this.prefix + token, ...(o.headers ? { headers: o.headers } : {}) });
      } catch (e) {
        this.pending.delete(token);
        reject(e as Error);
        return;
      }
      this.sweeper ??= setInterval(() => this.sweep(), this.sweepMs);
    });
  }

  /** Stops listening; requests still waiting fail. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.nc.isClosed()) this.sub.unsubscribe();
    this.failAll(new Error("requests closed"));
  }

  private onReply(m: Msg) {
    const token = m.subject.slice(this.prefix.length);
    const w = this.pending.get(token);
    if (!w) return; // late answer to a request that timed out
    this.pending.delete(token);
    if (m.data.length === 0 && m.headers?.code === 503) w.reject(new NoRespondersError(w.subject));
    else w.resolve(m);
  }

  private sweep() {
    const now = Date.now();
    for (const [token, w] of this.pending) {
      if (w.deadline > now) continue;
      this.pending.delete(token);
      w.reject(new TimeoutError());
    }
    if (this.pending.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private failAll(err: Error) {
    for (const w of this.pending.values()) w.reject(err);
    this.pending.clear();
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}

interface Waiting {
  resolve: (m: Msg) => void;
  reject: (e: Error) => void;
  deadline: number;
  subject: string;
}

export interface AppendOptions {
  /** Guard: append only if the last message on this subject has this sequence (0 = none yet). */
  expectLastSubjectSequence?: number;
  timeoutMs?: number;
}

const decoder = new TextDecoder();

/** A JetStream publish acknowledgement, or the API error it carries (as nats.js throws it). */
export function parsePubAck(m: Msg): PubAck {
  const v = JSON.parse(decoder.decode(m.data)) as Partial<PubAck> & { error?: ApiError };
  if (v.error) throw new JetStreamApiError(v.error);
  if (!v.stream || typeof v.seq !== "number") throw new Error("invalid JetStream ack response");
  return { ...v, duplicate: v.duplicate ?? false } as PubAck;
}

/** An event this process built and would not publish: the contract refuses it (too large, a field out of range). */
export class InvalidEventError extends Error {
  override name = "InvalidEventError";
  constructor(readonly type: string, readonly error: DecodeError) {
    super(`refusing to publish an invalid ${type} event: ${error.path || "(body)"}: ${error.message}`);
  }
}

export interface AppendEventOptions extends AppendOptions {
  subjects?: Subjects;
}

/**
 * publishEvent over `Requests`: validates and encodes the event, sends its id
 * as Nats-Msg-Id (and the expected-last-subject-sequence guard when given),
 * and resolves with the JetStream acknowledgement.
 */
export async function appendEvent(requests: Requests, event: TroupeEvent, o: AppendEventOptions = {}): Promise<PubAck> {
  const c = encodeCheckedEvent(event, o.subjects ?? defaultSubjects);
  if (!c.ok) throw new InvalidEventError(event.type, c.error);
  const h = natsHeaders();
  h.set("Nats-Msg-Id", event.id);
  if (o.expectLastSubjectSequence !== undefined) h.set("Nats-Expected-Last-Subject-Sequence", String(o.expectLastSubjectSequence));
  return parsePubAck(await requests.request(c.subject, c.bytes, { timeoutMs: o.timeoutMs ?? 5000, headers: h }));
}

/** appendEvent with its own `Requests` and a fixed subject prefix. Many appends can be in flight at once. */
export class EventAppender {
  readonly requests: Requests;

  constructor(nc: NatsConnection, private readonly o: { subjects?: Subjects; timeoutMs?: number } = {}) {
    this.requests = new Requests(nc);
  }

  append(event: TroupeEvent, o: AppendOptions = {}): Promise<PubAck> {
    return appendEvent(this.requests, event, { ...this.o, ...o });
  }

  close(): void {
    this.requests.close();
  }
}

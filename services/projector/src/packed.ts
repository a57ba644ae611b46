import { decodeEvent, minuteOf, notAfterPublished, subjectOf, type DecodeError, type Decoded, type Subjects, type TroupeEvent } from "@troupe/events";
import type { HeartbeatSample } from "./fold.ts";
import type { RawMessage } from "./writer.ts";

/**
 * A rebuild batch as it travels from the reading thread to the writer thread:
 * a few transferable arrays (moved, not copied) instead of one object per
 * message. The reading thread packs each message as it arrives
 * (`BatchPacker`) and either validates it there (`decodeEvent`; the writer
 * thread then only parses valid bodies) or leaves the whole `decodeEvent` to
 * the writer thread, which then parses each body once instead of twice; the
 * writer thread folds the batch through `unpack`.
 */

export interface PackedBatch {
  stream: string;
  /** Messages in the batch. */
  count: number;
  seqs: Float64Array;
  publishedMs: Float64Array;
  data: Uint8Array;
  /** Body i is data[offsets[i], offsets[i + 1]). */
  offsets: Uint32Array;
  /**
   * Validated on the reading thread: every body was checked with
   * `decodeEvent` there, these are the ones it rejected (index in the batch,
   * subject and the error); the rest are valid UTF-8 JSON of a valid event,
   * which the writer thread only has to parse, and arrived on the subject their
   * event belongs on (`subjectOf`). Otherwise: every message's subject, joined
   * with "\n" (a subject has none), for `decodeEvent` on the writer thread.
   */
  checked: { invalid: { i: number; subject: string; error: DecodeError }[] } | { subjects: string };
  /**
   * Validated on the reading thread only: the heartbeats whose worker view a
   * later heartbeat of the same worker in this batch overwrites (nothing but
   * heartbeats of other workers in between), with what the fold still needs of
   * them (`HeartbeatSample`), so the writer thread does not parse them. Most
   * of a heartbeat stream: 1,000 workers beat ~20 times each per 20,000-event batch.
   */
  samples?: { idx: Uint32Array; minute: Float64Array; cpu: Float64Array; mem: Float64Array; workers: string };
}

/** Heartbeat fields whose absence keeps the previous value in the worker view (events/src/views/worker.ts): bits of a mask. */
export const STICKY_MEMORY_TOTAL = 1;
export const STICKY_HEARTBEAT_MS = 2;

/** The sticky fields a heartbeat sets, as a mask of the STICKY_* bits. */
export function stickyMask(hb: { heartbeatMs?: number; metrics: { memoryTotal?: number } }): number {
  return (hb.metrics.memoryTotal !== undefined ? STICKY_MEMORY_TOTAL : 0) | (hb.heartbeatMs !== undefined ? STICKY_HEARTBEAT_MS : 0);
}

/**
 * Which of a batch's heartbeats only need their series sample folded: those
 * followed, before any other valid event, by heartbeats of the same worker
 * that set every field this one sets — a heartbeat overwrites every field of
 * the worker view it sets, except the sticky ones (`memoryTotal`,
 * `heartbeatMs`), which an absent value leaves as they were. The first `n`
 * valid events of a batch in order: a heartbeat's worker (null: any other
 * valid event, a barrier) and the sticky fields it sets (stickyMask; a
 * boolean means memoryTotal). A worker view keeps the latest heartbeat of each
 * process (events/src/views/worker.ts, `heartbeats`), so what overwrites a heartbeat is a
 * later one of the same process: pass `workerHeartbeatKey`s, not bare worker ids. Pure; 1 = overwritten.
 */
export function overwrittenHeartbeats(workers: readonly (string | null)[], sticky: ArrayLike<number | boolean>, n = workers.length): Uint8Array {
  const out = new Uint8Array(n);
  // Per key, seen later in the batch: the sticky fields those later heartbeats set between them.
  let later = new Map<string, number>();
  for (let k = n - 1; k >= 0; k--) {
    const worker = workers[k] as string | null;
    if (worker === null) {
      later = new Map();
      continue;
    }
    const mine = Number(sticky[k]);
    const laterSet = later.get(worker);
    if (laterSet !== undefined && (mine & ~laterSet) === 0) out[k] = 1;
    later.set(worker, (laterSet ?? 0) | mine);
  }
  return out;
}

/** What identifies the part of a worker view a heartbeat overwrites: its worker and its process (ids hold no space). */
export const workerHeartbeatKey = (workerId: string, instanceId: string) => `${workerId} ${instanceId}`;

/**
 * Builds a batch one message at a time: validates it and copies what the
 * writer thread needs (sequence, publish time, body) into typed arrays, so the
 * message itself can be collected at once instead of living (and being copied
 * by the garbage collector) until the batch is full.
 */
export class BatchPacker {
  private seqs: Float64Array;
  private publishedMs: Float64Array;
  private offsets: Uint32Array;
  private data: Uint8Array;
  private invalid: { i: number; subject: string; error: DecodeError }[] = [];
  private subjectList: string[] = [];
  /**
   * Valid events seen while validating here, in order (`hbN` of them): a
   * heartbeat's worker and sample, null for anything else (a barrier). In
   * arrays rather than an object each: a batch's worth of small objects
   * lives until the batch is packed, and the garbage collector copied them.
   */
  private hbN = 0;
  private hbWorker: (string | null)[] = [];
  private hbKey: (string | null)[] = [];
  private readonly hbIndex: Uint32Array;
  private readonly hbSticky: Uint8Array;
  private readonly hbMinute: Float64Array;
  private readonly hbCpu: Float64Array;
  private readonly hbMem: Float64Array;
  private n = 0;
  private at = 0;

  private validating: boolean;

  /** `validate`: run `decodeEvent` here (else on the writer thread); `setValidate` changes it for the next batch. */
  constructor(readonly stream: string, private readonly subjects: Subjects, private readonly max: number, private validate = true, private bytesHint = max * 512) {
    this.validating = validate;
    this.seqs = new Float64Array(max);
    this.publishedMs = new Float64Array(max);
    this.offsets = new Uint32Array(max + 1);
    this.data = new Uint8Array(bytesHint);
    this.hbIndex = new Uint32Array(max);
    this.hbSticky = new Uint8Array(max);
    this.hbMinute = new Float64Array(max);
    this.hbCpu = new Float64Array(max);
    this.hbMem = new Float64Array(max);
  }

  /** Where the batch after the current one is validated (the current one keeps its choice). */
  setValidate(validate: boolean): void {
    this.validate = validate;
    if (this.n === 0) this.validating = validate;
  }

  get size(): number {
    return this.n;
  }

  get full(): boolean {
    return this.n >= this.max;
  }

  /** Appends one message (`seq` and `publishedMs` as the stream delivered it), validating it when the packer does. */
  add(subject: string, body: Uint8Array, seq: number, publishedMs: number): void {
    if (this.n >= this.max) throw new Error(`batch of ${this.stream} is full (${this.max})`);
    const i = this.n++;
    if (this.validating) {
      const d = decodeEvent(subject, body, { subjects: this.subjects });
      if (!d.ok) this.invalid.push({ i, subject, error: d.error });
      else {
        const k = this.hbN++;
        this.hbIndex[k] = i;
        if (d.value.type === "worker.heartbeat") {
          const hb = d.value.data;
          this.hbWorker[k] = hb.workerId;
          this.hbKey[k] = workerHeartbeatKey(hb.workerId, hb.instanceId);
          this.hbSticky[k] = stickyMask(hb);
          this.hbMinute[k] = minuteOf(notAfterPublished(d.value, publishedMs).time); // as the writer folds it
          this.hbCpu[k] = hb.metrics.cpuUsage;
          this.hbMem[k] = hb.metrics.memoryUsage;
        } else {
          this.hbWorker[k] = null;
          this.hbKey[k] = null;
        }
      }
    } else this.subjectList.push(subject);
    this.seqs[i] = seq;
    this.publishedMs[i] = publishedMs;
    this.offsets[i] = this.at;
    if (this.at + body.length > this.data.length) {
      const grown = new Uint8Array(Math.max(this.data.length * 2, this.at + body.length));
      grown.set(this.data.subarray(0, this.at));
      this.data = grown;
    }
    this.data.set(body, this.at);
    this.at += body.length;
  }

  private samples(): NonNullable<PackedBatch["samples"]> {
    const skip = overwrittenHeartbeats(this.hbKey, this.hbSticky, this.hbN);
    let count = 0;
    for (let k = 0; k < this.hbN; k++) count += skip[k] as number;
    const out = { idx: new Uint32Array(count), minute: new Float64Array(count), cpu: new Float64Array(count), mem: new Float64Array(count), workers: "" };
    const workers: string[] = new Array(count);
    for (let k = 0, j = 0; k < this.hbN; k++) {
      if (!skip[k]) continue;
      out.idx[j] = this.hbIndex[k] as number;
      out.minute[j] = this.hbMinute[k] as number;
      out.cpu[j] = this.hbCpu[k] as number;
      out.mem[j] = this.hbMem[k] as number;
      workers[j++] = this.hbWorker[k] as string;
    }
    out.workers = workers.join("\n");
    return out;
  }

  /** The batch so far (its arrays change hands); the packer starts an empty one. */
  take(): PackedBatch {
    const n = this.n;
    this.offsets[n] = this.at;
    const checked = this.validating ? { invalid: this.invalid } : { subjects: this.subjectList.join("\n") };
    const b: PackedBatch = { stream: this.stream, count: n, seqs: this.seqs, publishedMs: this.publishedMs, data: this.data, offsets: this.offsets, checked };
    if (this.validating && this.hbN > 0) b.samples = this.samples();
    // The next batch's body buffer: as big as this one needed.
    this.bytesHint = Math.max(this.bytesHint, this.at);
    this.seqs = new Float64Array(this.max);
    this.publishedMs = new Float64Array(this.max);
    this.offsets = new Uint32Array(this.max + 1);
    this.data = new Uint8Array(this.bytesHint);
    this.invalid = [];
    this.subjectList = [];
    this.hbN = 0;
    this.hbWorker = [];
    this.hbKey = [];
    this.validating = this.validate;
    this.n = 0;
    this.at = 0;
    return b;
  }
}

/**
 * One message of a packed batch, decoded only when the fold reaches it (so a
 * batch's events do not all live at once).
 */
class PackedMessage implements RawMessage {
  constructor(private readonly b: PackedBatch, private readonly text: Buffer, private readonly i: number, private readonly s: Subjects, private readonly error: DecodeError | undefined, private readonly knownSubject: string | undefined, readonly sample?: HeartbeatSample) {}

  get seq(): number {
    return this.b.seqs[this.i] as number;
  }

  get publishedMs(): number {
    return this.b.publishedMs[this.i] as number;
  }

  get data(): Uint8Array {
    return this.b.data.subarray(this.b.offsets[this.i], this.b.offsets[this.i + 1]);
  }

  get decoded(): Decoded<TroupeEvent> {
    if (this.error) return { ok: false, error: this.error };
    // Not validated yet: all of decodeEvent, here.
    if ("subjects" in this.b.checked) return decodeEvent(this.knownSubject as string, this.data, { subjects: this.s });
    // Validated on the reading thread: parsing is all decodeEvent would add.
    return { ok: true, value: JSON.parse(this.text.toString("utf8", this.b.offsets[this.i], this.b.offsets[this.i + 1])) as TroupeEvent };
  }

  get subject(): string {
    if (this.knownSubject !== undefined) return this.knownSubject;
    // A valid event arrived on the subject it belongs on; only asked for a skipped (fenced-off) one, to log it.
    return subjectOf(JSON.parse(this.text.toString("utf8", this.b.offsets[this.i], this.b.offsets[this.i + 1])) as TroupeEvent, this.s);
  }
}

/** The batch's messages, for `ReadModelWriter.applyBatch` on the writer thread. */
export function unpack(b: PackedBatch, s: Subjects): RawMessage[] {
  const text = Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  const out: RawMessage[] = new Array(b.count);
  if ("subjects" in b.checked) {
    const subjects = b.count === 0 ? [] : b.checked.subjects.split("\n");
    for (let i = 0; i < b.count; i++) out[i] = new PackedMessage(b, text, i, s, undefined, subjects[i]);
    return out;
  }
  const invalid = new Map(b.checked.invalid.map((x) => [x.i, x]));
  for (let i = 0; i < b.count; i++) {
    const bad = invalid.get(i);
    out[i] = new PackedMessage(b, text, i, s, bad?.error, bad?.subject);
  }
  const sm = b.samples;
  if (sm && sm.idx.length > 0) {
    const workers = sm.workers.split("\n");
    for (let k = 0; k < sm.idx.length; k++) {
      const i = sm.idx[k] as number;
      out[i] = new PackedMessage(b, text, i, s, undefined, undefined, { workerId: workers[k] as string, minute: sm.minute[k] as number, cpuUsage: sm.cpu[k] as number, memoryUsage: sm.mem[k] as number });
    }
  }
  return out;
}

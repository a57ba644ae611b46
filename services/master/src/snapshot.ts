import type { JobView, Rejection } from "@troupe/events";
import { emptyState, type FinishedJob, type MasterState, type WorkerLifecycle, type WorkerView } from "./state.ts";

/**
 * Snapshots of the master's state (pure: Maps and Sets ↔ JSON, no I/O).
 *
 * A snapshot holds everything folded from TROUPE_EVENTS up to `appliedSeq`.
 * Of a worker it keeps what the fold of the log reads back (`held`, browsers,
 * lifecycle, instance, slots, last seen); `cpu`, which only heartbeats set, is
 * left out and comes back from the heartbeat tail, re-read at every start.
 */

export const SNAPSHOT_FORMAT = "troupe-master-snapshot";
/** 2: no idempotency-key map (a keyed job's id derives from its key); a version 1 snapshot is refused and the log replayed. */
export const SNAPSHOT_VERSION = 2;

type Pairs<V> = [string, V][];

export interface SnapshotWorker {
  id: string;
  instanceId?: string;
  lifecycle: WorkerLifecycle;
  maxSlots: number;
  browsers: string[] | null;
  /** Absent in snapshots of older masters, and for workers without labels. */
  labels?: string[];
  /** Absent in snapshots of older masters, and for workers that take no attempt tokens. */
  tokens?: boolean;
  /** Absent in snapshots of older masters, and for workers that run no page-JavaScript steps. */
  scriptSteps?: boolean;
  lastSeenMs: number;
  held: string[];
  heartbeatMs?: number;
  /** Absent in snapshots of older masters (a resume's stale draining heartbeat is then judged by server time only). */
  registeredEventMs?: number;
}

export interface SnapshotState {
  appliedSeq: number;
  jobs: JobView[];
  finished: FinishedJob[];
  needSpec: string[];
  workers: SnapshotWorker[];
  subjectSeq: Pairs<number>;
  activityMs: Pairs<number>;
  attemptBase: Pairs<number>;
  refusedAttempts: Pairs<number>;
  assignedInstance: Pairs<string>;
  submitSeq: Pairs<number>;
  open: string[];
  rejected: Pairs<number>;
}

export interface Snapshot {
  format: typeof SNAPSHOT_FORMAT;
  version: typeof SNAPSHOT_VERSION;
  /** Subject prefix of the log it was folded from. */
  prefix: string;
  /** Master that wrote it, and when (informational). */
  writtenBy: string;
  writtenAt: string;
  state: SnapshotState;
}

/** The state in its JSON form (pure; the heartbeat-only `cpu` of workers is left out). */
export function encodeState(s: MasterState): SnapshotState {
  return {
    appliedSeq: s.appliedSeq,
    jobs: [...s.jobs.values()],
    finished: [...s.finished.values()],
    needSpec: [...s.needSpec],
    workers: [...s.workers.values()].map((w) => ({
      id: w.id, ...(w.instanceId !== undefined ? { instanceId: w.instanceId } : {}), lifecycle: w.lifecycle, maxSlots: w.maxSlots,
      browsers: w.browsers, ...(w.labels ? { labels: w.labels } : {}), ...(w.tokens ? { tokens: true } : {}), ...(w.scriptSteps ? { scriptSteps: true } : {}), lastSeenMs: w.lastSeenMs, held: [...w.held], ...(w.heartbeatMs !== undefined ? { heartbeatMs: w.heartbeatMs } : {}), ...(w.registeredEventMs !== undefined ? { registeredEventMs: w.registeredEventMs } : {}),
    })),
    subjectSeq: [...s.subjectSeq],
    activityMs: [...s.activityMs],
    attemptBase: [...s.attemptBase],
    refusedAttempts: [...s.refusedAttempts],
    assignedInstance: [...s.assignedInstance],
    submitSeq: [...s.submitSeq],
    open: [...s.open],
    rejected: [...s.rejected],
  };
}

export function encodeSnapshot(s: MasterState, meta: { prefix: string; writtenBy: string; writtenAt: string }): Uint8Array {
  const snap: Snapshot = { format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, ...meta, state: encodeState(s) };
  return new TextEncoder().encode(JSON.stringify(snap));
}

/**
 * The same bytes as `encodeSnapshot`, without blocking the leader for the
 * whole serialisation (~110 ms at 50,000 jobs, seconds at millions, against a
 * lease renewed every 3.3 s). The state is captured at once (`encodeState`:
 * arrays of references and copies of the small values, a few ms) and then
 * serialised `slice` entries at a time, awaiting `pause()` between slices.
 * The capture stays the state at `appliedSeq` while the fold goes on, because
 * the fold replaces job views and finished entries instead of changing them
 * (the one in-place change, a redriven job's spec read back from the log, only
 * fills in what the log already says).
 */
export async function encodeSnapshotSliced(
  s: MasterState,
  meta: { prefix: string; writtenBy: string; writtenAt: string },
  o: { slice?: number; pause?: () => Promise<void> } = {},
): Promise<Uint8Array> {
  const slice = o.slice ?? 2000;
  const pause = o.pause ?? (() => new Promise<void>((r) => setImmediate(r)));
  const state = encodeState(s);
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  let text = "";
  const emit = () => {
    if (text) chunks.push(enc.encode(text));
    text = "";
  };
  const head: Omit<Snapshot, "state"> = { format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, ...meta };
  // JSON.stringify of the whole object, written piece by piece: the head, then each key of the state in its order.
  text = JSON.stringify(head).slice(0, -1) + ',"state":{';
  let firstKey = true;
  for (const [key, value] of Object.entries(state) as [string, unknown][]) {
    text += (firstKey ? "" : ",") + JSON.stringify(key) + ":";
    firstKey = false;
    if (!Array.isArray(value) || value.length <= slice) {
      text += JSON.stringify(value);
      continue;
    }
    text += "[";
    for (let i = 0; i < value.length; i += slice) {
      const part = JSON.stringify(value.slice(i, i + slice));
      text += (i === 0 ? "" : ",") + part.slice(1, -1);
      emit();
      await pause();
    }
    text += "]";
  }
  text += "}}";
  emit();
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export type Decoded = { ok: true; state: MasterState; snapshot: Omit<Snapshot, "state"> } | { ok: false; error: string };

class Invalid extends Error {}

const fail = (what: string): never => {
  throw new Invalid(what);
};
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isSeq = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isStr = (v: unknown): v is string => typeof v === "string";

function arr(v: unknown, what: string): unknown[] {
  return Array.isArray(v) ? v : fail(`${what} is not an array`);
}
function strings(v: unknown, what: string): string[] {
  const a = arr(v, what);
  for (const x of a) if (!isStr(x)) fail(`${what} holds a non-string`);
  return a as string[];
}
function pairs<V>(v: unknown, what: string, ok: (x: unknown) => x is V): Map<string, V> {
  const m = new Map<string, V>();
  for (const p of arr(v, what)) {
    if (!Array.isArray(p) || p.length !== 2 || !isStr(p[0]) || !ok(p[1])) fail(`${what} holds an invalid entry`);
    m.set((p as [string, V])[0], (p as [string, V])[1]);
  }
  return m;
}

const LIFECYCLES = new Set<string>(["online", "draining", "offline", "lost"]);
const SETTLED = new Set<string>(["completed", "cancelled", "dead", "failed"]);
const FINISHED_SEQS = ["attempt", "epoch", "order", "assigned", "requeued", "cancelled", "dead"] as const;

function decodeState(v: unknown): MasterState {
  if (!isObj(v)) fail("state is not an object");
  const o = v as Record<string, unknown>;
  const s = emptyState();
  if (!isSeq(o.appliedSeq)) fail("appliedSeq is not a sequence");
  s.appliedSeq = o.appliedSeq as number;
  for (const j of arr(o.jobs, "jobs")) {
    if (!isObj(j) || !isStr(j.id) || !isStr(j.status) || !isObj(j.spec) || !isSeq(j.attempt) || !Array.isArray(j.history)) fail("jobs holds an invalid job");
    s.jobs.set((j as { id: string }).id, j as unknown as JobView);
  }
  for (const f of arr(o.finished, "finished")) {
    if (!isObj(f) || !isStr(f.id) || !isStr(f.status) || !SETTLED.has(f.status) || FINISHED_SEQS.some((k) => !isSeq(f[k])) || !(f.workerId === undefined || isStr(f.workerId))) {
      fail("finished holds an invalid entry");
    }
    const strays = (f as Record<string, unknown>).strays;
    if (strays !== undefined && (!Array.isArray(strays) || !strays.every((r: unknown) => isObj(r) && isStr(r.workerId) && isSeq(r.attempt)))) fail("finished holds invalid strays");
    const e = f as unknown as FinishedJob;
    // JSON drops an undefined workerId; the compact entry always has the key.
    s.finished.set(e.id, { ...e, workerId: e.workerId });
  }
  s.needSpec = new Set(strings(o.needSpec, "needSpec"));
  for (const w of arr(o.workers, "workers")) {
    if (!isObj(w) || !isStr(w.id) || !isStr(w.lifecycle) || !LIFECYCLES.has(w.lifecycle) || !isSeq(w.maxSlots) || !isNum(w.lastSeenMs)) fail("workers holds an invalid worker");
    const x = w as Record<string, unknown>;
    if (!(x.instanceId === undefined || isStr(x.instanceId))) fail("workers holds an invalid instanceId");
    const browsers = x.browsers === null ? null : strings(x.browsers, "worker browsers");
    const view: WorkerView = {
      id: x.id as string, lifecycle: x.lifecycle as WorkerLifecycle, maxSlots: x.maxSlots as number, browsers, cpu: 0,
      lastSeenMs: x.lastSeenMs as number, held: new Set(strings(x.held, "worker held")),
    };
    if (x.instanceId !== undefined) view.instanceId = x.instanceId as string;
    if (x.labels !== undefined) view.labels = strings(x.labels, "worker labels");
    if (x.tokens !== undefined) {
      if (x.tokens !== true) fail("workers holds an invalid tokens flag");
      view.tokens = true;
    }
    if (x.scriptSteps !== undefined) {
      if (x.scriptSteps !== true) fail("workers holds an invalid scriptSteps flag");
      view.scriptSteps = true;
    }
    if (x.heartbeatMs !== undefined) {
      if (!isSeq(x.heartbeatMs)) fail("workers holds an invalid heartbeatMs");
      view.heartbeatMs = x.heartbeatMs as number;
    }
    if (x.registeredEventMs !== undefined) {
      if (!isNum(x.registeredEventMs)) fail("workers holds an invalid registeredEventMs");
      view.registeredEventMs = x.registeredEventMs as number;
    }
    s.workers.set(view.id, view);
  }
  s.subjectSeq = pairs(o.subjectSeq, "subjectSeq", isSeq);
  s.activityMs = pairs(o.activityMs, "activityMs", isNum);
  s.attemptBase = pairs(o.attemptBase, "attemptBase", isNum);
  s.refusedAttempts = pairs(o.refusedAttempts, "refusedAttempts", isSeq);
  s.assignedInstance = pairs(o.assignedInstance, "assignedInstance", isStr);
  s.submitSeq = pairs(o.submitSeq, "submitSeq", isSeq);
  s.open = new Set(strings(o.open, "open"));
  s.rejected = pairs(o.rejected, "rejected", isSeq) as Map<Rejection, number>;
  return s;
}

/** Reads a snapshot back (pure). Anything but a well-formed snapshot of this format and version is refused with the reason. */
export function decodeSnapshot(bytes: Uint8Array | string, o: { prefix?: string } = {}): Decoded {
  let v: unknown;
  try {
    v = JSON.parse(typeof bytes === "string" ? bytes : new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    return { ok: false, error: `not JSON: ${(e as Error).message}` };
  }
  if (!isObj(v)) return { ok: false, error: "not an object" };
  if (v.format !== SNAPSHOT_FORMAT) return { ok: false, error: `unknown format ${JSON.stringify(v.format)}` };
  if (v.version !== SNAPSHOT_VERSION) return { ok: false, error: `unknown version ${JSON.stringify(v.version)} (this master reads ${SNAPSHOT_VERSION})` };
  if (!isStr(v.prefix) || !isStr(v.writtenBy) || !isStr(v.writtenAt)) return { ok: false, error: "prefix, writtenBy or writtenAt missing" };
  if (o.prefix !== undefined && v.prefix !== o.prefix) return { ok: false, error: `snapshot of prefix ${v.prefix}, not ${o.prefix}` };
  try {
    const state = decodeState(v.state);
    return { ok: true, state, snapshot: { format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, prefix: v.prefix, writtenBy: v.writtenBy, writtenAt: v.writtenAt } };
  } catch (e) {
    if (e instanceof Invalid) return { ok: false, error: e.message };
    throw e;
  }
}

/**
 * Where to follow TROUPE_EVENTS from after loading a snapshot at `appliedSeq`,
 * given the stream's state: the next sequence, or why the whole log must be
 * replayed instead (pure).
 */
/**
 * Whether a snapshot is due: `every` events since the last one, and never
 * fewer events than the state has entries (jobs, finished jobs, workers). A
 * snapshot costs time in proportion to the state; spacing them by at least as
 * many events keeps that cost constant per event however large the state
 * grows (a fixed interval would rewrite a million-job state every few seconds).
 */
export function snapshotDue(eventsSince: number, every: number, stateEntries: number): boolean {
  return every > 0 && eventsSince >= Math.max(every, stateEntries);
}

export function resumeFrom(appliedSeq: number, stream: { first_seq: number; last_seq: number }): { ok: true; startSeq: number } | { ok: false; reason: string } {
  if (stream.last_seq < appliedSeq) return { ok: false, reason: `the stream ends at ${stream.last_seq}, before the snapshot's ${appliedSeq} (reset or recreated)` };
  if (stream.first_seq > appliedSeq + 1) return { ok: false, reason: `the stream starts at ${stream.first_seq}, after ${appliedSeq + 1} (events after the snapshot were removed)` };
  return { ok: true, startSeq: appliedSeq + 1 };
}

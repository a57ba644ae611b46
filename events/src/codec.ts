import "./formats.ts";
import { Type, type TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { firstError, type FieldError } from "./errors.ts";
import {
  EVENT_TYPES, EVENT_VERSION, EnvelopeSchema, EventDataSchemas,
  type EventData, type EventEnvelope, type EventType, type TroupeEvent,
} from "./events.ts";
import { newId } from "./ids.ts";
import { validateScenario } from "./scenario.ts";
import { subjects as defaultSubjects, standardPrefix, type Subjects } from "./subjects.ts";

/** Largest event body accepted (screenshots go to the object store, never into events). */
export const MAX_EVENT_BYTES = 256 * 1024;

export type DecodeErrorCode =
  | "too-large"
  | "too-deep"
  | "not-json"
  | "not-object"
  | "invalid-envelope"
  | "unknown-type"
  | "unsupported-version"
  | "subject-mismatch"
  | "invalid-data";

export interface DecodeError extends FieldError {
  code: DecodeErrorCode;
}
export type Decoded<T> = { ok: true; value: T } | { ok: false; error: DecodeError };

/** For the known-type check: a Set, so "toString" or "__proto__" are not found on a prototype. */
const eventTypes: ReadonlySet<string> = new Set(EVENT_TYPES);
const envelopeCheck = TypeCompiler.Compile(EnvelopeSchema);
const dataChecks = Object.fromEntries(
  EVENT_TYPES.map((t) => [t, TypeCompiler.Compile(EventDataSchemas[t] as TSchema)]),
) as Record<EventType, TypeCheck<TSchema>>;

/**
 * job.submitted's data check without the scenario, for when validateScenario has just passed it:
 * every scenario validateScenario accepts, ScenarioSchema accepts (each step passes its own step
 * schema, one member of the union), so the verdict is the same without walking the step union again.
 */
const submittedScenarioCheckedCheck = (() => {
  const data = EventDataSchemas["job.submitted"];
  const spec = data.properties.spec;
  return TypeCompiler.Compile({
    ...data,
    properties: { ...data.properties, spec: { ...spec, properties: { ...spec.properties, scenario: Type.Optional(Type.Unknown()) } } },
  } as TSchema);
})();

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

function fail(code: DecodeErrorCode, path: string, message: string): { ok: false; error: DecodeError } {
  return { ok: false, error: { code, path, message } };
}

/** Parses bytes (or a string) as one JSON object, within a size limit. */
/** The deepest nesting of objects and arrays a message may have: far past any real event or command (a scenario is ~6 levels), far short of what recursion copes with. */
export const MAX_JSON_DEPTH = 64;

/** True when JSON text nests objects and arrays deeper than `max` (brackets inside strings do not count). Linear, no recursion. */
export function jsonTooDeep(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 92 /* \ */) i++;
        else if (d === 34) break;
      }
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > max) return true;
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return false;
}

/**
 * The path of the first key that appears twice in one object of valid JSON text, else null. JSON.parse keeps the
 * last silently, so a hand-written job file with `"timeout"` twice ran with whichever came last. Linear, no recursion.
 */
export function duplicateKeyPath(text: string): string | null {
  // Frames keep their key or index, not their path: a path is built only for the duplicate found (every command is
  // scanned, and a string per object and array cost the master ~2 µs a submission). No inner functions: the CLI's
  // transform wraps each in a __name() call per scan.
  const stack: { keys: Set<string> | null; key: string; index: number }[] = [];
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      const start = i;
      let escaped = false;
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 92 /* \ */) { escaped = true; i++; } else if (d === 34) break;
      }
      const top = stack[stack.length - 1];
      if (expectKey && top?.keys) {
        const key = escaped ? (JSON.parse(text.slice(start, i + 1)) as string) : text.slice(start + 1, i);
        if (top.keys.has(key)) {
          top.key = key;
          let path = "";
          for (let f = 0; f < stack.length; f++) {
            const fr = stack[f]!;
            path = fr.keys === null ? `${path}[${fr.index}]` : path ? `${path}.${fr.key}` : fr.key;
          }
          return path;
        }
        top.keys.add(key);
        top.key = key;
        expectKey = false;
      }
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      stack.push({ keys: c === 123 ? new Set() : null, key: "", index: 0 });
      expectKey = c === 123;
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      stack.pop();
    } else if (c === 44 /* , */) {
      const top = stack[stack.length - 1];
      if (top?.keys) expectKey = true;
      else if (top) top.index++;
    }
  }
  return null;
}

/**
 * A UTF-16 surrogate without its other half: no character, and SQLite stored it as bytes no UTF-8 reader takes (an
 * attack). Scanned by hand: a regex needs a lookbehind, which this module (also in the dashboard's bundle) avoids.
 */
function hasLoneSurrogate(s: string): boolean {
  return wellFormed(s) !== s;
}

/** The text with each unpaired surrogate replaced by U+FFFD (what String#toWellFormed does); the same string when none. */
function wellFormed(s: string): string {
  let out = "";
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    const next = s.charCodeAt(i + 1);
    if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      i++;
      continue;
    }
    out += s.slice(from, i) + "\uFFFD";
    from = i + 1;
  }
  return from === 0 ? s : out + s.slice(from);
}

/** A text that may hold either (escapes, raw surrogates) or a `__proto__` key: only those are walked. */
const MAY_NEED_WALK = /__proto__|\\u|[\uD800-\uDFFF]/;

/**
 * Lone surrogates and `__proto__` keys in a parsed JSON value. A `__proto__` key is refused (SvelteKit cannot send
 * it to a page: a submitted scenario holding one made its job page 500 for good; an attack). A lone surrogate is
 * refused in a key, and in a string value refused (`refuse`, commands: the sender hears it) or replaced by U+FFFD
 * (`replace`, events: what UTF-8 would have made of it, so nothing already in the log is lost). Mutates in place
 * (the value is fresh from JSON.parse).
 */
function checkText(v: unknown, path: string, strings: "refuse" | "replace"): DecodeError | null {
  if (typeof v !== "object" || v === null) return null;
  const entries: [string | number, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
  for (const [k, x] of entries) {
    const at = typeof k === "number" ? `${path}[${k}]` : path ? `${path}.${k}` : k;
    if (typeof k === "string" && (k === "__proto__" || hasLoneSurrogate(k))) {
      return { code: "invalid-data", path: at, message: k === "__proto__" ? "a key named __proto__ is not allowed" : "a key holds an unpaired UTF-16 surrogate (not a character)" };
    }
    if (typeof x === "string") {
      const fixed = wellFormed(x);
      if (fixed === x) continue;
      if (strings === "refuse") return { code: "invalid-data", path: at, message: "holds an unpaired UTF-16 surrogate (\\ud800–\\udfff alone is not a character)" };
      (v as Record<string | number, unknown>)[k] = fixed;
    } else {
      const e = checkText(x, at, strings);
      if (e) return e;
    }
  }
  return null;
}

/** Encodes a value as JSON text with unpaired surrogates as U+FFFD (JSON.stringify writes them as escapes, which readers refuse). */
export function stringifyWellFormed(v: unknown): string {
  const text = JSON.stringify(v);
  // An escape is `\u` after an odd number of backslashes (an even number is an escaped backslash and the text "u…").
  return text.includes("\\u") ? text.replace(/(\\+)u[dD][89a-fA-F][0-9a-fA-F]{2}/g, (m, bs: string) => (bs.length % 2 === 1 ? `${bs.slice(1)}\uFFFD` : m)) : text;
}

export function parseJsonObject(body: Uint8Array | string, maxBytes = MAX_EVENT_BYTES, strings: "refuse" | "replace" = "refuse"): Decoded<Record<string, unknown>> {
  const size = typeof body === "string" ? encoder.encode(body).length : body.length;
  if (size > maxBytes) return fail("too-large", "", `payload is ${size} bytes, the limit is ${maxBytes}`);
  let text: string;
  try {
    text = typeof body === "string" ? body : decoder.decode(body);
  } catch {
    return fail("not-json", "", "payload is not valid UTF-8");
  }
  // Before parsing: JSON.parse takes deep nesting, but JSON.stringify, reducers and the
  // projector's writer recurse, and one such event would stop a service on every restart.
  if (jsonTooDeep(text)) return fail("too-deep", "", `payload nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return fail("not-json", "", `payload is not JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return fail("not-object", "", `payload must be a JSON object, got ${Array.isArray(parsed) ? "an array" : parsed === null ? "null" : typeof parsed}`);
  }
  // Commands only: a sender hears the refusal and can fix it; an event already in the log is read as JSON reads it.
  if (strings === "refuse") {
    const twice = duplicateKeyPath(text);
    if (twice !== null) return fail("invalid-data", twice, "this key appears twice in one object (JSON keeps only the last); give it once");
  }
  if (MAY_NEED_WALK.test(text)) {
    const err = checkText(parsed, "", strings);
    if (err) return { ok: false, error: err };
  }
  return { ok: true, value: parsed as Record<string, unknown> };
}

/** The subject an event belongs on, derived from its type and data. */
export function subjectOf(event: TroupeEvent, s: Subjects = defaultSubjects): string {
  const [entity, kind] = event.type.split(".") as [string, string];
  const data = event.data as { workerId?: string; jobId?: string };
  if (event.type === "worker.heartbeat") return s.heartbeat(data.workerId as string);
  if (entity === "worker") return s.worker(data.workerId as string, kind as never);
  return s.job(data.jobId as string, kind as never);
}

/** Per event type: the subject is `${before}${data[idField]}${after}` (subjectOf, for a standard Subjects). */
type SubjectShape = { before: string; idField: "workerId" | "jobId"; after: string };
/** The last Subjects seen, as it was then (a builder swapped later makes it a new one). */
let seen: Pick<Subjects, "prefix" | "heartbeat" | "worker" | "job"> | undefined;
let seenSubjects: Subjects | undefined;
let shapes: Map<string, SubjectShape> | undefined;
function subjectShapes(s: Subjects): Map<string, SubjectShape> | undefined {
  if (s === seenSubjects && s.prefix === seen!.prefix && s.heartbeat === seen!.heartbeat && s.worker === seen!.worker && s.job === seen!.job) return shapes;
  const p = standardPrefix(s);
  seenSubjects = s;
  seen = { prefix: s.prefix, heartbeat: s.heartbeat, worker: s.worker, job: s.job };
  shapes = p === undefined ? undefined : new Map(EVENT_TYPES.map((t): [string, SubjectShape] => {
    const [entity, kind] = t.split(".") as [string, string];
    if (t === "worker.heartbeat") return [t, { before: `${p}.hb.`, idField: "workerId", after: "" }];
    return [t, { before: `${p}.evt.${entity}.`, idField: entity === "worker" ? "workerId" : "jobId", after: `.${kind}` }];
  }));
  return shapes;
}

/**
 * True when `subject` is exactly what subjectOf builds for this (schema-valid) event, compared
 * piece by piece instead of building it (no split, no id regex, no concatenation). False means
 * "not sure": the caller then builds the expected subject.
 */
function subjectMatches(type: string, data: Record<string, unknown>, subject: string, s: Subjects): boolean {
  const shape = subjectShapes(s)?.get(type);
  if (shape === undefined) return false;
  const id = data[shape.idField];
  if (typeof id !== "string") return false;
  const { before, after } = shape;
  return subject.length === before.length + id.length + after.length &&
    subject.startsWith(before) && subject.startsWith(id, before.length) && subject.endsWith(after);
}

/** Checks that type and ids in the body agree with the subject it arrived on. */
function checkSubject(type: EventType, data: Record<string, unknown>, subject: string, s: Subjects): DecodeError | null {
  if (subjectMatches(type, data, subject, s)) return null;
  const expected = subjectOf({ type, data } as TroupeEvent, s);
  // The subject subjectOf built always parses, so the common (matching) case skips the parse.
  if (subject === expected) return null;
  const parsed = s.parse(subject);
  if (parsed === null) return { code: "subject-mismatch", path: "", message: `subject ${subject} is not a Troupe event subject (expected ${expected})` };
  if (subject !== expected) {
    return { code: "subject-mismatch", path: "type", message: `a ${type} event for ${type.startsWith("job") ? `job ${String(data.jobId)}` : `worker ${String(data.workerId)}`} belongs on ${expected}, not ${subject}` };
  }
  return null;
}

export interface DecodeOptions {
  subjects?: Subjects;
  maxBytes?: number;
}

/**
 * Decodes one event as received on `subject`: size, JSON, envelope, known type,
 * supported version, data schema, and subject/body agreement. The error names
 * the field and the reason; nothing is thrown.
 */
export function decodeEvent(subject: string, body: Uint8Array | string, opts: DecodeOptions = {}): Decoded<TroupeEvent> {
  const parsed = parseJsonObject(body, opts.maxBytes ?? MAX_EVENT_BYTES, "replace");
  if (!parsed.ok) return parsed;
  return validateEventObject(parsed.value, subject, opts.subjects ?? defaultSubjects);
}

/**
 * Every check of decodeEvent after parsing: known type, supported version,
 * envelope and data schema, spec rules, and (unless `subject` is null) that
 * the body belongs on `subject`.
 */
function validateEventObject(obj: Record<string, unknown>, subject: string | null, s: Subjects): Decoded<TroupeEvent> {
  if (typeof obj.type === "string" && !eventTypes.has(obj.type)) {
    return fail("unknown-type", "type", `unknown event type ${JSON.stringify(obj.type)}`);
  }
  if (typeof obj.v === "number" && Number.isInteger(obj.v) && obj.v > EVENT_VERSION) {
    return fail("unsupported-version", "v", `schema version ${obj.v} of ${String(obj.type)} is newer than this build understands (${EVENT_VERSION})`);
  }
  const envErr = firstError(envelopeCheck, obj, "");
  if (envErr) return { ok: false, error: { code: "invalid-envelope", ...envErr } };
  const type = obj.type as EventType;
  const spec = type === "job.submitted" ? (obj.data as { spec?: { scenario?: unknown } }).spec : undefined;
  let dataCheck = dataChecks[type];
  if (spec && typeof spec === "object" && spec.scenario !== undefined) {
    const scenarioErr = validateScenario(spec.scenario, "data.spec.scenario");
    if (scenarioErr) return { ok: false, error: { code: "invalid-data", ...scenarioErr } };
    dataCheck = submittedScenarioCheckedCheck;
  }
  const dataErr = firstError(dataCheck, obj.data, "data");
  if (dataErr) return { ok: false, error: { code: "invalid-data", ...dataErr } };
  const data = obj.data as Record<string, unknown>;
  if (type === "job.submitted") {
    // The scenario passed validateScenario above (a pure check of the same value): not again.
    const specErr = checkJobSpecSemantics(data.spec as Record<string, unknown>, "data.spec", true);
    if (specErr) return { ok: false, error: { code: "invalid-data", ...specErr } };
  }
  if (subject !== null) {
    const subjErr = checkSubject(type, data, subject, s);
    if (subjErr) return { ok: false, error: subjErr };
  }
  return { ok: true, value: obj as unknown as TroupeEvent };
}

/**
 * Rules JSON Schema cannot say: url or scenario, scenario step detail, time order.
 * `scenarioChecked`: the caller already ran validateScenario on spec.scenario and it passed.
 */
export function checkJobSpecSemantics(spec: Record<string, unknown>, base: string, scenarioChecked = false): FieldError | null {
  if (spec.url === undefined && spec.scenario === undefined) return { path: `${base}.url`, message: "a job needs a url or a scenario" };
  if (spec.scenario !== undefined && !scenarioChecked) {
    const e = validateScenario(spec.scenario, `${base}.scenario`);
    if (e) return e;
  }
  if (typeof spec.runAt === "string" && typeof spec.expiresAt === "string" && Date.parse(spec.expiresAt) <= Date.parse(spec.runAt)) {
    return { path: `${base}.expiresAt`, message: "expiresAt must be after runAt" };
  }
  return null;
}

/**
 * The event with its time no later than `publishedMs`, the stream's own clock
 * when it stored the event: a producer whose clock runs ahead (or lies) cannot
 * date a worker's last sign of life or a chart's minute in the future. The
 * projector folds every event through this, live and in a rebuild alike.
 */
export function notAfterPublished<E extends { time: string }>(e: E, publishedMs: number): E {
  return Date.parse(e.time) > publishedMs ? { ...e, time: new Date(publishedMs).toISOString() } : e;
}

/** Builds an event with a fresh unique id and the current time. */
export function createEvent<T extends EventType>(type: T, data: EventData<T>, source: string, time = new Date()): EventEnvelope<T> {
  return { id: newId("e"), type, v: EVENT_VERSION, time: time.toISOString(), source, data };
}

export function encodeEvent(event: TroupeEvent | EventEnvelope): Uint8Array {
  return encoder.encode(stringifyWellFormed(event));
}

/**
 * Validates an event before it is published, so a producer bug fails loudly
 * at the source, and encodes it once: the subject it goes on and the bytes to
 * send. The object is checked as built (no encode → decode → parse round
 * trip); only when that check fails are the encoded bytes judged the way a
 * consumer will judge them, so JSON's own changes (an undefined field
 * dropped, a toJSON) give the same verdict a consumer reaches.
 */
export function encodeCheckedEvent(event: TroupeEvent, s: Subjects = defaultSubjects): { ok: true; subject: string; bytes: Uint8Array } | { ok: false; error: DecodeError } {
  const subject = subjectOf(event, s);
  // A page's text may hold an unpaired surrogate (the DOM allows it): sent as U+FFFD, as UTF-8 would have it.
  const text = stringifyWellFormed(event);
  const bytes = encoder.encode(text);
  if (bytes.length > MAX_EVENT_BYTES) return fail("too-large", "", `payload is ${bytes.length} bytes, the limit is ${MAX_EVENT_BYTES}`);
  if (jsonTooDeep(text)) return fail("too-deep", "", `payload nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels`);
  // The subject comes from the event itself, so body and subject agree by construction.
  if (validateEventObject(event as unknown as Record<string, unknown>, null, s).ok) return { ok: true, subject, bytes };
  const r = decodeEvent(subject, bytes, { subjects: s });
  return r.ok ? { ok: true, subject, bytes } : r;
}

/** Validates an event before it is published; null when it is valid. */
export function checkEvent(event: TroupeEvent, s: Subjects = defaultSubjects): DecodeError | null {
  const r = encodeCheckedEvent(event, s);
  return r.ok ? null : r.error;
}

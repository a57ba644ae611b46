/**
 * Prints decodeEvent's verdict on a deterministic corpus of valid and mangled events, one JSON
 * line each, so two versions of events/src can be compared (no verdict may change):
 *   npx tsx events/test/decode-diff.ts /tmp/base/events/src > /tmp/a; npx tsx events/test/decode-diff.ts > /tmp/b; cmp /tmp/a /tmp/b
 * (a directory made with `git archive <rev> events/src | tar -x -C /tmp/base`, events/node_modules linked beside it).
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { generateEvents } from "../../services/projector/test/generate.ts";

const SRC = process.argv[2] ? pathToFileURL(resolve(process.argv[2], "codec.ts")).href : "../src/codec.ts";
const { decodeEvent, encodeEvent, subjectOf } = (await import(SRC)) as typeof import("../src/codec.ts");
const { subjectsFor } = (await import(SRC.replace(/codec\.ts$/, "subjects.ts"))) as typeof import("../src/subjects.ts");

let seed = 7;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const chars = "0123456789-:.TZ+ zabcjobwrkhvt_\u00e9\u0000";
const mangle = (s: string) => {
  const i = Math.floor(rand() * (s.length + 1));
  const c = pick([...chars]);
  return pick([() => s.slice(0, i) + c + s.slice(i + 1), () => s.slice(0, i) + c + s.slice(i), () => s.slice(0, i) + s.slice(i + 1)])();
};
const times = ["2026-02-30T00:00:00Z", "2026-13-01T00:00:00.000Z", "2026-01-01T24:00:00Z", "2026-01-01T23:59:60Z", "2026-01-15T10:30:00+02:00", "2026-01-15T10:30:00.1234Z", "yesterday", "2026-04-31T12:00:00.000Z"];
const types = ["toString", "constructor", "__proto__", "job.exploded", "worker.heartbeat", "job.started", "job.completed", "worker.lost", ""];
const subjectSets = [subjectsFor(), subjectsFor("acme.x")];

const out: string[] = [];
const verdict = (subject: string, body: string | Uint8Array, s = subjectSets[0]!) => {
  try {
    const r = decodeEvent(subject, body, { subjects: s });
    out.push(JSON.stringify(r.ok ? [subject, "ok"] : [subject, r.error]));
  } catch (e) {
    out.push(JSON.stringify([subject, "THROWS", String(e)]));
  }
};
let n = 0;
for (const e of generateEvents({ workers: 200, events: 20_000, startMs: Date.UTC(2026, 0, 15, 10), stepMs: 7, seed: 11 })) {
  const s = subjectSets[n++ % 2]!;
  const subject = subjectOf(e, s);
  const bytes = encodeEvent(e);
  verdict(subject, bytes, s);
  verdict(mangle(subject), bytes, s);
  const o = JSON.parse(JSON.stringify(e)) as Record<string, any>;
  switch (n % 6) {
    case 0: o.time = rand() < 0.5 ? pick(times) : mangle(o.time); break;
    case 1: o.type = rand() < 0.5 ? pick(types) : mangle(o.type); break;
    case 2: if (o.data.workerId) o.data.workerId = mangle(o.data.workerId); else o.data.jobId = mangle(o.data.jobId); break;
    case 3: if (o.data.result?.logs?.[0]) o.data.result.logs[0].time = mangle(o.data.result.logs[0].time); else o.id = mangle(o.id); break;
    case 4: o.data.metrics = rand() < 0.5 ? undefined : { ...o.data.metrics, extra: 1 }; break;
    case 5: o.v = pick([0, 1, 2, 1.5, "1"]); break;
  }
  verdict(subject, JSON.stringify(o), s);
  verdict(subjectOf(e, subjectSets[0]!), JSON.stringify(o), s);
}

// Jobs with a scenario (Recorder-like steps), intact and with one step or field mangled.
const steps: Record<string, unknown>[] = [
  { type: "setViewport", width: 1280, height: 800, deviceScaleFactor: 1, isMobile: false, hasTouch: false, isLandscape: false },
  { type: "navigate", url: "https://shop.example.com/", assertedEvents: [{ type: "navigation", url: "https://shop.example.com/", title: "Shop" }] },
  { type: "click", selectors: [["aria/Search"], ["#search"]], offsetX: 10, offsetY: 5 },
  { type: "change", selectors: [["#search"]], value: "shoes" },
  { type: "keyDown", key: "Enter" },
  { type: "waitForElement", selectors: [[".result"]], count: 1 },
  { type: "extract", fields: { title: { selector: "h1" }, price: { selector: ".price", from: "attribute", attribute: "data-p" } } },
  { type: "assert", text: "shoes" },
  { type: "wait", ms: 100 },
];
const stepTypes = ["click", "navigate", "extract", "assert", "wait", "nope", "toString", "constructor", "__proto__", "hasOwnProperty", 3];
const values: unknown[] = [undefined, null, 0, -1, 1.5, 700_000, "", "x", "http://a", [], {}, true, "2026-01-15T10:30:00Z"];
for (let i = 0; i < 4000; i++) {
  const scenario: Record<string, any> = { title: "search", steps: JSON.parse(JSON.stringify(steps)) };
  const step = pick(scenario.steps as Record<string, unknown>[]);
  switch (i % 8) {
    case 0: break;
    case 1: step.type = pick(stepTypes); break;
    case 2: step[pick(Object.keys(step))] = pick(values); break;
    case 3: step[pick(["timeout", "optional", "name", "extra", "selectors", "url"])] = pick(values); break;
    case 4: scenario[pick(["title", "timeout", "selectorAttribute", "steps", "other"])] = pick(values); break;
    case 5: delete step[pick(Object.keys(step))]; break;
    case 6: scenario.steps = scenario.steps.slice(0, Math.floor(rand() * 3)); break;
    case 7: scenario.steps.push(pick(values)); break;
  }
  const spec: Record<string, unknown> = { priority: 5, maxAttempts: 3, timeoutMs: 60_000, scenario };
  if (i % 5 === 0) spec.url = "https://shop.example.com/";
  if (i % 7 === 0) { spec.runAt = "2026-01-15T10:30:00Z"; spec.expiresAt = pick(["2026-01-15T10:29:00Z", "2026-01-15T11:30:00.000Z", "2026-02-30T00:00:00Z"]); }
  verdict("troupe.evt.job.job-9.submitted", JSON.stringify({ id: `e${i}`, type: "job.submitted", v: 1, time: "2026-01-15T10:30:00.000Z", source: "m", data: { jobId: "job-9", spec } }));
}
process.stdout.write(out.join("\n") + "\n");

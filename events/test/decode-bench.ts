/**
 * CPU cost of decodeEvent per event, on a realistic stream (services/projector/test/generate.ts).
 *   npx tsx events/test/decode-bench.ts [events=300000] [runs=7] [src-dir]
 * src-dir (default ../src) is the events/src to time, e.g. an older copy from
 * `git archive <rev> events/src | tar -x -C /tmp/base` (with events/node_modules linked beside it),
 * so before/after can be run alternately on a busy machine.
 * Reports CPU µs per event (process.cpuUsage, user+system, min over runs), all events and split
 * heartbeats / other events / one job with a 9-step scenario, plus the share spent in UTF-8
 * decode + JSON.parse alone.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { generateEvents } from "../../services/projector/test/generate.ts";

const N = Number(process.argv[2] ?? 300_000);
const RUNS = Number(process.argv[3] ?? 7);
const SRC = process.argv[4] ? pathToFileURL(resolve(process.argv[4], "codec.ts")).href : "../src/codec.ts";
const { createEvent, decodeEvent, encodeEvent, subjectOf } = (await import(SRC)) as typeof import("../src/codec.ts");

type Msg = { subject: string; bytes: Uint8Array };
const hb: Msg[] = [];
const other: Msg[] = [];
for (const e of generateEvents({ workers: 1000, events: N, startMs: Date.UTC(2026, 0, 15, 10), stepMs: 7, seed: 11 })) {
  (e.type === "worker.heartbeat" ? hb : other).push({ subject: subjectOf(e), bytes: encodeEvent(e) });
}
// Interleaved as they arrive, so the "all" figure sees the real mix of shapes.
const all: Msg[] = [];
{
  let i = 0, j = 0;
  while (i < hb.length || j < other.length) {
    if (i < hb.length) all.push(hb[i++]!);
    if (j < other.length) all.push(other[j++]!);
  }
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

let sink = 0;
function timeDecode(msgs: Msg[]): number {
  const t0 = cpuUs();
  for (const m of msgs) {
    const r = decodeEvent(m.subject, m.bytes);
    if (!r.ok) throw new Error(`unexpected failure: ${JSON.stringify(r.error)}`);
    sink++;
  }
  return (cpuUs() - t0) / msgs.length;
}
const td = new TextDecoder("utf-8", { fatal: true });
function timeParse(msgs: Msg[]): number {
  const t0 = cpuUs();
  for (const m of msgs) sink += (JSON.parse(td.decode(m.bytes)) as { v: number }).v;
  return (cpuUs() - t0) / msgs.length;
}

// A job with a Recorder-like scenario (the generated stream has url jobs only): the costliest common event.
const steps = [
  { type: "setViewport", width: 1280, height: 800, deviceScaleFactor: 1, isMobile: false, hasTouch: false, isLandscape: false },
  { type: "navigate", url: "https://shop.example.com/", assertedEvents: [{ type: "navigation", url: "https://shop.example.com/", title: "Shop" }] },
  { type: "click", selectors: [["aria/Search"], ["#search"]], offsetX: 10, offsetY: 5 },
  { type: "change", selectors: [["#search"]], value: "shoes" },
  { type: "keyDown", key: "Enter" },
  { type: "keyUp", key: "Enter" },
  { type: "waitForElement", selectors: [[".result"]], count: 1 },
  { type: "extract", fields: { title: { selector: "h1" }, price: { selector: ".price", from: "text" } } },
  { type: "screenshot", label: "result" },
];
const scenarioJob = createEvent("job.submitted", { jobId: "job-9", spec: { priority: 5, maxAttempts: 3, timeoutMs: 60_000, scenario: { title: "search", steps } } } as never, "master-1");
const scenarioMsgs: Msg[] = Array.from({ length: 20_000 }, () => ({ subject: subjectOf(scenarioJob as never), bytes: encodeEvent(scenarioJob as never) }));

const best = { all: Infinity, hb: Infinity, other: Infinity, scenario: Infinity, parseScenario: Infinity, parseAll: Infinity, parseHb: Infinity, parseOther: Infinity };
for (let r = 0; r < RUNS; r++) {
  best.all = Math.min(best.all, timeDecode(all));
  best.hb = Math.min(best.hb, timeDecode(hb));
  best.other = Math.min(best.other, timeDecode(other));
  best.parseAll = Math.min(best.parseAll, timeParse(all));
  best.parseHb = Math.min(best.parseHb, timeParse(hb));
  best.parseOther = Math.min(best.parseOther, timeParse(other));
  best.scenario = Math.min(best.scenario, timeDecode(scenarioMsgs));
  best.parseScenario = Math.min(best.parseScenario, timeParse(scenarioMsgs));
}
const f = (x: number) => x.toFixed(3).padStart(7);
console.log(`${SRC}\n${all.length} events (${hb.length} heartbeats, ${other.length} others), min of ${RUNS} runs, CPU µs/event`);
console.log(`             decodeEvent   parse-only   checks (difference)`);
console.log(`all          ${f(best.all)}      ${f(best.parseAll)}      ${f(best.all - best.parseAll)}`);
console.log(`heartbeats   ${f(best.hb)}      ${f(best.parseHb)}      ${f(best.hb - best.parseHb)}`);
console.log(`other        ${f(best.other)}      ${f(best.parseOther)}      ${f(best.other - best.parseOther)}`);
console.log(`scenario job ${f(best.scenario)}      ${f(best.parseScenario)}      ${f(best.scenario - best.parseScenario)}   (${scenarioMsgs[0]!.bytes.length} bytes, 9 steps)`);
if (sink < 0) console.log(sink);

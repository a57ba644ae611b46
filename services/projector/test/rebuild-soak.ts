// Crash soak of rebuilds: `npx tsx services/projector/test/rebuild-soak.ts <work dir> [rounds] [events]`.
// Starts nats-server (ports SOAK_PORT..+2, default 8600), fills the log, then each round kills `troupe replay` or
// `troupe projector --rebuild` at a random point (SIGKILL or SIGTERM), recovers, and checks: the services come back,
// a reader never sees a half-built file, the final read models equal a fresh rebuild row for row, nothing is left behind.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { subjects } from "@troupe/events";
import { connectAs, ensureCredentials, initStores, passwordVar, ROLES, startNatsServer, userVar } from "@troupe/events/node";
import { waitFor } from "@troupe/tests/harness";
import { openReadModels } from "../src/read-models.ts";
import { rebuild } from "../src/rebuild.ts";
import { generateEvents, publishAll } from "./generate.ts";
import { dumpTables, quietLog, STREAMS } from "./helpers.ts";

const ROOT = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
const work = resolve(process.argv[2] ?? "/tmp/h-rebuild/soak");
const rounds = Number(process.argv[3] ?? 20);
const fill = Number(process.argv[4] ?? 100_000);
const basePort = Number(process.env.SOAK_PORT ?? 8600);
let seed = Number(process.env.SOAK_SEED ?? 12345);
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;

const natsDir = join(work, "nats");
const dataDir = join(work, "data");
const childTmp = join(work, "tmp");
const logs = join(work, "logs");
for (const d of [natsDir, dataDir, childTmp, logs]) mkdirSync(d, { recursive: true });
const path = join(dataDir, "readmodels.sqlite");
const say = (...a: unknown[]) => console.log(new Date().toISOString().slice(11, 23), ...a);

const credentials = ensureCredentials(natsDir);
const server = await startNatsServer({ dataDir: natsDir, credentials, host: "127.0.0.1", wsHost: "127.0.0.1", monitorHost: "127.0.0.1", port: basePort, wsPort: basePort + 1, monitorPort: basePort + 2, serverName: "soak", onLog: () => {}, dieWithParent: true });
const conns: NatsConnection[] = [];
const connect = async (role: (typeof ROLES)[number]) => {
  const nc = await connectAs({ url: server.url, role, dataDir: natsDir, name: `soak-${role}`, env: {} });
  conns.push(nc);
  return nc;
};
await initStores(await connect("master"));
const env: Record<string, string> = { ...(process.env as Record<string, string>), NATS_URL: server.url, TROUPE_DATA_DIR: natsDir, TMPDIR: childTmp, TROUPE_LOG_LEVEL: "info" };
for (const r of ROLES) {
  env[userVar(r)] = credentials[r].user;
  env[passwordVar(r)] = credentials[r].password;
}
const masterJs = jetstream(await connect("master"));
const workerJs = jetstream(await connect("worker"));
const hbJs = jetstream(await connect("worker"));
const js = { master: masterJs, worker: workerJs, heartbeats: hbJs };
const projNc = await connect("projector");
const jsm = await jetstreamManager(projNc);

const children = new Set<ChildProcess>();
// Stopped early: take the children along (nats-server dies with this process by itself).
for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => {
  for (const c of children) c.kill("SIGKILL");
  process.exit(1);
});
let runNo = 0;
function run(args: string[]) {
  const n = ++runNo;
  const logFile = join(logs, `${String(n).padStart(3, "0")}-${args[0]}${args.includes("--rebuild") ? "-rebuild" : ""}.log`);
  const out = createWriteStream(logFile);
  const child = spawn(process.execPath, ["bin/troupe.mjs", ...args, "--db", path], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let err = "";
  const take = (d: Buffer) => {
    err += d.toString();
    out.write(d);
  };
  child.stdout.on("data", take);
  child.stderr.on("data", take);
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.on("exit", (code, signal) => (children.delete(child), out.end(), r({ code, signal }))));
  return { child, exited, stderr: () => err, logFile };
}

/** Job ids submitted, by TROUPE_EVENTS sequence: a complete file at checkpoint c holds exactly the jobs submitted at or before c. */
const submittedSeqs: number[] = [];
async function followSubmissions(): Promise<void> {
  const c = await jetstream(projNc).consumers.get("TROUPE_EVENTS");
  const it = await c.consume();
  void (async () => {
    for await (const m of it) if (m.subject.endsWith(".submitted")) submittedSeqs.push(m.seq);
  })();
}
const submittedUpTo = (cp: number) => {
  let lo = 0, hi = submittedSeqs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((submittedSeqs[mid] as number) <= cp) lo = mid + 1;
    else hi = mid;
  }
  return lo;
};

/** Reads the path all the time: each snapshot must be a complete file (its job count matches its checkpoint). */
const reader = { reads: 0, bad: [] as string[], files: new Set<string>(), notReady: 0 };
let reading = true;
const rm = openReadModels(path);
async function readLoop(): Promise<void> {
  while (reading) {
    try {
      const s = rm.snapshot(() => ({ lag: rm.projectorLag(), total: rm.stats().jobs.total, ready: rm.ready() }));
      reader.reads++;
      if (!s.ready) reader.notReady++;
      else {
        const cp = s.lag?.checkpoints.TROUPE_EVENTS ?? 0;
        if (cp <= (submittedSeqs.at(-1) ?? 0) || cp === 0) {
          const want = submittedUpTo(cp);
          if (s.total !== want) reader.bad.push(`checkpoint ${cp}: ${s.total} jobs, expected ${want}`);
        }
      }
    } catch (e) {
      reader.bad.push(`read failed: ${(e as Error).message}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A small writer appending valid events (~rate/s) while `on`. */
let writerOn = false;
let writerCount = 0;
async function writerLoop(prefix: string, rate: number): Promise<void> {
  writerOn = true;
  const gen = generateEvents({ workers: 4, events: 1_000_000, startMs: Date.now(), stepMs: Math.round(1000 / rate), seed: Math.floor(rand() * 1e6), idPrefix: prefix, heartbeatShare: 0.4 });
  function* throttled() {
    for (const e of gen) {
      if (!writerOn) return;
      yield e;
    }
  }
  const it = throttled();
  while (writerOn) {
    const chunk = [];
    for (let i = 0; i < Math.max(1, Math.round(rate / 10)); i++) {
      const r = it.next();
      if (r.done) break;
      chunk.push(r.value);
    }
    writerCount += await publishAll(chunk, js, 20);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function heads(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of STREAMS) out[s] = (await jsm.streams.info(s)).state.last_seq;
  return out;
}

async function caughtUp(timeoutMs = 120_000): Promise<void> {
  const h = await heads();
  await waitFor(`read models to reach ${JSON.stringify(h)}`, () => {
    const cps = rm.projectorLag()?.checkpoints ?? {};
    return STREAMS.every((s) => (cps[s] ?? 0) >= (h[s] ?? 0));
  }, timeoutMs, 100);
}

function leftovers(): string[] {
  const bad: string[] = [];
  const names = readdirSync(dataDir);
  const gens = names.filter((n) => /\.g-[^.]*$/.test(n) && !/-(wal|shm|journal)$/.test(n));
  if (gens.length !== 1) bad.push(`generations: ${gens.join(", ")}`);
  for (const n of names) {
    if (n === "readmodels.sqlite" || n === "readmodels.sqlite.lock" || n === "readmodels.sqlite.lock.holder" || n === "readmodels.sqlite.lock-journal") continue;
    if (gens.includes(n)) continue;
    if (/\.g-/.test(n) && gens.includes(n.replace(/-(wal|shm|journal)$/, ""))) continue;
    bad.push(`data dir: ${n}`);
  }
  for (const n of readdirSync(childTmp)) if (!n.startsWith("tsx-")) bad.push(`tmp: ${n}`);
  return bad;
}

async function ephemeralConsumers(): Promise<string[]> {
  const r = await fetch(`http://127.0.0.1:${basePort + 2}/jsz?consumers=true`);
  const j = (await r.json()) as { account_details?: { stream_detail?: { name: string; consumer_detail?: { name: string }[] }[] }[] };
  const out: string[] = [];
  for (const a of j.account_details ?? []) for (const s of a.stream_detail ?? []) for (const c of s.consumer_detail ?? []) if (c.name.startsWith("rebuild_")) out.push(`${s.name}/${c.name}`);
  return out;
}

async function compareWithFresh(tag: string): Promise<string[]> {
  const freshDir = join(work, "fresh");
  rmSync(freshDir, { recursive: true, force: true });
  mkdirSync(freshDir);
  const fresh = join(freshDir, "readmodels.sqlite");
  await rebuild({ nc: projNc, path: fresh, streams: [...STREAMS] as [string, string], subjects, batchMax: 20_000, seriesRetentionMs: 24 * 3600_000, log: quietLog, graceMs: 0 });
  const a = dumpTables(path);
  const b = dumpTables(fresh);
  const diffs: string[] = [];
  for (const t of Object.keys(b)) {
    const x = JSON.stringify(a[t]);
    const y = JSON.stringify(b[t]);
    if (x !== y) diffs.push(`${tag}: table ${t}: ${(a[t] as unknown[]).length} vs fresh ${(b[t] as unknown[]).length} rows`);
  }
  return diffs;
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- fill ----
await followSubmissions();
say(`filling ${fill} events`);
const t0 = Date.now();
await publishAll(generateEvents({ workers: 60, events: fill, startMs: Date.now() - 3 * 3600_000, stepMs: Math.floor((3 * 3600_000) / fill), seed: 1, idPrefix: "f" }), js, 500);
say(`filled in ${Date.now() - t0} ms`, await heads());
void readLoop();

// A first projector run with a rebuild: the baseline file, and the time a rebuild takes (the kill window).
let p = run(["projector", "--rebuild", "--port", "0"]);
const tr = Date.now();
await caughtUp();
const rebuildMs = Date.now() - tr;
p.child.kill("SIGTERM");
say("baseline projector --rebuild:", rebuildMs, "ms, exit", await p.exited);

const summary: string[] = [];
const problems: string[] = [];
for (let round = 1; round <= rounds; round++) {
  // "replay-done": a replay that is not killed, beside a live projector (the swap it must follow).
  const kind = pick(["replay", "replay", "projector-rebuild", "replay-done"] as const);
  const signal = pick(["SIGKILL", "SIGTERM"] as const);
  const withWriter = kind === "replay-done" || rand() < 0.5;
  const liveDuring = kind === "replay-done" || (kind === "replay" && rand() < 0.5);
  // Where to kill: the log line that starts the stage, then a random part of a second.
  const stages = { startup: null, events: /"stream":"TROUPE_EVENTS"[^\n]*rebuilding from stream/, heartbeats: /"stream":"TROUPE_HEARTBEATS"[^\n]*rebuilding from stream/, finishing: /100\.0%/, grace: /rebuild swapped in/ } as const;
  const killStage = kind === "replay-done" ? "none" : pick(Object.keys(stages) as (keyof typeof stages)[]);
  const killAfter = Math.round(rand() * (killStage === "startup" ? rebuildMs : killStage === "finishing" ? 100 : 700));
  const batch = pick(["20000", "20000", "2000"]);
  if (withWriter) void writerLoop(`w${round}`, 60);
  let live: ReturnType<typeof run> | null = null;
  if (liveDuring) {
    live = run(["projector", "--port", "0"]);
    const l = live;
    await waitFor("the live projector to run", () => /projector running/.test(l.stderr()), 60_000, 100).catch(() => {});
    await caughtUp().catch((e: Error) => problems.push(`round ${round}: live before replay: ${e.message}`));
  }
  const victim = kind !== "projector-rebuild" ? run(["replay", "--rebuild-batch", batch]) : run(["projector", "--rebuild", "--port", "0", "--rebuild-batch", batch]);
  // SOAK_PAIRS=1: a second replay, not killed, started beside the victim now and then (two swaps close together).
  const second = process.env.SOAK_PAIRS === "1" && rand() < 0.5 ? run(["replay", "--rebuild-batch", pick(["20000", "2000"])]) : null;
  // Sometimes events stop arriving once the rebuild has fixed its targets: after the swap nothing new comes to make a live projector look.
  const quietAfterTargets = withWriter && (kind === "replay-done" || rand() < 0.5);
  if (quietAfterTargets) void waitFor("targets", () => /rebuilding from stream/.test(victim.stderr()) || victim.child.exitCode !== null || victim.child.signalCode !== null, 60_000, 20).then(() => (writerOn = false), () => {});
  const marker = killStage === "none" || killStage === "startup" ? null : stages[killStage];
  const reached = marker ? waitFor(`stage ${killStage}`, () => marker.test(victim.stderr()), 120_000, 5).then(() => delay(killAfter)) : killStage === "none" ? new Promise(() => {}) : delay(killAfter);
  const race = await Promise.race([reached.then(() => "timer"), victim.exited.then(() => "exited")]);
  if (race === "timer") victim.child.kill(signal);
  const ex = await victim.exited;
  if (second) {
    const e2 = await second.exited;
    if (e2.code !== 0) problems.push(`round ${round}: the second replay exited ${JSON.stringify(e2)}: ${second.stderr().slice(-600)}`);
  }
  const stage = /rebuild swapped in/.test(victim.stderr()) ? "after swap" : /HEARTBEATS[^\n]*rebuilding from stream/.test(victim.stderr()) ? "reading heartbeats" : /rebuilding from stream/.test(victim.stderr()) ? "reading events" : "before read";
  // A stop is fine (0 for projector, 1 for replay on SIGTERM); anything else must say why.
  // SIGTERM before the process installed its handler (module loading) kills it outright: nothing is written yet.
  const okExit = signal === "SIGKILL" ? ex.signal === "SIGKILL" || ex.code === 0 : ex.signal === "SIGTERM" ? killStage === "startup" : kind === "replay" ? ex.code === 1 || ex.code === 0 : ex.code === 0;
  if (race === "exited" && ex.code !== 0) problems.push(`round ${round}: ${kind} exited by itself: ${JSON.stringify(ex)}: ${victim.stderr().slice(-600)}`);
  if (race === "timer" && !okExit) problems.push(`round ${round}: ${kind} ${signal} exit ${JSON.stringify(ex)}: ${victim.stderr().slice(-600)}`);
  const line = `round ${round}: ${kind} ${killStage === "none" ? "" : `${signal} at ${killStage}+${killAfter} ms`} (${race}, ${stage}) batch ${batch} writer=${withWriter}${quietAfterTargets ? "(quiet after targets)" : ""} liveDuring=${liveDuring}${second ? " +second replay" : ""} exit=${JSON.stringify(ex)}`;
  say(line);
  // Recovery.
  const recovery = kind === "replay-done" ? "live" : kind === "replay" ? pick(["replay", "live", "live-rebuild"] as const) : pick(["live", "live-rebuild"] as const);
  if (recovery === "replay") {
    const r = run(["replay"]);
    if (withWriter && rand() < 0.5) void waitFor("targets", () => /rebuilding from stream/.test(r.stderr()) || r.child.exitCode !== null, 60_000, 20).then(() => (writerOn = false), () => {});
    const e = await r.exited;
    if (e.code !== 0) problems.push(`round ${round}: recovery replay exit ${JSON.stringify(e)}: ${r.stderr().slice(-600)}`);
  }
  if (!live) live = run(["projector", "--port", "0", ...(recovery === "live-rebuild" ? ["--rebuild"] : [])]);
  if (withWriter) await delay(500 + rand() * 1500);
  writerOn = false;
  await delay(300); // the writer's last chunk
  try {
    await caughtUp(30_000);
  } catch (e) {
    problems.push(`round ${round}: recovery (${recovery}) did not catch up: ${(e as Error).message}; live stderr: ${live.stderr().slice(-800)}`);
  }
  await waitFor("the live projector to run", () => /projector running/.test(live.stderr()) || live.child.exitCode !== null, 60_000, 100).catch(() => {});
  // The running projector sweeps what killed rebuilds left every 10 s: give it one sweep.
  await waitFor("leftovers to go", () => leftovers().length === 0, 15_000, 500).catch(() => {});
  live.child.kill("SIGTERM");
  const le = await live.exited;
  if (le.code !== 0) problems.push(`round ${round}: live projector exit ${JSON.stringify(le)}: ${live.stderr().slice(-600)}`);
  const diffs = await compareWithFresh(`round ${round}`);
  let left = leftovers();
  const cons = await ephemeralConsumers();
  problems.push(...diffs.map((d) => `round ${round}: ${d}`));
  if (left.length) problems.push(`round ${round}: left behind: ${left.join("; ")}`);
  summary.push(`${line} recovery=${recovery} diffs=${diffs.length} leftovers=${left.length} consumers=${cons.length}`);
  say(`  recovery ${recovery}: diffs ${diffs.length}, leftovers ${JSON.stringify(left)}, other consumers ${JSON.stringify(cons)}, reader ${reader.reads} reads, ${reader.bad.length} bad`);
  // Clean leftovers between rounds so each round's are its own.
  for (const n of readdirSync(childTmp)) rmSync(join(childTmp, n), { recursive: true, force: true });
}
reading = false;
say("heads", await heads(), "writer events", writerCount);
say("reader", reader.reads, "reads,", reader.notReady, "not ready,", reader.bad.length, "bad", reader.bad.slice(0, 10));
console.log(summary.join("\n"));
console.log(problems.length ? `PROBLEMS (${problems.length}):\n${problems.join("\n")}` : "no problems");
for (const c of children) c.kill("SIGKILL");
rm.close();
for (const c of conns) await c.close().catch(() => {});
await server.stop();
if (existsSync(work) && process.env.SOAK_KEEP !== "1") rmSync(natsDir, { recursive: true, force: true });
process.exit(0);

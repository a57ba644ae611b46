import { DeliverPolicy, AckPolicy, jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { nanos, nuid, type NatsConnection } from "@nats-io/nats-core";
import { connectAs } from "@troupe/events/node";
import { startTestCluster } from "../tests/harness/index.ts";

// usage: repro.ts <kill: events|hb|meta> <timeoutMs> <pin: any|survivor>
const KILL = process.argv[2] ?? "events";
const TIMEOUT = Number(process.argv[3] ?? 5000);
const PIN = process.argv[4] ?? "survivor";
const T0 = Date.now();
let tKill = 0;
const rel = () => (tKill ? `+${((Date.now() - tKill) / 1000).toFixed(2)}s` : `(${((Date.now() - T0) / 1000).toFixed(2)})`);
const origLog = console.log.bind(console);
console.log = (...a: unknown[]) => origLog(rel(), ...a);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cluster = await startTestCluster({ log: process.env.SLOG === "1" });
origLog("MY CLUSTER DIR", cluster.dataDir);
const cleanup = async () => { try { await cluster.stop(); } catch {} };
process.on("uncaughtException", async (e) => { origLog("uncaught", e); await cleanup(); process.exit(1); });
process.on("unhandledRejection", async (e) => { origLog("unhandled", e); await cleanup(); process.exit(1); });
await cluster.init();
const names = cluster.nodes.map((n) => n.name);
const short = (s?: string) => (s ? `n${names.indexOf(s)}` : "-");

async function jsz(i: number) {
  const r = await fetch(`${cluster.nodes[i]!.monitorUrl}/jsz?streams=true&consumers=true&config=false`, { signal: AbortSignal.timeout(1000) });
  return (await r.json()) as any;
}
// who leads what
const admin = await cluster.connect("master", "admin");
const ajsm = await jetstreamManager(admin, { timeout: 1000, checkAPI: false });
const leaders = async () => {
  const out: Record<string, string> = {};
  for (const s of ["TROUPE_EVENTS", "TROUPE_HEARTBEATS"]) {
    try { out[s] = short((await ajsm.streams.info(s)).cluster?.leader); } catch (e) { out[s] = `ERR ${(e as Error).message}`; }
  }
  return out;
};
let meta = "";
for (let i = 0; i < 3; i++) { try { meta = (await jsz(i)).meta_cluster?.leader; if (meta) break; } catch {} }
const L = await leaders();
console.log("leaders", { meta: short(meta), ...L });

// Publishers
const worker = await cluster.connect("worker", "w");
const wjs = jetstream(worker, { timeout: 2000 });
let pubOk = 0, pubErr = 0;
let running = true;
for (let w = 1; w <= 3; w++) void (async () => {
  while (running) {
    wjs.publish(`troupe.hb.w${w}`, JSON.stringify({ w, t: Date.now() })).then(() => pubOk++, () => pubErr++);
    await sleep(500);
  }
})();
const master = PIN === "any" ? await cluster.connect("master", "m") : null;
// target
const targetName = KILL === "meta" ? meta : KILL === "hb" ? (await ajsm.streams.info("TROUPE_HEARTBEATS")).cluster!.leader! : (await ajsm.streams.info("TROUPE_EVENTS")).cluster!.leader!;
const target = names.indexOf(targetName);
const survivors = [0, 1, 2].filter((i) => i !== target);
// master connection pinned to a survivor (connection stays up), like the log excerpt
const mnc: NatsConnection = master ?? await connectAs({ url: cluster.nodes[survivors[0]!]!.url, role: "master", dataDir: cluster.dataDir, name: "m", env: {} });
const evPub = jetstream(mnc, { timeout: 2000 });
void (async () => {
  let k = 0;
  while (running) { evPub.publish(`troupe.evt.job.j${k++}.submitted`, "{}").then(() => pubOk++, () => pubErr++); await sleep(500); }
})();
console.log("master connected to", mnc.info?.server_name, short(mnc.info?.server_name), "kill", KILL, short(targetName));

// initial followers (ordered consumers)
const js: JetStreamClient = jetstream(mnc, { timeout: TIMEOUT });
const counts: Record<string, number> = { TROUPE_EVENTS: 0, TROUPE_HEARTBEATS: 0 };
for (const [s, p] of [["TROUPE_EVENTS", DeliverPolicy.All], ["TROUPE_HEARTBEATS", DeliverPolicy.LastPerSubject]] as const) {
  const c = await js.consumers.get(s, { deliver_policy: p });
  const ci = await c.info(true);
  console.log("initial consumer", s, "on", short(ci.cluster?.leader));
  await c.consume({ max_messages: 1000, expires: 2000, idle_heartbeat: 1000, callback: () => { counts[s]!++; } });
}
const jsm = await jetstreamManager(mnc, { timeout: TIMEOUT, checkAPI: false });
await sleep(3000);
console.log("before kill", counts, { pubOk, pubErr });

tKill = Date.now();
await cluster.stopNode(target);
console.log("killed", short(targetName));

// leader poll
let pollDone = false;
void (async () => {
  let last = "";
  while (!pollDone) {
    const l = await leaders();
    let m = "?";
    for (const i of survivors) { try { m = short((await jsz(i)).meta_cluster?.leader); break; } catch {} }
    const s = JSON.stringify({ meta: m, ...l });
    if (s !== last) { console.log("LEADERS", s); last = s; origLog("LEADERS", ((Date.now() - tKill) / 1000).toFixed(2), s); }
    await sleep(250);
  }
})();

// attempts: step by step, like consumers.ordered(): STREAM.INFO then CONSUMER.CREATE (R1, mem)
const first: Record<string, number> = {};
async function attempts(stream: string, policy: DeliverPolicy, mode: string) {
  for (let n = 1; n < 200; n++) {
    const a = Date.now();
    let step = mode === "get" ? "consumers.get" : "stream.info";
    try {
      let extra = "";
      if (mode === "get") {
        const c = await js.consumers.get(stream, { deliver_policy: policy });
        extra = `on ${short((await c.info(true)).cluster?.leader)}`;
      } else {
        if (mode === "steps") { const si = await jsm.streams.info(stream); extra = `info ${Date.now() - a}ms leader ${short(si.cluster?.leader)}; `; }
        step = "consumer.add";
        const cfg: any = { name: `${nuid.next()}_1`, deliver_policy: policy, ack_policy: AckPolicy.None, inactive_threshold: nanos(300_000), num_replicas: 1, max_deliver: 1, mem_storage: true };
        if (policy === DeliverPolicy.LastPerSubject) cfg.filter_subject = ">";
        const ci = await jsm.consumers.add(stream, cfg);
        extra += `on ${short(ci.cluster?.leader)}`;
      }
      console.log(`OK ${mode} ${stream} attempt ${n} took ${Date.now() - a}ms ${extra}`);
      first[`${mode} ${stream}`] = (Date.now() - tKill) / 1000;
      return;
    } catch (e) {
      if (process.env.V === "1") console.log(`FAIL ${mode} ${stream} attempt ${n} at ${step} after ${Date.now() - a}ms: ${(e as Error).message}`);
      await sleep(Number(process.env.RETRY ?? 250));
    }
  }
}
const MODES = (process.env.MODES ?? "steps,addonly").split(",");
await Promise.all(MODES.flatMap((m) => [attempts("TROUPE_EVENTS", DeliverPolicy.All, m), attempts("TROUPE_HEARTBEATS", DeliverPolicy.LastPerSubject, m)]));
origLog("SUMMARY", KILL, TIMEOUT, JSON.stringify(first));
await sleep(2000);
pollDone = true;
running = false;
console.log("after", counts, { pubOk, pubErr });
await mnc.close();
await cluster.stop();
process.exit(0);

// Runs the project's follow() (unchanged, or a patched copy via FOLLOW=...) for both streams, kills a member, times recovery.
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connectAs } from "@troupe/events/node";
import { startTestCluster } from "../tests/harness/index.ts";

const KILL = process.argv[2] ?? "events";
const PIN = process.argv[3] ?? "survivor";
const FOLLOW = process.env.FOLLOW ?? "../services/master/src/follow.ts";
const { follow } = await import(FOLLOW);
const T0 = Date.now();
let tKill = 0;
const rel = () => (tKill ? `+${((Date.now() - tKill) / 1000).toFixed(2)}s` : `(${((Date.now() - T0) / 1000).toFixed(2)})`);
const log = (...a: unknown[]) => console.log(rel(), ...a.map((x) => (typeof x === "object" ? JSON.stringify(x) : x)));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cluster = await startTestCluster({ log: false });
console.log("MY CLUSTER DIR", cluster.dataDir);
const cleanup = async () => { try { await cluster.stop(); } catch {} };
process.on("uncaughtException", async (e) => { console.log("uncaught", e); await cleanup(); process.exit(1); });
process.on("unhandledRejection", async (e) => { console.log("unhandled", e); await cleanup(); process.exit(1); });
try {
  await cluster.init();
  const names = cluster.nodes.map((n) => n.name);
  const short = (s?: string) => (s ? `n${names.indexOf(s)}` : "-");
  const jsz = async (i: number) => (await (await fetch(`${cluster.nodes[i]!.monitorUrl}/jsz`, { signal: AbortSignal.timeout(1000) })).json()) as any;
  const admin = await cluster.connect("master", "admin");
  const ajsm = await jetstreamManager(admin, { timeout: 1000, checkAPI: false });
  const leader = async (s: string) => { try { return short((await ajsm.streams.info(s)).cluster?.leader); } catch (e) { return "none"; } };
  let meta = "";
  for (let i = 0; i < 3 && !meta; i++) try { meta = (await jsz(i)).meta_cluster?.leader; } catch {}
  const ev = await leader("TROUPE_EVENTS"), hb = await leader("TROUPE_HEARTBEATS");
  log("leaders", { meta: short(meta), ev, hb });
  const targetShort = KILL === "meta" ? short(meta) : KILL === "hb" ? hb : ev;
  const target = Number(targetShort.slice(1));
  const survivors = [0, 1, 2].filter((i) => i !== target);
  let running = true;
  const worker = await cluster.connect("worker", "w");
  const wjs = jetstream(worker, { timeout: 2000 });
  for (let w = 1; w <= 3; w++) void (async () => { while (running) { wjs.publish(`troupe.hb.w${w}`, JSON.stringify({ w })).catch(() => {}); await sleep(500); } })();
  const mnc: NatsConnection = PIN === "any" ? await cluster.connect("master", "m") : await connectAs({ url: cluster.nodes[survivors[0]!]!.url, role: "master", dataDir: cluster.dataDir, name: "m", env: {} });
  const pub = jetstream(mnc, { timeout: 2000 });
  let k = 0;
  void (async () => { while (running) { pub.publish(`troupe.evt.job.j${k++}.submitted`, "{}").catch(() => {}); await sleep(500); } })();
  log("master on", short(mnc.info?.server_name), "kill", KILL, targetShort);
  const origReq = mnc.request.bind(mnc);
  (mnc as any).request = async (subj: string, data: any, opts: any) => {
    const a = Date.now();
    const tag = subj.replace("$JS.API.", "").replace(/(CONSUMER\.(CREATE|DELETE|INFO)\.[A-Z_]+)\..*/, "$1");
    try {
      const r = await origReq(subj, data, opts);
      let extra = "";
      try { const j = r.json<any>(); extra = j.error ? `error ${j.error.code} ${j.error.description}` : j.cluster?.leader ? `leader ${short(j.cluster.leader)}` : ""; } catch {}
      if (tKill && subj.startsWith("$JS")) log("REQ", tag, `${Date.now() - a}ms`, extra);
      return r;
    } catch (e) {
      if (tKill) log("REQ", tag, `FAILED after ${Date.now() - a}ms`, (e as Error).message);
      throw e;
    }
  };
  const js = jetstream(mnc);
  const fakeLog = { info: (o: any, m: string) => log("INFO", m, o), warn: (o: any, m: string) => log("WARN", m, o), error: (o: any, m: string) => log("ERROR", m, o) };
  const seen: Record<string, number> = {};
  const back: Record<string, number> = {};
  const newAfterKill: Record<string, number> = {};
  let maxSeqAtKill: Record<string, number> = {};
  const lastSeq: Record<string, number> = { TROUPE_EVENTS: 0, TROUPE_HEARTBEATS: 0 };
  const fs = [];
  for (const [stream, deliver] of [["TROUPE_EVENTS", "all"], ["TROUPE_HEARTBEATS", "last-per-subject"]] as const) {
    fs.push(await follow(mnc, js, { stream, deliver, log: fakeLog as any,
      onMessage: (m: any) => { lastSeq[stream] = m.seq; if (tKill && !newAfterKill[stream] && m.seq > maxSeqAtKill[stream]!) { newAfterKill[stream] = (Date.now() - tKill) / 1000; log("first message stored after the kill", stream, m.seq); } },
      onCaughtUp: () => {}, onSeeing: (on: boolean) => { log("seeing", stream, on); if (on && tKill) back[stream] = (Date.now() - tKill) / 1000; } }));
  }
  await sleep(3000);
  let lastL = "";
  const leaderBack: Record<string, number> = {};
  void (async () => { while (running) { const s = `${await leader("TROUPE_EVENTS")}/${await leader("TROUPE_HEARTBEATS")}`; if (s !== lastL) { log("stream leaders ev/hb", s); lastL = s; }
    if (tKill) { const [e, h] = s.split("/"); const now = (Date.now() - tKill) / 1000; if (!leaderBack.TROUPE_EVENTS && e !== "none" && e !== targetShort) leaderBack.TROUPE_EVENTS = now; if (!leaderBack.TROUPE_HEARTBEATS && h !== "none" && h !== targetShort) leaderBack.TROUPE_HEARTBEATS = now; } await sleep(200); } })();
  await sleep(500);
  maxSeqAtKill = { ...lastSeq };
  tKill = Date.now();
  await cluster.stopNode(target);
  log("killed", targetShort);
  for (let i = 0; i < 60 && !(back.TROUPE_EVENTS && back.TROUPE_HEARTBEATS && newAfterKill.TROUPE_HEARTBEATS && newAfterKill.TROUPE_EVENTS); i++) await sleep(1000);
  running = false;
  const f = (x?: number) => (x === undefined ? "-" : x.toFixed(1));
  console.log("SUMMARY", process.env.TAG ?? "", "kill", KILL, targetShort, "meta", short(meta), "ev", ev, "hb", hb, "| EV leader", f(leaderBack.TROUPE_EVENTS), "new msg seen", f(newAfterKill.TROUPE_EVENTS), "| HB leader", f(leaderBack.TROUPE_HEARTBEATS), "new msg seen", f(newAfterKill.TROUPE_HEARTBEATS), "| reopened", JSON.stringify(back));
  for (const f of fs) await f.stop().catch(() => {});
  await mnc.close();
} finally {
  await cleanup();
}
process.exit(0);
